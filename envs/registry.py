"""The domain registry: the one place that names the domains. Config, CLI, task synthesis,
benches and tests read it; adding a domain is its package plus one line here (or ``register``).

Each entry maps a domain name to the package that holds it; the package exposes ``DOMAIN``, a
``Domain`` carrying its tools, schema, policy, DB generator, integrity check and the module of its
task recipes.
"""

from __future__ import annotations

import importlib
from collections.abc import KeysView

from envs.kernel import Domain

__all__ = ["DOMAINS", "PACKAGES", "get_domain", "register"]

PACKAGES: dict[str, str] = {
    "airline": "envs.airline",
    "retail": "envs.retail",
}
"""Domain name -> the package that holds it (imported on first use)."""

DOMAINS: KeysView[str] = PACKAGES.keys()
"""The registered domain names, in registration order (a live view: ``register`` adds to it)."""


def register(name: str, package: str) -> None:
    """Add a domain held by ``package`` (a plug-in, e.g. one living outside this repository)."""
    if name in PACKAGES and PACKAGES[name] != package:
        raise ValueError(f"domain {name!r} is already registered to {PACKAGES[name]}")
    PACKAGES[name] = package


def get_domain(name: str) -> Domain:
    """The domain called ``name``; ``ValueError`` (one line) naming the choices otherwise."""
    package = PACKAGES.get(name)
    if package is None:
        raise ValueError(f"unknown domain {name!r}; choose one of: {', '.join(PACKAGES)}")
    domain = importlib.import_module(package).DOMAIN
    if domain.name != name:
        raise ValueError(f"package {package} holds domain {domain.name!r}, registered as {name!r}")
    return domain
