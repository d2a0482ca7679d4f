"""The airline policy's rules as checks on one gold write; each broken rule has its own stable reason.

The facts come from tau2-bench's airline policy (current time 2024-05-15 15:00 EST). The kernel's
tools enforce only what tau2's API enforces; the rules "the API does not check" live here:
cancellation eligibility, basic-economy and flown-segment limits, trip shape on changes, payment
mix, free-bag allowance, compensation conditions and amounts. Nothing here samples tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from engine.tasks.model import Action, Intent
from envs.airline.pricing import (
    CANCEL_WINDOW_START,
    CANCELLED_COMPENSATION,
    DELAYED_COMPENSATION,
)
from envs.airline.pricing import free_bags as allowance_of
from envs.airline.schema import Cancelled, Certificate, CreditCard, Delayed, Flying, GiftCard, Landed
from envs.kernel import Index, State

__all__ = [
    "INSURED_REASONS",
    "cancel_reasons",
    "cancelled_segment",
    "check",
    "free_bags",
    "is_flown",
    "segment_status",
    "status_kind",
]

INSURED_REASONS = ("health", "weather")
"""Cancellation reasons travel insurance covers."""
MAX_PASSENGERS = 5


def segment_status(state: State, flight_number: str, date: str) -> Any:
    """The status record of a flight on a date, or None."""
    flight = state.get("flights", flight_number)
    return None if flight is None else flight.dates.get(date)


def _status_kinds(base: Any) -> dict[tuple[str, str], type]:
    return {
        (number, date): type(status)
        for number, flight in base.tables["flights"].items()
        for date, status in flight.dates.items()
    }


STATUS_KINDS = Index("tasks.airline.status", _status_kinds)
"""The type of every (flight number, date) status in the base DB."""


def status_kind(state: State, flight_number: str, date: str) -> type | None:
    """The type of a flight's status on a date (tools never change a status's type: cached)."""
    return STATUS_KINDS.of(state.base).get((flight_number, date))


def is_flown(state: State, reservation: Any) -> bool:
    """Whether any segment of the reservation has taken off (landed or flying)."""
    kinds = STATUS_KINDS.of(state.base)
    return any(kinds.get((f.flight_number, f.date)) in (Landed, Flying) for f in reservation.flights)


def has_status(state: State, reservation: Any, kind: type) -> bool:
    """Whether any segment of the reservation has a status of the given type on its date."""
    kinds = STATUS_KINDS.of(state.base)
    return any(kinds.get((f.flight_number, f.date)) is kind for f in reservation.flights)


def free_bags(state: State, reservation: Any) -> int:
    """The reservation's free checked bags: per passenger by membership and cabin."""
    user = state.get("users", reservation.user_id)
    return allowance_of(user.membership, reservation.cabin, len(reservation.passengers))


def cancel_reasons(state: Any, reservation: Any) -> list[str]:
    """Reasons under which the policy lets this reservation be cancelled."""
    reasons = []
    if reservation.created_at >= CANCEL_WINDOW_START or reservation.cabin == "business":
        reasons.append("change of plan")
    if has_status(state, reservation, Cancelled):
        reasons.append("airline cancelled flight")
    if reservation.insurance == "yes":
        reasons.extend(INSURED_REASONS)
    return reasons


def cancelled_segment(state: Any, reservation: Any) -> Any:
    """The reservation's first flight the airline cancelled, or None."""
    for f in reservation.flights:
        if status_kind(state, f.flight_number, f.date) is Cancelled:
            return f
    return None


def _trip_ok(origin: str, destination: str, flight_type: str, legs: list[tuple[str, str]]) -> bool:
    """Whether segments (origin, destination) chain into the trip: out, and back for round trips."""
    if not legs:
        return False
    for (_, arrive), (depart, _) in pairwise(legs):
        if arrive != depart:
            return False
    if legs[0][0] != origin:
        return False
    ends = [b for _, b in legs]
    if flight_type == "one_way":
        return ends[-1] == destination and destination not in ends[:-1]
    return destination in ends[:-1] and ends[-1] == origin


def _payment_kind(state: State, user_id: str, payment_id: str) -> type | None:
    user = state.get("users", user_id)
    method = None if user is None else user.payment_methods.get(payment_id)
    return None if method is None else type(method)


def _check_book(state: State, args: dict[str, Any]) -> str | None:
    user = state.get("users", args["user_id"])
    if user is None:
        return "policy: unknown user"
    passengers = args["passengers"]
    if len(passengers) > MAX_PASSENGERS:
        return "policy: more than five passengers"
    counts = {Certificate: 0, CreditCard: 0, GiftCard: 0}
    for payment in args["payment_methods"]:
        method = user.payment_methods.get(payment["payment_id"])
        if method is None:
            return "policy: payment method not in profile"
        counts[type(method)] += 1
    if counts[Certificate] > 1:
        return "policy: more than one certificate"
    if counts[CreditCard] > 1:
        return "policy: more than one credit card"
    if counts[GiftCard] > 3:
        return "policy: more than three gift cards"
    legs = []
    for info in args["flights"]:
        flight = state.get("flights", info["flight_number"])
        if flight is None:
            return "policy: itinerary does not match the trip"
        legs.append((flight.origin, flight.destination))
    if not _trip_ok(args["origin"], args["destination"], args["flight_type"], legs):
        return "policy: itinerary does not match the trip"
    allowance = allowance_of(user.membership, args["cabin"], len(passengers))
    if args["nonfree_baggages"] != max(0, args["total_baggages"] - allowance):
        return "policy: wrong number of paid bags"
    return None


def _check_cancel(state: State, args: dict[str, Any], intent: Intent) -> str | None:
    reservation = state.get("reservations", args["reservation_id"])
    if reservation is None:
        return "policy: unknown reservation"
    if reservation.status == "cancelled":
        return "policy: reservation already cancelled"
    if is_flown(state, reservation):
        return "policy: a flight was already flown"
    reason = intent.params.get("reason", "")
    if (
        reservation.created_at >= CANCEL_WINDOW_START
        or has_status(state, reservation, Cancelled)
        or reservation.cabin == "business"
        or (reservation.insurance == "yes" and reason in INSURED_REASONS)
    ):
        return None
    return "policy: cancellation not allowed"


def _check_update_payment(state: State, user_id: str, payment_id: str) -> str | None:
    if _payment_kind(state, user_id, payment_id) not in (CreditCard, GiftCard):
        return "policy: payment must be a gift card or credit card in the profile"
    return None


def _check_update_flights(state: State, args: dict[str, Any]) -> str | None:
    reservation = state.get("reservations", args["reservation_id"])
    if reservation is None:
        return "policy: unknown reservation"
    if reservation.status == "cancelled":
        return "policy: reservation already cancelled"
    old = [(f.flight_number, f.date) for f in reservation.flights]
    new = [(f["flight_number"], f["date"]) for f in args["flights"]]
    if new != old:
        if reservation.cabin == "basic_economy":
            return "policy: basic economy flights cannot be modified"
        legs = []
        for number, _ in new:
            flight = state.get("flights", number)
            if flight is None:
                return "policy: change must keep origin, destination and trip type"
            legs.append((flight.origin, flight.destination))
        if not _trip_ok(reservation.origin, reservation.destination, reservation.flight_type, legs):
            return "policy: change must keep origin, destination and trip type"
        kept = set(new)
        for f in reservation.flights:
            status = segment_status(state, f.flight_number, f.date)
            if (f.flight_number, f.date) not in kept and isinstance(status, (Landed, Flying)):
                return "policy: a flown flight cannot be changed"
    if args["cabin"] != reservation.cabin and is_flown(state, reservation):
        return "policy: cabin change after a flight was flown"
    return _check_update_payment(state, reservation.user_id, args["payment_id"])


def _check_bags(state: State, args: dict[str, Any]) -> str | None:
    reservation = state.get("reservations", args["reservation_id"])
    if reservation is None:
        return "policy: unknown reservation"
    if args["total_baggages"] < reservation.total_baggages:
        return "policy: checked bags can only be added"
    allowance = free_bags(state, reservation)
    wanted = max(reservation.nonfree_baggages, args["total_baggages"] - allowance, 0)
    if args["nonfree_baggages"] != wanted:
        return "policy: wrong number of paid bags"
    return _check_update_payment(state, reservation.user_id, args["payment_id"])


def _check_passengers(state: State, args: dict[str, Any]) -> str | None:
    reservation = state.get("reservations", args["reservation_id"])
    if reservation is None:
        return "policy: unknown reservation"
    if len(args["passengers"]) != len(reservation.passengers):
        return "policy: number of passengers cannot change"
    return None


def _check_certificate(state: State, args: dict[str, Any], intent: Intent, done: Sequence[Action]) -> str | None:
    reservation_id = intent.params.get("reservation_id")
    complaint = intent.params.get("complaint")
    reservation = None if reservation_id is None else state.get("reservations", reservation_id)
    if reservation is None or complaint not in ("cancelled", "delayed"):
        return "policy: compensation without a complaint about a reservation"
    if reservation.user_id != args["user_id"]:
        return "policy: compensation to another user"
    user = state.get("users", reservation.user_id)
    if not (user.membership in ("silver", "gold") or reservation.insurance == "yes" or reservation.cabin == "business"):
        return "policy: compensation not allowed for this member"
    number, date = intent.params.get("flight_number"), intent.params.get("date")
    original = state.base.tables["reservations"].get(reservation_id, reservation)
    on_booking = any(f.flight_number == number and f.date == date for r in (reservation, original) for f in r.flights)
    status = segment_status(state, str(number), str(date))
    n = len(reservation.passengers)
    if complaint == "cancelled":
        if not on_booking or not isinstance(status, Cancelled):
            return "policy: no cancelled flight in the reservation"
        expected = CANCELLED_COMPENSATION * n
    else:
        if not on_booking or not isinstance(status, Delayed):
            return "policy: no delayed flight in the reservation"
        if not any(
            a.name in ("cancel_reservation", "update_reservation_flights")
            and a.arguments.get("reservation_id") == reservation_id
            for a in done
        ):
            return "policy: delay compensation before changing or cancelling"
        expected = DELAYED_COMPENSATION * n
    if args["amount"] != expected:
        return "policy: wrong compensation amount"
    return None


def check(state: State, action: Action, intent: Intent, done: Sequence[Action]) -> str | None:
    """Why ``action`` (about to run on ``state``) breaks the airline policy, or None if it obeys."""
    args = action.arguments
    name = action.name
    if name == "book_reservation":
        return _check_book(state, args)
    if name == "cancel_reservation":
        return _check_cancel(state, args, intent)
    if name == "update_reservation_flights":
        return _check_update_flights(state, args)
    if name == "update_reservation_baggages":
        return _check_bags(state, args)
    if name == "update_reservation_passengers":
        return _check_passengers(state, args)
    if name == "send_certificate":
        return _check_certificate(state, args, intent, done)
    return None
