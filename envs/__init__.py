"""tau2-bench-compatible environments on a fast copy-on-write kernel; the domains are in ``envs.registry``."""

from __future__ import annotations

from envs.kernel import BaseDB, CallResult, DBLoadError, Domain, Outcome, State, ToolError, ToolKind
from envs.registry import DOMAINS, get_domain, register

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
    "register",
]
