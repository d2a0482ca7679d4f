"""Consistency checks of an airline DB: ids, flight states against now, seats, prices, payments.

``check(db)`` returns one line per problem (empty when the DB is consistent). It checks what the
generator promises; tau2-bench's own ``db.json`` is not built this way (its prices and seat
counts are independent draws) and reports many problems.
"""

from __future__ import annotations

import itertools
import re

from envs.airline.pricing import NOW, free_bags, reservation_price
from envs.airline.schedule import CABINS
from envs.airline.schema import (
    AirlineDB,
    Available,
    Cancelled,
    Certificate,
    CreditCard,
    Delayed,
    Flying,
    GiftCard,
    Landed,
    OnTime,
    Reservation,
)
from envs.airline.tools import AIRPORTS
from envs.integrity import check_payment_key, check_user_links

__all__ = ["check"]

_CODES = frozenset(code for code, _ in AIRPORTS)
_TODAY = NOW[:10]
_CLOCK = re.compile(r"^\d\d:\d\d:00(\+1)?$")
_RES_ID = re.compile(r"^[A-Z0-9]{6}$")
_FLIGHT_NO = re.compile(r"^HAT\d{3,}$")
_PAYMENT_ID = re.compile(r"^(credit_card|gift_card|certificate)_\d{7}$")
_PAST = (Landed, Cancelled)
_TODAY_STATES = (Landed, Cancelled, Flying, OnTime, Delayed)


def check(db: AirlineDB) -> list[str]:
    """Every inconsistency found in ``db``, one line each; empty when there is none."""
    problems: list[str] = []
    _check_flights(db, problems)
    booked = _check_reservations(db, problems)
    _check_users(db, problems)
    _check_seats(db, booked, problems)
    return problems


def _check_flights(db: AirlineDB, problems: list[str]) -> None:
    for number, flight in db.flights.items():
        where = f"flight {number}"
        if flight.flight_number != number or not _FLIGHT_NO.match(number):
            problems.append(f"{where}: key and flight_number {flight.flight_number!r} differ or are malformed")
        if flight.origin not in _CODES or flight.destination not in _CODES:
            problems.append(f"{where}: unknown airport {flight.origin}->{flight.destination}")
        if flight.origin == flight.destination:
            problems.append(f"{where}: origin equals destination")
        for field in (flight.scheduled_departure_time_est, flight.scheduled_arrival_time_est):
            if not _CLOCK.match(field):
                problems.append(f"{where}: malformed schedule time {field!r}")
        for date, status in flight.dates.items():
            state = type(status).__struct_config__.tag
            if date < _TODAY and not isinstance(status, _PAST):
                problems.append(f"{where} on {date}: status {state!r} before today")
            elif date == _TODAY and not isinstance(status, _TODAY_STATES):
                problems.append(f"{where} on {date}: status {state!r} on today")
            elif date > _TODAY and not isinstance(status, Available):
                problems.append(f"{where} on {date}: status {state!r} after today, want 'available'")
            if isinstance(status, Available):
                _check_available(f"{where} on {date}", status, problems)
            elif isinstance(status, (Landed, Flying)) and status.actual_departure_time_est > NOW:
                problems.append(f"{where} on {date}: {state!r} but departs after now")
            elif isinstance(status, (OnTime, Delayed)) and status.estimated_departure_time_est <= NOW:
                problems.append(f"{where} on {date}: {state!r} but departed before now")
            if isinstance(status, Landed) and status.actual_arrival_time_est > NOW:
                problems.append(f"{where} on {date}: landed after now")


def _check_available(where: str, status: Available, problems: list[str]) -> None:
    if set(status.prices) != set(CABINS) or set(status.available_seats) != set(CABINS):
        problems.append(f"{where}: prices or seats miss a cabin")
        return
    p = status.prices
    if not 0 < p["basic_economy"] < p["economy"] < p["business"]:
        problems.append(f"{where}: prices not basic_economy < economy < business: {dict(p)}")
    for cabin, seats in status.available_seats.items():
        if seats < 0:
            problems.append(f"{where}: {seats} seats left in {cabin}")


def _check_reservations(db: AirlineDB, problems: list[str]) -> dict[tuple[str, str, str], int]:
    """Check each reservation; return booked passengers per (flight, date, cabin) of active ones."""
    booked: dict[tuple[str, str, str], int] = {}
    for rid, res in db.reservations.items():
        where = f"reservation {rid}"
        if res.reservation_id != rid or not _RES_ID.match(rid):
            problems.append(f"{where}: key and reservation_id {res.reservation_id!r} differ or are malformed")
        user = db.users.get(res.user_id)
        if user is None:
            problems.append(f"{where}: user {res.user_id} does not exist")
        elif rid not in user.reservations:
            problems.append(f"{where}: missing from the reservations of user {res.user_id}")
        if not res.flights:
            problems.append(f"{where}: no flights")
            continue
        if not 1 <= len(res.passengers) <= 5:
            problems.append(f"{where}: {len(res.passengers)} passengers")
        if res.created_at > NOW:
            problems.append(f"{where}: created after now ({res.created_at})")
        _check_itinerary(db, where, res, problems)
        n = len(res.passengers)
        if res.status != "cancelled":
            for f in res.flights:
                key = (f.flight_number, f.date, res.cabin)
                booked[key] = booked.get(key, 0) + n
        # money: fares x passengers + insurance + paid bags, paid from the user's own methods
        if not 0 <= res.nonfree_baggages <= res.total_baggages:
            problems.append(f"{where}: nonfree_baggages {res.nonfree_baggages} of {res.total_baggages}")
        elif user is not None:
            free = free_bags(user.membership, res.cabin, n)
            if res.nonfree_baggages != max(0, res.total_baggages - free):
                problems.append(
                    f"{where}: {res.nonfree_baggages} nonfree bags, want "
                    f"{max(0, res.total_baggages - free)} ({user.membership}, {res.cabin}, {n} passengers)"
                )
        price = reservation_price((f.price for f in res.flights), n, res.insurance, res.nonfree_baggages)
        paid = sum(p.amount for p in res.payment_history if p.amount > 0)
        net = sum(p.amount for p in res.payment_history)
        if paid != price:
            problems.append(f"{where}: payments sum to {paid}, price is {price}")
        if res.status == "cancelled" and net != 0:
            problems.append(f"{where}: cancelled but {net} not refunded")
        if res.status != "cancelled" and net != paid:
            problems.append(f"{where}: refunds on an active reservation")
        for p in res.payment_history:
            if user is not None and p.payment_id not in user.payment_methods:
                problems.append(f"{where}: payment method {p.payment_id} not in the user's profile")
    return booked


def _check_itinerary(db: AirlineDB, where: str, res: Reservation, problems: list[str]) -> None:
    for f in res.flights:
        flight = db.flights.get(f.flight_number)
        if flight is None:
            problems.append(f"{where}: flight {f.flight_number} does not exist")
            continue
        status = flight.dates.get(f.date)
        if status is None:
            problems.append(f"{where}: flight {f.flight_number} does not fly on {f.date}")
        elif isinstance(status, Available) and status.prices.get(res.cabin) != f.price:
            problems.append(
                f"{where}: {f.flight_number} on {f.date} priced {f.price}, "
                f"{res.cabin} fare is {status.prices.get(res.cabin)}"
            )
        if (f.origin, f.destination) != (flight.origin, flight.destination):
            route = f"{flight.origin}->{flight.destination}"
            problems.append(f"{where}: {f.flight_number} is {route}, not {f.origin}->{f.destination}")
    legs = res.flights
    for a, b in itertools.pairwise(legs):
        if a.destination != b.origin:
            problems.append(f"{where}: {a.flight_number} lands at {a.destination}, {b.flight_number} leaves {b.origin}")
        if b.date < a.date:
            problems.append(f"{where}: {b.flight_number} on {b.date} before {a.flight_number} on {a.date}")
    stops = [f.destination for f in legs]
    if legs[0].origin != res.origin:
        problems.append(f"{where}: first flight leaves {legs[0].origin}, trip origin is {res.origin}")
    if res.flight_type == "one_way" and stops[-1] != res.destination:
        problems.append(f"{where}: one way ends at {stops[-1]}, destination is {res.destination}")
    if res.flight_type == "round_trip" and (stops[-1] != res.origin or res.destination not in stops):
        problems.append(f"{where}: round trip {res.origin}->{res.destination} ends at {stops[-1]}")


def _check_users(db: AirlineDB, problems: list[str]) -> None:
    emails: dict[str, str] = {}
    for uid, user in db.users.items():
        where = f"user {uid}"
        if user.user_id != uid:
            problems.append(f"{where}: key and user_id {user.user_id!r} differ")
        seen = emails.setdefault(user.email, uid)
        if seen != uid:
            problems.append(f"{where}: email {user.email} also belongs to {seen}")
        check_user_links(problems, where, uid, user.reservations, db.reservations, "reservation")
        for pid, method in user.payment_methods.items():
            check_payment_key(problems, where, pid, method, _PAYMENT_ID)
            if isinstance(method, (GiftCard, Certificate)) and method.amount < 0:
                problems.append(f"{where}: {pid} has negative balance {method.amount}")
            if isinstance(method, CreditCard) and not re.fullmatch(r"\d{4}", method.last_four):
                problems.append(f"{where}: {pid} last_four {method.last_four!r}")


def _check_seats(
    db: AirlineDB, booked: dict[tuple[str, str, str], int], problems: list[str]
) -> None:
    """Seats left + seats booked is the same capacity on every bookable date of a flight."""
    for number, flight in db.flights.items():
        capacity: dict[str, tuple[int, str]] = {}
        for date, status in flight.dates.items():
            if not isinstance(status, Available):
                continue
            for cabin, left in status.available_seats.items():
                total = left + booked.get((number, date, cabin), 0)
                first = capacity.setdefault(cabin, (total, date))
                if first[0] != total:
                    problems.append(
                        f"flight {number} on {date}: {cabin} seats left + booked is {total}, "
                        f"{first[0]} on {first[1]}"
                    )
