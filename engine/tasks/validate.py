"""Check a blueprint on a fresh kernel state: reads run, rules are tie-free, writes obey policy and succeed.

``validate`` replays a blueprint intent by intent on a new state over the base DB: 1) the
intent's recorded selections must each have exactly one best candidate, the winner; 2) its evidence
reads must be read tools, and each distinct read, where it first appears in the plan, must run
without error on the state as the earlier intents left it; 3) each gold write must be a write
tool, pass the domain's policy check, and succeed. It returns the goal-state hash, or a ``Reject``
whose reason is stable enough to count.
"""

from __future__ import annotations

from engine.tasks.model import Blueprint, Selection
from engine.tasks.recipe import DomainSpec, Reject, run_call
from envs import get_domain
from envs.kernel import BaseDB, Index, ToolKind

__all__ = ["check_selection", "validate"]


CLEAN_READS: Index[set[str]] = Index("tasks.validate.clean_reads", lambda base: set())
"""Per base: keys of the reads known to succeed on the untouched base DB."""


def check_selection(selection: Selection) -> str | None:
    """Why a recorded selection is not a tie-free pick of its winner, or None."""
    values = [c.value for c in selection.candidates]
    if not values:
        return f"selection without candidates: {selection.rule}"
    best = min(values) if selection.order == "min" else max(values)  # type: ignore[type-var]
    winners = [c.label for c in selection.candidates if c.value == best]
    if len(winners) != 1:
        return f"tie: {selection.rule}"
    if winners[0] != selection.winner:
        return f"selection winner is not the best: {selection.rule}"
    return None


def validate(spec: DomainSpec, base: BaseDB, blueprint: Blueprint, check_reads: bool = True) -> str | Reject:
    """The goal-state hash after replaying ``blueprint`` on a fresh state, or why it is rejected."""
    domain = get_domain(spec.domain)
    state = base.new_state()
    done = []
    ran: set[str] = set()
    # reads known to succeed on the untouched base DB (same call, same state, same outcome)
    clean_ok: set[str] = CLEAN_READS.of(base)
    if not blueprint.intents:
        return Reject("blueprint without intents")
    for i, intent in enumerate(blueprint.intents):
        if any(not 0 <= d < i for d in intent.depends_on):
            return Reject("depends on a later intent")
        # 1) tie-free selections
        for selection in intent.selections:
            problem = check_selection(selection)
            if problem is not None:
                return Reject(problem)
        # 2) evidence reads run on the state the agent will see
        for r in intent.reads:
            if domain.tool_kind(r.name) is not ToolKind.READ:
                return Reject(f"evidence is not a read: {r.name}")
            key = r.key()
            if not check_reads or key in ran:
                continue  # the plan makes each distinct read once, where it first appears
            ran.add(key)
            clean = not done
            if clean and key in clean_ok:
                continue
            if run_call(domain, state, r.name, r.arguments) is not None:
                return Reject(f"read failed: {r.name}")
            if clean:
                clean_ok.add(key)
        if not intent.actions:
            return Reject(f"{intent.kind}: no action")
        # 3) gold writes obey the policy and succeed
        for action in intent.actions:
            if domain.tool_kind(action.name) is not ToolKind.WRITE:
                return Reject(f"gold action is not a write: {action.name}")
            reason = spec.policy(state, action, intent, done)
            if reason is not None:
                return Reject(reason)
            if run_call(domain, state, action.name, action.arguments) is not None:
                return Reject(f"action failed: {action.name}")
            done.append(action)
    return state.hash_hex()
