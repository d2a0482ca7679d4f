"""The state hashes a conversation can pass through on its way to the goal by gold means.

``reachable_hashes`` applies every subset of a task's gold writes, in every order, to forks of a
fresh state (kernel snapshots; a write the kernel refuses in some order ends that path) and
collects the state hash after each successful write, plus the untouched base. A conversation whose
hash leaves this set after a write can no longer reach the goal by gold-equivalent writes: it is
*dead* (``engine.run.deadstate``). The search shares prefixes and skips (state, used writes) pairs
seen before, so W = 4 costs at most 64 write calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.tasks.model import Action
from envs import BaseDB, Domain, State

__all__ = ["reachable_hashes"]


def reachable_hashes(domain: Domain, base: BaseDB, actions: Sequence[Action]) -> frozenset[int]:
    """Every state hash reachable from ``base`` by applying any subset of ``actions`` in any order."""
    start = base.new_state()
    found = {start.hash()}
    visited: set[tuple[int, int]] = set()
    full = (1 << len(actions)) - 1

    def extend(snapshot: bytes, state_hash: int, used: int) -> None:
        if used == full or (state_hash, used) in visited:
            return
        visited.add((state_hash, used))
        for index, action in enumerate(actions):
            if used & (1 << index):
                continue
            state = State.restore(base, snapshot)
            result = domain.call(state, action.name, action.arguments)
            if result.error:
                continue  # not applicable in this order (e.g. it needs an earlier write)
            found.add(state.hash())
            extend(state.snapshot(), state.hash(), used | (1 << index))

    extend(start.snapshot(), start.hash(), 0)
    return frozenset(found)
