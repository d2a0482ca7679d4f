"""Refusal tasks: the customer asks for something the policy forbids, and the right outcome is no write.

Each refusal recipe samples one request the domain policy refuses, the reads that establish why
(the agent has to look before it says no) and the write the customer asks for (``params['forbidden']``,
as ``{'name', 'arguments'}``). The intent has no gold actions, so the task's W is 0 and its E is the
number of distinct reads; its trajectory type is ``refusal``. ``validate_refusal`` checks a refusal
blueprint on a fresh state: the reads run, the forbidden write breaks the policy (the domain's
policy checker gives a reason) and the kernel would accept it (so performing it changes the DB and
tau2-bench's DB check scores the conversation 0). The goal state is the initial state.

Kinds: airline ``refuse_cancel`` (no reason the policy accepts: booked more than 24 hours ago,
not business, no insurance that covers it, no cancelled flight) and ``refuse_compensation`` (a
regular member without insurance, not in business, complaining about a cancelled flight);
retail ``refuse_other_user`` (cancel a pending order of another customer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.tasks.model import Action, Blueprint, Intent
from engine.tasks.recipe import DomainSpec, Reject, SampleContext, facts, read, run_call
from envs.kernel import BaseDB, ToolKind

__all__ = ["REFUSALS", "compose_refusal", "forbidden_action", "validate_refusal"]

ACCEPT = "If the agent says it cannot be done, accept it, do not insist, and end the conversation."


def forbidden_action(intent: Intent) -> Action:
    """The write a refusal intent's customer asks for (which the policy forbids)."""
    f = intent.params["forbidden"]
    return Action(name=f["name"], arguments=f["arguments"])


# -- airline ------------------------------------------------------------------------------------
def _airline_refuse_cancel(ctx: SampleContext) -> Intent | Reject:
    from engine.tasks.airline import REASON_WORDS, _cancel_reasons
    from engine.tasks.airline_common import upcoming

    state = ctx.state
    user = state.get("users", ctx.user_id)
    mine = [state.get("reservations", rid) for rid in user.reservations]
    ok = [r for r in mine if r is not None and upcoming(state, r) and not _cancel_reasons(state, r)]
    if not ok:
        return Reject("refuse_cancel: no reservation the policy keeps")
    reservation = ctx.rng.choice(ok)
    rid = reservation.reservation_id
    reason = ctx.rng.choice(("change of plan", "health", "weather"))
    want = f"You want to cancel reservation {rid} because {REASON_WORDS[reason]}, and get your money back."
    return Intent(
        kind="refuse_cancel",
        rule="given",
        rule_text=want,
        actions=[],
        reads=[read("get_reservation_details", "booking date, cabin and insurance", reservation_id=rid)],
        facts=facts(
            known=[f"The reservation id is {rid}."],
            wants=[want],
            withhold=["Give the reason for cancelling only when the agent asks for it."],
            if_fail=[ACCEPT],
        ),
        target=rid,
        params={
            "reason": reason,
            "forbidden": {"name": "cancel_reservation", "arguments": {"reservation_id": rid}},
        },
    )


def _airline_refuse_compensation(ctx: SampleContext) -> Intent | Reject:
    from engine.tasks.airline import _cancelled_segment
    from engine.tasks.airline_search import day_words

    state = ctx.state
    user = state.get("users", ctx.user_id)
    if user.membership not in ("regular",):
        return Reject("refuse_compensation: member is entitled")
    mine = [state.get("reservations", rid) for rid in user.reservations]
    hits = [
        (r, _cancelled_segment(state, r))
        for r in mine
        if r is not None and r.insurance != "yes" and r.cabin != "business" and r.status != "cancelled"
    ]
    hits = [(r, f) for r, f in hits if f is not None]
    if not hits:
        return Reject("refuse_compensation: no cancelled flight")
    reservation, flight = ctx.rng.choice(hits)
    rid = reservation.reservation_id
    want = (
        f"Complain that your flight {flight.flight_number} on {day_words(flight.date)} (reservation {rid}) was"
        " cancelled, and ask for compensation."
    )
    return Intent(
        kind="refuse_compensation",
        rule="given",
        rule_text=want,
        actions=[],
        reads=[
            read("get_user_details", "membership", user_id=ctx.user_id),
            read("get_reservation_details", "cabin and insurance", reservation_id=rid),
        ],
        facts=facts(
            known=[f"The reservation id is {rid}."],
            wants=[want],
            withhold=["Do not ask for a specific amount."],
            if_fail=[ACCEPT],
        ),
        target=rid,
        params={
            "reservation_id": rid,
            "complaint": "cancelled",
            "flight_number": flight.flight_number,
            "date": flight.date,
            "forbidden": {
                "name": "send_certificate",
                "arguments": {"user_id": ctx.user_id, "amount": 100 * len(reservation.passengers)},
            },
        },
    )


# -- retail -------------------------------------------------------------------------------------
def _pending_orders(base: BaseDB) -> list[str]:
    return [oid for oid, o in base.tables["orders"].items() if o.status == "pending"]


def _retail_refuse_other_user(ctx: SampleContext) -> Intent | Reject:
    from engine.tasks.retail_common import auth_read

    state = ctx.state
    pending = ctx.base.index("tasks.refusals.pending_orders", _pending_orders)
    others = [oid for oid in pending if state.get("orders", oid).user_id != ctx.user_id]
    if not others:
        return Reject("refuse_other_user: no order of another user")
    oid = ctx.rng.choice(others)
    owner = state.get("users", state.get("orders", oid).user_id)
    friend = owner.name.first_name
    want = (
        f"Your friend {friend} asked you to cancel their pending order {oid}, which they no longer need;"
        " you want the agent to cancel it for them."
    )
    return Intent(
        kind="refuse_other_user",
        rule="given",
        rule_text=want,
        actions=[],
        reads=[
            auth_read(ctx.base, ctx.user_id),
            read("get_order_details", "whose order it is", order_id=oid),
        ],
        facts=facts(
            known=[f"Your friend's order id is {oid}."],
            wants=[want],
            withhold=["You do not know your friend's email, zip code or surname."],
            if_fail=[ACCEPT],
        ),
        target=oid,
        params={
            "forbidden": {"name": "cancel_pending_order", "arguments": {"order_id": oid, "reason": "no longer needed"}},
        },
    )


REFUSALS: dict[str, tuple[Callable[[SampleContext], Intent | Reject], ...]] = {
    "airline": (_airline_refuse_cancel, _airline_refuse_compensation),
    "retail": (_retail_refuse_other_user,),
}
"""The refusal recipes of each domain."""


def compose_refusal(
    spec: DomainSpec, base: BaseDB, user_id: str, rng: Any, tries: int = 4
) -> tuple[Blueprint | None, list[str]]:
    """A one-intent refusal blueprint for ``user_id``, or None and the rejection reasons."""
    recipes: Sequence[Callable[[SampleContext], Intent | Reject]] = REFUSALS.get(spec.domain, ())
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
    domain = base.domain
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
