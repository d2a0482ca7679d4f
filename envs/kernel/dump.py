"""tau2-bench's JSON forms of our records: tool output strings and the canonical DB dump/hash."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from envs.kernel.state import State

__all__ = ["tau2_db_hash", "tau2_db_json", "tool_output"]


def tool_output(result: Any) -> str:
    """The string tau2-bench returns for a tool result (``Environment.to_json_str``)."""
    if isinstance(result, str):
        return result
    if isinstance(result, (bool, int, float)):
        return str(result)
    return json.dumps(msgspec.to_builtins(result))


def _fragment(record: Any) -> str:
    return json.dumps(msgspec.to_builtins(record), sort_keys=True)


def tau2_db_json(state: State) -> str:
    """The DB as tau2 hashes it: ``json.dumps(db.model_dump(), sort_keys=True)``.

    Base records are serialized once and cached on the base DB; only records this state
    changed are serialized again.
    """
    base = state.base
    cache = base.fragments
    parts: list[str] = []
    for table in sorted(base.table_names):
        base_table = base.tables[table]
        items: list[str] = []
        for key in sorted(state.keys(table)):
            if state.is_changed(table, key):
                frag = _fragment(state.get(table, key))
            else:
                frag = cache.get((table, key))
                if frag is None:
                    frag = _fragment(base_table[key])
                    cache[(table, key)] = frag
            items.append(f"{json.dumps(key)}: {frag}")
        parts.append(f"{json.dumps(table)}: {{{', '.join(items)}}}")
    return "{" + ", ".join(parts) + "}"


def tau2_db_hash(state: State) -> str:
    """tau2-bench's DB hash (``get_dict_hash``) of this state: sha256 hex of the canonical dump."""
    return hashlib.sha256(tau2_db_json(state).encode()).hexdigest()
