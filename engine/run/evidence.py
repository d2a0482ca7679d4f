"""Which records an agent's reads reached, so a planned evidence read can be matched by an equivalent one.

A planned read counts as made when the agent reached the same record, whichever way: the same tool
with its arguments written differently (case, surrounding spaces, a retail order id without its
``#``, a number as text), either user lookup for an identity read (by email, or by name and zip),
or another tool whose result holds the record (a product's details list every item of it, so they
stand for ``get_item_details`` of any of those items).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from engine.tasks.model import call_key

__all__ = ["Evidence", "record_key"]

IDENTITY_READS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})


class _Call(Protocol):
    name: str
    arguments: dict[str, Any]
    output: str


def _norm(value: Any) -> Any:
    """A value in a canonical form: strings stripped and case-folded, numbers as floats."""
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    return value


def record_key(name: str, arguments: dict[str, Any]) -> str:
    """What a read call reaches, independent of how its arguments are written."""
    if name in IDENTITY_READS:
        return "identity"
    args = _norm(arguments)
    if name == "get_order_details" and isinstance(args.get("order_id"), str):
        args["order_id"] = "#" + args["order_id"].lstrip("#")
    return call_key(name, args)


class Evidence:
    """The reads an agent made so far, indexed by the records they reached."""

    def __init__(self, calls: Iterable[_Call]) -> None:
        self.keys: set[str] = set()
        self.product_outputs: list[str] = []
        for call in calls:
            self.keys.add(record_key(call.name, call.arguments))
            if call.name == "get_product_details":
                self.product_outputs.append(call.output)

    def covers(self, name: str, arguments: dict[str, Any]) -> bool:
        """Whether a read of ``name(arguments)`` or an equivalent one was made."""
        if record_key(name, arguments) in self.keys:
            return True
        if name == "get_item_details":
            item = str(arguments.get("item_id", "")).strip()
            return bool(item) and any(f'"{item}"' in out for out in self.product_outputs)
        return False
