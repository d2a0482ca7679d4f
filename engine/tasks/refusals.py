"""Refusal tasks: the customer asks for something the policy forbids, and the right outcome is no write.

Each refusal recipe samples one request the domain policy refuses, the reads that establish why
(the agent has to look before it says no) and the write the customer asks for (``params['forbidden']``,
as ``{'name', 'arguments'}``). The intent has no gold actions, so the task's W is 0 and its E is the
number of distinct reads; its trajectory type is ``refusal``. ``validate_refusal`` checks a refusal
blueprint on a fresh state: the reads run, the forbidden write breaks the policy (the domain's
policy checker gives a reason) and the kernel would accept it (so performing it changes the DB and
tau2-bench's DB check scores the conversation 0). The goal state is the initial state.

A domain lists its refusal recipes in its ``DomainSpec.refusals`` (see the ``refusals`` module of each
package under ``engine/tasks/domains/``); this module holds what they share: the customer's line
when refused, and composing and validating a refusal blueprint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.tasks.model import Action, Blueprint, Intent
from engine.tasks.recipe import DomainSpec, Reject, SampleContext, run_call
from envs import get_domain
from envs.kernel import BaseDB, ToolKind

__all__ = ["ACCEPT", "compose_refusal", "forbidden_action", "validate_refusal"]

ACCEPT = "If the agent says it cannot be done, accept it, do not insist, and end the conversation."


def forbidden_action(intent: Intent) -> Action:
    """The write a refusal intent's customer asks for (which the policy forbids)."""
    f = intent.params["forbidden"]
    return Action(name=f["name"], arguments=f["arguments"])


def compose_refusal(
    spec: DomainSpec, base: BaseDB, user_id: str, rng: Any, tries: int = 4
) -> tuple[Blueprint | None, list[str]]:
    """A one-intent refusal blueprint for ``user_id``, or None and the rejection reasons."""
    recipes: Sequence[Callable[[SampleContext], Intent | Reject]] = spec.refusals
    rejections: list[str] = []
    if not recipes:
        return None, [f"no refusal recipes for {spec.domain}"]
    state = base.new_state()
    for _ in range(tries):
        result = rng.choice(recipes)(SampleContext(state, user_id, rng))
        if isinstance(result, Reject):
            rejections.append(result.reason)
            continue
        identity = spec.identity(base.new_state(), user_id)
        return Blueprint(domain=spec.domain, user_id=user_id, intents=[result], identity=identity), rejections
    return None, rejections


def validate_refusal(spec: DomainSpec, base: BaseDB, blueprint: Blueprint) -> str | Reject:
    """The goal hash of a refusal blueprint (the initial state's), or why it is rejected."""
    domain = get_domain(spec.domain)
    state = base.new_state()
    initial = state.hash_hex()
    for intent in blueprint.intents:
        if intent.actions:
            return Reject(f"{intent.kind}: a refusal has no gold write")
        for r in intent.reads:
            if domain.tool_kind(r.name) is not ToolKind.READ:
                return Reject(f"evidence is not a read: {r.name}")
            if run_call(domain, state, r.name, r.arguments) is not None:
                return Reject(f"read failed: {r.name}")
        forbidden = forbidden_action(intent)
        if spec.policy(state, forbidden, intent, []) is None:
            return Reject(f"{intent.kind}: the policy allows the request")
        scratch = base.new_state()
        if run_call(domain, scratch, forbidden.name, forbidden.arguments) is not None:
            return Reject(f"{intent.kind}: the kernel refuses the forbidden write")
        if scratch.hash_hex() == initial:
            return Reject(f"{intent.kind}: the forbidden write changes nothing")
    return initial
