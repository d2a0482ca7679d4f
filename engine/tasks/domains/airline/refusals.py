"""Airline refusal recipes: requests the airline policy forbids, with the reads that show why.

``refuse_cancel``: cancel a reservation for which no reason the policy accepts holds (booked more than
24 hours ago, not business, no insurance that covers the reason, no cancelled flight).
``refuse_compensation``: a regular member without insurance, not in business, complains about a
cancelled flight and asks for compensation.
"""

from __future__ import annotations

from engine.tasks.domains.airline.common import REASON_WORDS, complaint, upcoming
from engine.tasks.domains.airline.policy import cancel_reasons, cancelled_segment
from engine.tasks.domains.airline.search import day_words
from engine.tasks.model import Intent
from engine.tasks.recipe import Reject, SampleContext, facts, read
from engine.tasks.refusals import ACCEPT
from envs.airline.pricing import CANCELLED_COMPENSATION

__all__ = ["REFUSALS", "sample_refuse_cancel", "sample_refuse_compensation"]


def sample_refuse_cancel(ctx: SampleContext) -> Intent | Reject:
    state = ctx.state
    user = state.get("users", ctx.user_id)
    mine = [state.get("reservations", rid) for rid in user.reservations]
    ok = [r for r in mine if r is not None and upcoming(state, r) and not cancel_reasons(state, r)]
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


def sample_refuse_compensation(ctx: SampleContext) -> Intent | Reject:
    state = ctx.state
    user = state.get("users", ctx.user_id)
    if user.membership not in ("regular",):
        return Reject("refuse_compensation: member is entitled")
    mine = [state.get("reservations", rid) for rid in user.reservations]
    hits = [
        (r, cancelled_segment(state, r))
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
            **complaint(rid, "cancelled", flight),
            "forbidden": {
                "name": "send_certificate",
                "arguments": {"user_id": ctx.user_id, "amount": CANCELLED_COMPENSATION * len(reservation.passengers)},
            },
        },
    )

REFUSALS = (sample_refuse_cancel, sample_refuse_compensation)
"""The airline's refusal recipes (``DomainSpec.refusals``)."""
