"""The domain-independent environment kernel: tools, copy-on-write state, hashing, dispatch."""

from envs.kernel.arguments import ArgumentError
from envs.kernel.domain import BoundCall, CallResult, DBLoadError, Domain, Outcome
from envs.kernel.dump import tau2_db_hash, tau2_db_json, tool_output
from envs.kernel.index import Index
from envs.kernel.state import BaseDB, State, StateError
from envs.kernel.tool import Tool, ToolError, ToolKind, tool

__all__ = [
    "ArgumentError",
    "BaseDB",
    "BoundCall",
    "CallResult",
    "DBLoadError",
    "Domain",
    "Index",
    "Outcome",
    "State",
    "StateError",
    "Tool",
    "ToolError",
    "ToolKind",
    "tau2_db_hash",
    "tau2_db_json",
    "tool",
    "tool_output",
]
