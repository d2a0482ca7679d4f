"""Airline task recipes (cancel, bags, passengers, compensation; search-based ones in airline_trips).

``SPEC`` registers every airline recipe with the airline policy checker. Together the recipes call
every airline write tool: book_reservation, cancel_reservation, update_reservation_flights (flights
and cabin), update_reservation_baggages, update_reservation_passengers and send_certificate.
"""

from __future__ import annotations

from typing import Any

from engine.tasks.domains.airline import policy as airline_policy
from engine.tasks.domains.airline.common import (
    REASON_WORDS,
    complaint,
    identity,
    pick_payment,
    pick_reservation,
    upcoming,
    users,
)
from engine.tasks.domains.airline.policy import (
    cancel_reasons,
    cancelled_segment,
    free_bags,
    has_status,
    status_kind,
)
from engine.tasks.domains.airline.refusals import REFUSALS
from engine.tasks.domains.airline.search import day_words
from engine.tasks.domains.airline.trips import (
    sample_book,
    sample_change_cabin,
    sample_change_flights,
)
from engine.tasks.model import Intent
from engine.tasks.recipe import DomainSpec, Recipe, Reject, SampleContext, act, facts, read, unique_best
from envs.airline.pricing import CANCELLED_COMPENSATION, DELAYED_COMPENSATION, bag_charge
from envs.airline.schema import Cancelled, Delayed
from envs.kernel import Index

__all__ = ["SPEC"]

def sample_cancel(ctx: SampleContext) -> Intent | Reject:
    """Cancel a reservation the policy lets the user cancel, for a reason the user states."""
    state = ctx.state

    def eligible(r: Any) -> bool:
        return upcoming(state, r) and bool(cancel_reasons(state, r))

    target = pick_reservation(ctx, eligible, "cancel")
    if isinstance(target, Reject):
        return target
    reservation = target.reservation
    reason = ctx.rng.choice(cancel_reasons(state, reservation))
    reads = list(target.reads)
    if reason == "airline cancelled flight":
        f = cancelled_segment(state, reservation)
        reads.append(
            read(
                "get_flight_status",
                "confirm the airline cancelled the flight",
                flight_number=f.flight_number,
                date=f.date,
            )
        )
    refund = sum(p.amount for p in reservation.payment_history)
    want = f"Cancel {target.rule_text}, because {REASON_WORDS[reason]}."
    return Intent(
        kind="cancel",
        rule=target.rule,
        rule_text=want,
        actions=[act("cancel_reservation", reservation_id=reservation.reservation_id)],
        reads=reads,
        facts=facts(
            known=target.known,
            wants=[want, *(["You want to know how much money you will get back."] if refund else [])],
            withhold=["Give the reason for cancelling only when the agent asks for it."],
            if_fail=["If the agent says the trip cannot be cancelled, accept it and move on."],
        ),
        selections=target.selections,
        target=reservation.reservation_id,
        params={"reason": reason},
        outputs=[str(refund)] if refund else [],
    )


def sample_add_bags(ctx: SampleContext) -> Intent | Reject:
    """Add checked bags to a reservation, paying for bags beyond the free allowance."""
    state = ctx.state
    target = pick_reservation(ctx, lambda r: upcoming(state, r), "add_bags")
    if isinstance(target, Reject):
        return target
    reservation = target.reservation
    added = ctx.rng.randint(1, 3)
    total = reservation.total_baggages + added
    nonfree = max(reservation.nonfree_baggages, total - free_bags(state, reservation), 0)
    cost = bag_charge(reservation.nonfree_baggages, nonfree)
    paid = pick_payment(ctx, cost)
    if isinstance(paid, Reject):
        return Reject(f"add_bags: {paid.reason}")
    payment_id, pay_words, selections = paid
    want = f"Add {added} checked bag(s) to {target.rule_text}."
    user_read = read("get_user_details", "membership and payment methods", user_id=ctx.user_id)
    return Intent(
        kind="add_bags",
        rule=target.rule,
        rule_text=want,
        actions=[
            act(
                "update_reservation_baggages",
                reservation_id=reservation.reservation_id,
                total_baggages=total,
                nonfree_baggages=nonfree,
                payment_id=payment_id,
            )
        ],
        reads=[*target.reads, user_read],
        facts=facts(
            known=target.known,
            wants=[
                want,
                f"Pay for any extra bags with {pay_words}.",
                *(["You want to know how much the extra bags cost."] if cost else []),
            ],
            if_fail=["If bags cannot be added, leave the reservation as it is."],
        ),
        selections=[*target.selections, *selections],
        target=reservation.reservation_id,
        outputs=[str(cost)] if cost else [],
    )


def sample_passengers(ctx: SampleContext) -> Intent | Reject:
    """Correct a passenger's date of birth, or swap a passenger for one saved in the profile."""
    state, rng = ctx.state, ctx.rng
    target = pick_reservation(ctx, lambda r: upcoming(state, r), "update_passengers")
    if isinstance(target, Reject):
        return target
    reservation = target.reservation
    passengers = [{"first_name": p.first_name, "last_name": p.last_name, "dob": p.dob} for p in reservation.passengers]
    i = rng.randrange(len(passengers))
    old = passengers[i]
    user = state.get("users", ctx.user_id)
    saved = [{"first_name": p.first_name, "last_name": p.last_name, "dob": p.dob} for p in user.saved_passengers]
    saved = [p for p in saved if p not in passengers]
    reads = list(target.reads)
    old_name = f"{old['first_name']} {old['last_name']}"
    if saved and rng.random() < 0.5:
        new = rng.choice(saved)
        reads.append(read("get_user_details", "saved passengers", user_id=ctx.user_id))
        want = (
            f"On {target.rule_text}, replace {old_name} with {new['first_name']} "
            f"{new['last_name']}, who is saved in your profile."
        )
        rule = f"{target.rule}+saved_passenger"
    else:
        year = int(old["dob"][:4]) + rng.choice((-1, 1))
        new = dict(old, dob=f"{year}{old['dob'][4:]}")
        if new["dob"][5:] == "02-29":
            new["dob"] = f"{year}-02-28"
        want = f"On {target.rule_text}, correct {old_name}'s date of birth to {new['dob']}."
        rule = f"{target.rule}+fix_dob"
    passengers[i] = new
    return Intent(
        kind="update_passengers",
        rule=rule,
        rule_text=want,
        actions=[
            act(
                "update_reservation_passengers",
                reservation_id=reservation.reservation_id,
                passengers=passengers,
            )
        ],
        reads=reads,
        facts=facts(known=target.known, wants=[want]),
        selections=target.selections,
        target=reservation.reservation_id,
    )


def _users_with(kind: type) -> Any:
    def build(base: Any) -> set[str]:
        state = base.new_state()
        return {r.user_id for r in base.tables["reservations"].values() if has_status(state, r, kind)}

    return build


USERS_WITH = {
    kind: Index(f"tasks.airline.users_with.{kind.__name__}", _users_with(kind)) for kind in (Cancelled, Delayed)
}
"""Per flight status type: the users holding (in the base DB) a reservation with a flight of that status."""


def _with_status(ctx: SampleContext, kind: type) -> bool:
    """Whether the user held (in the base DB) a reservation with a flight of that status."""
    return ctx.user_id in USERS_WITH[kind].of(ctx.base)


def _compensable(state: Any, user: Any, reservation: Any) -> bool:
    return user.membership in ("silver", "gold") or reservation.insurance == "yes" or reservation.cabin == "business"


def sample_compensation(ctx: SampleContext) -> Intent | Reject:
    """Complain about a cancelled flight and get the certificate the policy allows (100/passenger)."""
    state, rng = ctx.state, ctx.rng
    user = state.get("users", ctx.user_id)
    if not _with_status(ctx, Cancelled):
        return Reject("compensation: no cancelled flight")
    mine = [state.get("reservations", rid) for rid in user.reservations]
    hits = [(r, cancelled_segment(state, r)) for r in mine if r is not None and _compensable(state, user, r)]
    done = {i.params.get("reservation_id") for i in ctx.prior if i.kind in ("compensation", "delay")}
    hits = [(r, f) for r, f in hits if f is not None and r.reservation_id not in done]
    if not hits:
        return Reject("compensation: no cancelled flight")
    reservation, flight = rng.choice(hits)
    rid = reservation.reservation_id
    user_read = read("get_user_details", "membership", user_id=ctx.user_id)
    status_read = read(
        "get_flight_status", "confirm the cancellation", flight_number=flight.flight_number, date=flight.date
    )
    selections = []
    known = []
    if ctx.e_hint <= 3 or rng.random() < 0.4:
        reads = [user_read, read("get_reservation_details", "check the booking", reservation_id=rid)]
        known.append(f"The reservation id is {rid}.")
        rule = "given"
    else:
        reads = [user_read] + [
            read("get_reservation_details", "find the booking with that flight", reservation_id=r.reservation_id)
            for r in mine
            if r is not None
        ]
        rows = [
            (
                r.reservation_id,
                int(any(f.flight_number == flight.flight_number and f.date == flight.date for f in r.flights)),
                r,
            )
            for r in mine
            if r is not None
        ]
        picked = unique_best("reservation: holds the flight", "holds the flight", "max", rows)
        if isinstance(picked, Reject):
            return Reject(f"compensation: {picked.reason}")
        selections.append(picked[1])
        rule = "holds_flight"
    reads.append(status_read)
    amount = CANCELLED_COMPENSATION * len(reservation.passengers)
    want = (
        f"Complain that your flight {flight.flight_number} on {day_words(flight.date)} was cancelled,"
        " and ask what the airline can do for you."
    )
    return Intent(
        kind="compensation",
        rule=rule,
        rule_text=want,
        actions=[act("send_certificate", user_id=ctx.user_id, amount=amount)],
        reads=reads,
        facts=facts(
            known=known,
            wants=[want, "If you are offered something, you want to know its amount."],
            withhold=["Do not ask for a specific amount."],
            if_fail=["If the agent offers nothing, accept it."],
        ),
        selections=selections,
        target=rid,
        params=complaint(rid, "cancelled", flight),
        outputs=[str(amount)],
    )


def sample_delay(ctx: SampleContext) -> Intent | Reject:
    """A delayed flight: cancel the reservation (when allowed), then the 50/passenger certificate."""
    state = ctx.state
    user = state.get("users", ctx.user_id)
    if ctx.w_left < 2:
        return Reject("delay: needs two writes")
    if not _with_status(ctx, Delayed):
        return Reject("delay: no delayed flight")
    for rid in user.reservations:
        reservation = state.get("reservations", rid)
        if reservation is None or not upcoming(state, reservation):
            continue
        delayed = next(
            (f for f in reservation.flights if status_kind(state, f.flight_number, f.date) is Delayed),
            None,
        )
        reasons = [r for r in cancel_reasons(state, reservation) if r == "change of plan"]
        if delayed is None or not reasons or not _compensable(state, user, reservation):
            continue
        amount = DELAYED_COMPENSATION * len(reservation.passengers)
        want = (
            f"Your flight {delayed.flight_number} is delayed and you no longer want the trip: cancel"
            f" reservation {rid} and ask what the airline can do for you about the delay."
        )
        return Intent(
            kind="delay",
            rule="given",
            rule_text=want,
            actions=[
                act("cancel_reservation", reservation_id=rid),
                act("send_certificate", user_id=ctx.user_id, amount=amount),
            ],
            reads=[
                read("get_user_details", "membership", user_id=ctx.user_id),
                read("get_reservation_details", "check the booking", reservation_id=rid),
                read(
                    "get_flight_status",
                    "confirm the delay",
                    flight_number=delayed.flight_number,
                    date=delayed.date,
                ),
            ],
            facts=facts(
                known=[f"The reservation id is {rid}."],
                wants=[want, "If you are offered something, you want to know its amount."],
            ),
            target=rid,
            params={
                **complaint(rid, "delayed", delayed),
                "reason": "change of plan",
            },
            outputs=[str(amount)],
        )
    return Reject("delay: no delayed flight")


SPEC = DomainSpec(
    domain="airline",
    recipes=(
        Recipe("book", ("book_reservation",), sample_book, weight=2.0),
        Recipe("cancel", ("cancel_reservation",), sample_cancel, follows=("compensation",)),
        Recipe("change_flights", ("update_reservation_flights",), sample_change_flights, weight=1.5),
        Recipe(
            "change_cabin",
            ("update_reservation_flights",),
            sample_change_cabin,
            follows=("change_flights", "book"),
        ),
        Recipe(
            "add_bags",
            ("update_reservation_baggages",),
            sample_add_bags,
            follows=("change_flights", "change_cabin", "book", "update_passengers"),
        ),
        Recipe(
            "update_passengers",
            ("update_reservation_passengers",),
            sample_passengers,
            follows=("book", "change_flights", "change_cabin"),
        ),
        Recipe("compensation", ("send_certificate",), sample_compensation, weight=0.7),
        Recipe("delay", ("cancel_reservation", "send_certificate"), sample_delay, weight=0.2),
    ),
    policy=airline_policy.check,
    users=users,
    identity=identity,
    unknown="Flight numbers, fares, prices and refund amounts: the agent looks them up; you do not know them"
    " in advance.",
    refusals=REFUSALS,
)
