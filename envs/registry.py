"""The domain registry: the one place that names the domains. Config, CLI, task synthesis,
benches and tests read it.

Each entry maps a domain name to the package that holds it; the package exposes ``DOMAIN``, a
``Domain`` carrying its tools, schema, policy, DB generator, integrity check and the module of its
task recipes. The domains shipped here are the lines of ``PACKAGES``. A domain kept elsewhere is
added without touching this repository, in one of three ways:

- an installed distribution declares an entry point in the group ``writ.domains``
  (``[project.entry-points."writ.domains"]`` ``mydomain = "mypackage.domain"``);
- the environment variable ``WRIT_DOMAINS`` lists ``name=package`` pairs, comma-separated
  (``WRIT_DOMAINS=telecom=acme.telecom``), for a package on the Python path but not installed;
- ``register(name, package)`` from Python.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import KeysView
from importlib.metadata import entry_points

from envs.kernel import Domain

__all__ = ["DEFAULT_DOMAIN", "DOMAINS", "ENTRY_POINTS", "ENV_VAR", "PACKAGES", "get_domain", "register"]

PACKAGES: dict[str, str] = {
    "airline": "envs.airline",
    "retail": "envs.retail",
}
"""Domain name -> the package that holds it (imported on first use)."""

DEFAULT_DOMAIN = "airline"
"""The domain a run config plays when it names none."""

DOMAINS: KeysView[str] = PACKAGES.keys()
"""The registered domain names, in registration order (a live view: ``register`` adds to it)."""

ENV_VAR = "WRIT_DOMAINS"
ENTRY_POINTS = "writ.domains"
_problems: list[str] = []
"""Plug-in declarations that could not be registered (shown when an unknown domain is asked for)."""


def register(name: str, package: str) -> None:
    """Add a domain held by ``package`` (a plug-in, e.g. one living outside this repository)."""
    if not name.isidentifier():
        raise ValueError(f"domain name {name!r} must be an identifier (letters, digits, underscores)")
    if name in PACKAGES and PACKAGES[name] != package:
        raise ValueError(f"domain {name!r} is already registered to {PACKAGES[name]}")
    PACKAGES[name] = package


def _plugins() -> None:
    """Register the domains that installed distributions and ``WRIT_DOMAINS`` declare; a declaration
    that cannot be registered is kept in ``_problems`` rather than breaking every import of envs."""
    declared = [(p.name, p.value, f"entry point {p.name!r} of {p.dist.name if p.dist else '?'}") for p in
                entry_points(group=ENTRY_POINTS)]  # fmt: skip
    spec = os.environ.get(ENV_VAR, "").strip()
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, package = pair.partition("=")
        if not sep or not name.strip() or not package.strip():
            _problems.append(f"{ENV_VAR}: {pair!r} is not name=package (e.g. telecom=acme.telecom)")
            continue
        declared.append((name.strip(), package.strip(), ENV_VAR))
    for name, package, where in declared:
        try:
            register(name, package)
        except ValueError as exc:
            _problems.append(f"{where}: {exc}")


def get_domain(name: str) -> Domain:
    """The domain called ``name``; ``ValueError`` (one line) naming the choices otherwise."""
    package = PACKAGES.get(name)
    if package is None:
        problems = "".join(f" ({p})" for p in _problems)
        raise ValueError(f"unknown domain {name!r}; choose one of: {', '.join(PACKAGES)}{problems}")
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ValueError(f"domain {name!r}: cannot import its package {package}: {exc}") from None
    domain = getattr(module, "DOMAIN", None)
    if not isinstance(domain, Domain):
        raise ValueError(f"domain {name!r}: package {package} has no DOMAIN (an envs.kernel.Domain)")
    if domain.name != name:
        raise ValueError(f"package {package} holds domain {domain.name!r}, registered as {name!r}")
    return domain


_plugins()
