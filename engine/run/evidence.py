"""Which records an agent's reads reached, so a planned evidence read can be matched by an equivalent one.

A planned read counts as made when the agent reached the same record, whichever way: the same tool
with its arguments written differently (case, surrounding spaces, a number as text, and whatever
the domain's ``ReadEquivalence.canonical`` adds), any of the domain's identity lookups for another,
or another tool whose result holds the record (``ReadEquivalence.implied``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from engine.tasks.model import call_key
from engine.tasks.recipe import ReadEquivalence

__all__ = ["Evidence", "record_key"]


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


def record_key(name: str, arguments: dict[str, Any], reads: ReadEquivalence) -> str:
    """What a read call reaches, independent of how its arguments are written."""
    if name in reads.identity:
        return "identity"
    args = _norm(arguments)
    if reads.canonical is not None:
        args = reads.canonical(name, args)
    return call_key(name, args)


class Evidence:
    """The reads an agent made so far, indexed by the records they reached."""

    def __init__(self, calls: Iterable[_Call], reads: ReadEquivalence) -> None:
        self.reads = reads
        self.keys: set[str] = set()
        holders = {tool for tool, _ in reads.implied.values()}
        self.outputs: dict[str, list[str]] = {}
        for call in calls:
            self.keys.add(record_key(call.name, call.arguments, reads))
            if call.name in holders:
                self.outputs.setdefault(call.name, []).append(call.output)

    def covers(self, name: str, arguments: dict[str, Any]) -> bool:
        """Whether a read of ``name(arguments)`` or an equivalent one was made."""
        if record_key(name, arguments, self.reads) in self.keys:
            return True
        implied = self.reads.implied.get(name)
        if implied is None:
            return False
        tool, holds = implied
        return any(holds(arguments, out) for out in self.outputs.get(tool, ()))
