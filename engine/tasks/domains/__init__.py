"""Each domain's task synthesis: one package per domain, holding its recipes, refusal recipes, policy
checks and comparison rules, and exposing ``SPEC`` (an ``engine.tasks.DomainSpec``) from the module
its ``envs`` package names in ``Domain.tasks``.

The recipes live here, beside the engine's task machinery, and not in ``envs/<domain>/``: they are
built on ``engine.tasks`` (intents, blueprints, the composer), and ``envs`` never imports ``engine``.
A domain kept outside this repository can be one package holding both halves (see ``envs.registry``).
"""
