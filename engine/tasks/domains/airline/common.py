"""Shared pieces of the airline recipes: picking a reservation by a rule, payment choices, identity.

Reservation rules say which of the user's reservations an intent is about: 'given' (the user knows
the id: one read), or a comparison only reading the user's profile and every one of their
reservations resolves ('the upcoming trip to Miami', 'the trip that starts soonest', 'the most
recently booked', 'the one I paid most for', 'the one with the most travellers'). Payment choices
pick a profile payment method by a rule ('my credit card', 'the gift card with the most money on
it'). Nothing here writes to the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.tasks.domains.airline.policy import is_flown
from engine.tasks.model import EvidenceRead, Selection
from engine.tasks.recipe import Reject, SampleContext, read, unique_best
from envs.airline.tools import AIRPORTS
from envs.kernel import BaseDB, Index, State

__all__ = [
    "CITY",
    "METRO",
    "Target",
    "card_words",
    "complaint",
    "identity",
    "pick_payment",
    "pick_reservation",
    "upcoming",
    "users",
]

REASON_WORDS = {
    "change of plan": "your plans changed",
    "airline cancelled flight": "the airline cancelled one of its flights",
    "health": "of a health problem",
    "weather": "of the weather",
}
"""How the user words each cancellation reason."""
CITY = dict(AIRPORTS)
METRO = {"JFK": "New York", "EWR": "New York", "LGA": "New York"}
"""Airports that share a metro area: the only either/or origins a customer offers."""


USERS: Index[list[str]] = Index("tasks.airline.users", lambda base: list(base.tables["users"]))


def identity(state: State, user_id: str) -> list[str]:
    """What an airline user gives to authenticate: their user id and name."""
    user = state.get("users", user_id)
    name = f"{user.name.first_name} {user.name.last_name}"
    return [f"You are {name}.", f"Your user id is {user_id}."]


def users(base: BaseDB) -> list[str]:
    """Every user id, in DB order."""
    return USERS.of(base)


def complaint(reservation_id: str, kind: str, flight: Any) -> dict[str, Any]:
    """An intent's ``params`` for a complaint about a ``kind`` ('cancelled' or 'delayed') flight of a
    reservation: what the policy check of a compensation reads."""
    return {
        "reservation_id": reservation_id,
        "complaint": kind,
        "flight_number": flight.flight_number,
        "date": flight.date,
    }


def card_words(method: Any) -> str:
    """How a user names a payment method ('your visa card ending in 7447', 'your gift card')."""
    source = type(method).__struct_config__.tag
    if source == "credit_card":
        return f"your {method.brand} card ending in {method.last_four}"
    if source == "gift_card":
        return "your gift card"
    return "your travel certificate"


def upcoming(state: State, reservation: Any) -> bool:
    """Active (not cancelled) and nothing flown yet."""
    return reservation.status != "cancelled" and not is_flown(state, reservation)


class Target:
    """A reservation an intent acts on, how the user names it and the reads that pin it down."""

    __slots__ = ("known", "reads", "reservation", "rule", "rule_text", "selections")

    def __init__(
        self,
        reservation: Any,
        rule: str,
        rule_text: str,
        reads: list[EvidenceRead],
        selections: list[Selection],
        known: list[str],
    ) -> None:
        self.reservation = reservation
        self.rule = rule
        self.rule_text = rule_text
        self.reads = reads
        self.selections = selections
        self.known = known


def _total_paid(reservation: Any) -> int:
    return sum(p.amount for p in reservation.payment_history)


# rule id -> (metric, order, value, wording); compared among the user's upcoming reservations
RESERVATION_RULES: dict[str, tuple[str, str, Callable[[Any], Any], str]] = {
    "soonest": ("first flight date", "min", lambda r: r.flights[0].date, "the trip that starts soonest"),
    "last_booked": ("booked at", "max", lambda r: r.created_at, "the trip you booked most recently"),
    "most_paid": ("total paid", "max", _total_paid, "the trip you paid the most for"),
    "most_passengers": (
        "passengers",
        "max",
        lambda r: len(r.passengers),
        "the trip with the most travellers",
    ),
}


def pick_reservation(
    ctx: SampleContext, eligible: Callable[[Any], bool], what: str, allow_given: bool = True
) -> Target | Reject:
    """Choose the intent's reservation: the anchor's, or one picked by a reservation rule.

    ``eligible`` filters reservations the intent can act on; the rule compares all the user's
    upcoming reservations (the user thinks of those), and the winner must be eligible.
    """
    state = ctx.state
    anchor = ctx.anchor_intent()
    if anchor is not None:
        reservation = state.get("reservations", anchor.target)
        if reservation is None or not eligible(reservation):
            return Reject(f"{what}: anchor not eligible")
        reads = [read("get_reservation_details", "see the reservation", reservation_id=anchor.target)]
        return Target(reservation, "same", "the same reservation as before", reads, [], [])
    user = state.get("users", ctx.user_id)
    mine = [state.get("reservations", rid) for rid in user.reservations]
    mine = [r for r in mine if r is not None]
    soon = [r for r in mine if upcoming(state, r)]
    ok = [r for r in soon if eligible(r)]
    if not ok:
        return Reject(f"{what}: no eligible reservation")
    cost_all = 1 + len(mine)
    if allow_given and (ctx.e_hint <= 2 or cost_all > ctx.e_hint + 3 or ctx.rng.random() < 0.25):
        reservation = ctx.rng.choice(ok)
        rid = reservation.reservation_id
        reads = [read("get_reservation_details", "see the reservation", reservation_id=rid)]
        known = [f"The reservation id is {rid}."]
        return Target(reservation, "given", f"reservation {rid}", reads, [], known)
    reads = [read("get_user_details", "list the user's reservations", user_id=ctx.user_id)]
    reads += [
        read("get_reservation_details", "compare the reservations", reservation_id=r.reservation_id) for r in mine
    ]
    if ctx.rng.random() < 0.4:
        pick = ctx.rng.choice(ok)
        rows = [(r.reservation_id, int(r.destination == pick.destination), r) for r in soon]
        picked = unique_best("reservation: to city", f"goes to {pick.destination}", "max", rows)
        if isinstance(picked, Reject):
            return Reject(f"{what}: {picked.reason}")
        _, selection = picked
        city = CITY.get(pick.destination, pick.destination)
        text = f"your upcoming trip to {city}"
        return Target(pick, "to_city", text, reads, [selection], [])
    rule = ctx.rng.choice(sorted(RESERVATION_RULES))
    metric, order, value, text = RESERVATION_RULES[rule]
    rows = [(r.reservation_id, value(r), r) for r in soon]
    picked = unique_best(f"reservation: {rule}", metric, order, rows)  # type: ignore[arg-type]
    if isinstance(picked, Reject):
        return Reject(f"{what}: {picked.reason}")
    reservation, selection = picked
    if not eligible(reservation):
        return Reject(f"{what}: rule picks an ineligible reservation")
    return Target(reservation, rule, f"{text} (among your upcoming trips)", reads, [selection], [])


def pick_payment(
    ctx: SampleContext, amount: int, kinds: tuple[str, ...] = ("credit_card", "gift_card")
) -> tuple[str, str, list[Selection]] | Reject:
    """A payment method of the user's profile that can pay ``amount``, how the user names it.

    Returns (payment_id, wording, selections). 'the gift card with the most money on it' is a
    comparison over the profile's gift cards and is recorded as a Selection.
    """
    user = ctx.state.get("users", ctx.user_id)
    methods = list(user.payment_methods.values())
    cards = [m for m in methods if type(m).__struct_config__.tag == "credit_card"]
    gifts = [m for m in methods if type(m).__struct_config__.tag == "gift_card"]
    choices = []
    if "credit_card" in kinds and cards:
        choices.append("card")
    if "gift_card" in kinds and any(g.amount >= max(amount, 0) for g in gifts):
        choices.append("gift")
    if not choices:
        return Reject("payment: no usable payment method")
    if ctx.rng.choice(choices) == "card":
        card = ctx.rng.choice(cards)
        return card.id, card_words(card), []
    if len(gifts) == 1:
        gift = gifts[0]
        if gift.amount < max(amount, 0):
            return Reject("payment: gift card balance too low")
        return gift.id, "your gift card", []
    rows = [(g.id, g.amount, g) for g in gifts]
    picked = unique_best("payment: richest gift card", "balance", "max", rows)
    if isinstance(picked, Reject):
        return picked
    gift, selection = picked
    if gift.amount < max(amount, 0):
        return Reject("payment: gift card balance too low")
    return gift.id, "the gift card with the most money on it", [selection]
