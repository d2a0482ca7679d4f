"""tau2-bench-compatible environments (airline, retail) on a fast copy-on-write kernel."""

from __future__ import annotations

import importlib

from envs.kernel import BaseDB, CallResult, DBLoadError, Domain, Outcome, State, ToolError, ToolKind

__all__ = [
    "DOMAINS",
    "BaseDB",
    "CallResult",
    "DBLoadError",
    "Domain",
    "Outcome",
    "State",
    "ToolError",
    "ToolKind",
    "get_domain",
]

DOMAINS = ("airline", "retail")


def get_domain(name: str) -> Domain:
    """The domain called ``name`` (``airline`` or ``retail``)."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose one of: {', '.join(DOMAINS)}")
    return importlib.import_module(f"envs.{name}").DOMAIN
