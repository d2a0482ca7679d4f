"""Seeded synthetic airline DB at any scale: route network, per-date flight states, users, bookings.

Everything is drawn from one ``random.Random(seed)``, so the same ``(users, seed)`` gives the
same DB, byte for byte once encoded. The calendar is tau2-bench's: flights on 2024-05-01 to
2024-05-30, "now" is 2024-05-15 15:00 EST (``tools.NOW``). Sizes follow tau2's ratios per user
(4 reservations each); the schedule grows with the square root of the user count so routes stay
plausible (300 flights at 500 users, 3,000 at 50,000). Each flight has a fixed capacity per
cabin and, on every bookable date, ``available_seats`` is that capacity minus the passengers of
the active reservations on it.
"""

from __future__ import annotations

import math
import random
from datetime import timedelta

from envs.airline.pricing import FREE_BAGS, NEW_CERTIFICATE_IDS, NEW_RESERVATION_IDS, free_bags, reservation_price
from envs.airline.schedule import (
    CABINS,
    EPOCH,
    LAST_DAY,
    NOW_MINUTE,
    TODAY,
    Leg,
    build_schedule,
    day_status,
    flight_table,
)
from envs.airline.schema import (
    Address,
    AirlineDB,
    Certificate,
    CreditCard,
    GiftCard,
    Name,
    Passenger,
    Payment,
    PaymentMethod,
    Reservation,
    ReservationFlight,
    User,
)
from envs.synth import IdPool, Person, address_fields, cumulative, gc_paused, random_date, user_handles

__all__ = ["FREE_BAGS", "generate_db"]

_RES_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# First-flight day weights for bookings (days 1..29): most trips are near or after "now".
_DAY_WEIGHTS = (1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 12, 12, 11, 10, 10, 9, 8, 8, 7, 6, 6,
                5, 5, 4)  # fmt: skip
_SPAN_WEIGHTS = (15, 15, 13, 11, 10, 6, 6, 5, 4, 4, 2, 2, 1, 1)  # round trips, 1..14 days
_RES_PER_USER = cumulative((48, 26, 77, 70, 82, 66, 50, 35, 22, 13, 9, 2))  # 0..11 reservations, mean ~4
_DAY_CUM = cumulative(_DAY_WEIGHTS)
_SPAN_CUM = cumulative(_SPAN_WEIGHTS)
_PAX_CUM = cumulative((46, 33, 15, 5, 1))  # 1..5 passengers
_BAGS_CUM = cumulative((62, 26, 10, 2))  # 0..3 checked bags per passenger


# -- 2) users ------------------------------------------------------------------------------------
def _passenger(rng: random.Random, last: str | None = None) -> Passenger:
    person = Person(rng)
    child = rng.random() < 0.12
    dob = random_date(rng, 2008, 2021) if child else random_date(rng, 1948, 2004)
    return Passenger(first_name=person.first, last_name=last or person.last, dob=dob)


def _payment_methods(rng: random.Random, ids: IdPool) -> dict[str, PaymentMethod]:
    kinds = (
        ["credit_card"] * rng.choices((0, 1, 2, 3), weights=(25, 45, 22, 8))[0]
        + ["gift_card"] * rng.choices((0, 1, 2), weights=(50, 38, 12))[0]
        + ["certificate"] * rng.choices((0, 1, 2), weights=(55, 33, 12))[0]
    )
    if "credit_card" not in kinds and "gift_card" not in kinds:
        kinds.append("credit_card")
    rng.shuffle(kinds)
    methods: dict[str, PaymentMethod] = {}
    for kind in kinds:
        pid = ids.digits(f"{kind}_", 7)
        if kind == "credit_card":
            brand = rng.choices(("visa", "mastercard", "amex"), weights=(50, 40, 10))[0]
            methods[pid] = CreditCard(id=pid, brand=brand, last_four=f"{rng.randrange(10000):04d}")
        elif kind == "gift_card":
            methods[pid] = GiftCard(id=pid, amount=float(rng.randint(0, 300)))
        else:
            amount = float(rng.choice((100, 150, 200, 250, 500)))
            methods[pid] = Certificate(id=pid, amount=amount)
    return methods


def _user(rng: random.Random, names: IdPool, payment_ids: IdPool) -> User:
    person = Person(rng)
    first, last = person.first.lower(), person.last.lower()
    user_id, email = user_handles(rng, names, first, last)
    saved = rng.choices((0, 1, 2, 3), weights=(10, 55, 28, 7))[0]
    return User(
        user_id=user_id,
        name=Name(first_name=person.first, last_name=person.last),
        address=Address(**address_fields(rng)),
        email=email,
        dob=random_date(rng, 1950, 2004),
        payment_methods=_payment_methods(rng, payment_ids),
        saved_passengers=[_passenger(rng) for _ in range(saved)],
        membership=rng.choices(("regular", "silver", "gold"), weights=(30, 36, 34))[0],
        reservations=[],
    )


# -- 3) reservations -----------------------------------------------------------------------------
class _Booker:
    """Draws itineraries over the schedule and keeps the seat ledger of active reservations."""

    def __init__(self, rng: random.Random, legs: list[Leg]) -> None:
        self.rng = rng
        self.legs = legs
        self.booked = [0] * (len(legs) * (LAST_DAY + 1) * 3)
        self.direct: dict[tuple[str, str], list[Leg]] = {}
        for leg in legs:
            self.direct.setdefault((leg.orig, leg.dest), []).append(leg)
        self._onestop: dict[tuple[str, str], list[tuple[Leg, Leg, int]]] = {}
        self.by_origin: dict[str, list[Leg]] = {}
        for leg in legs:
            self.by_origin.setdefault(leg.orig, []).append(leg)

    def onestop(self, orig: str, dest: str) -> list[tuple[Leg, Leg, int]]:
        key = (orig, dest)
        found = self._onestop.get(key)
        if found is None:
            found = [
                (a, b, off) for a in self.by_origin.get(orig, ()) for b, off in a.conns if b.dest == dest
            ]
            self._onestop[key] = found
        return found

    def outbound(self, day: int) -> list[tuple[Leg, int]]:
        """A one-way trip starting on ``day``: direct (30%) or with one connection."""
        rng = self.rng
        first = self.legs[rng.randrange(len(self.legs))]
        if rng.random() < 0.3 or not first.conns:
            return [(first, day)]
        second, offset = first.conns[rng.randrange(len(first.conns))]
        return [(first, day), (second, day + offset)]

    def inbound(self, orig: str, dest: str, day: int, direct: bool) -> list[tuple[Leg, int]] | None:
        """A trip from ``orig`` to ``dest`` on ``day``, preferring direct or one-stop as asked."""
        rng = self.rng
        nonstop = self.direct.get((orig, dest), [])
        stops = self.onestop(orig, dest)
        if (direct and nonstop) or not stops:
            if not nonstop:
                return None
            return [(nonstop[rng.randrange(len(nonstop))], day)]
        first, second, offset = stops[rng.randrange(len(stops))]
        return [(first, day), (second, day + offset)]

    def itinerary(self, round_trip: bool) -> tuple[list[tuple[Leg, int]], str] | None:
        """Legs with their days, and the trip's destination (where a round trip turns back)."""
        rng = self.rng
        if not round_trip:
            out = self.outbound(rng.choices(range(1, 30), cum_weights=_DAY_CUM)[0])
            return out, out[-1][0].dest
        span = rng.choices(range(1, 15), cum_weights=_SPAN_CUM)[0]
        day = rng.choices(range(1, 30 - span), cum_weights=_DAY_CUM[: 29 - span])[0]
        out = self.outbound(day)
        last, last_day = out[-1]
        back_day = max(day + span, last_day + 1 + last.arr // 1440)
        direct = len(out) == 1 if rng.random() < 0.8 else len(out) == 2
        back = self.inbound(last.dest, out[0][0].orig, back_day, direct)
        return None if back is None else (out + back, last.dest)

    def fits(self, trip: list[tuple[Leg, int]], cabin: int, n: int) -> bool:
        """Every leg on a date in range, and seats left on every bookable one."""
        for leg, day in trip:
            if day > LAST_DAY:
                return False
            if day > TODAY and self.booked[(leg.idx * (LAST_DAY + 1) + day) * 3 + cabin] + n > leg.cap[cabin]:
                return False
        return True

    def take(self, trip: list[tuple[Leg, int]], cabin: int, n: int) -> None:
        for leg, day in trip:
            if day > TODAY:
                self.booked[(leg.idx * (LAST_DAY + 1) + day) * 3 + cabin] += n


def _reservation(
    rng: random.Random, booker: _Booker, user: User, reservation_id: str
) -> Reservation | None:
    round_trip = rng.random() < 0.48
    cabin_i = rng.randrange(3)
    cabin = CABINS[cabin_i]
    n = rng.choices((1, 2, 3, 4, 5), cum_weights=_PAX_CUM)[0]
    cancelled = rng.random() < 0.05
    for _ in range(30):
        drawn = booker.itinerary(round_trip)
        if drawn is not None and booker.fits(drawn[0], cabin_i, 0 if cancelled else n):
            trip, destination = drawn
            break
    else:
        return None
    if not cancelled:
        booker.take(trip, cabin_i, n)
    # passengers: usually the user, then saved passengers or family members
    passengers: list[Passenger] = []
    if rng.random() < 0.8:
        passengers.append(
            Passenger(first_name=user.name.first_name, last_name=user.name.last_name, dob=user.dob)
        )
    saved = [p for p in user.saved_passengers if rng.random() < 0.5]
    while len(passengers) < n:
        if saved:
            p = saved.pop()
            passengers.append(Passenger(first_name=p.first_name, last_name=p.last_name, dob=p.dob))
        else:
            family = user.name.last_name if rng.random() < 0.35 else None
            passengers.append(_passenger(rng, family))
    flights = [
        ReservationFlight(
            flight_number=leg.number,
            origin=leg.orig,
            destination=leg.dest,
            date=f"2024-05-{day:02d}",
            price=leg.prices[day][cabin_i],
        )
        for leg, day in trip
    ]
    bags = sum(rng.choices((0, 1, 2, 3), cum_weights=_BAGS_CUM, k=n))
    nonfree = max(0, bags - free_bags(user.membership, cabin, n))
    insurance = "yes" if rng.random() < 0.5 else "no"
    total = reservation_price((f.price for f in flights), n, insurance, nonfree)
    payments = _pay(rng, user, total)
    if cancelled:
        payments += [Payment(payment_id=p.payment_id, amount=-p.amount) for p in payments]
    first_leg, first_day = trip[0]
    departs = (first_day - 1) * 1440 + first_leg.dep
    latest = min(NOW_MINUTE, departs - 120)
    earliest = max(-3 * 1440, departs - 30 * 1440)
    if latest > NOW_MINUTE - 1440 and rng.random() < 0.1:
        earliest = max(earliest, NOW_MINUTE - 1440)  # some bookings are less than a day old
    seconds = rng.randint(earliest * 60, latest * 60)
    return Reservation(
        reservation_id=reservation_id,
        user_id=user.user_id,
        origin=trip[0][0].orig,
        destination=destination,
        flight_type="round_trip" if round_trip else "one_way",
        cabin=cabin,
        flights=flights,
        passengers=passengers,
        payment_history=payments,
        created_at=(EPOCH + timedelta(seconds=seconds)).isoformat(),
        total_baggages=bags,
        nonfree_baggages=nonfree,
        insurance=insurance,
        status="cancelled" if cancelled else None,
    )


def _pay(rng: random.Random, user: User, total: int) -> list[Payment]:
    """One card (sometimes a gift card plus a credit card) from the user's profile pays ``total``."""
    cards = [k for k, m in user.payment_methods.items() if isinstance(m, CreditCard)]
    gifts = [k for k, m in user.payment_methods.items() if isinstance(m, GiftCard)]
    if cards and gifts and total > 1 and rng.random() < 0.08:
        part = rng.randint(1, total - 1)
        return [
            Payment(payment_id=rng.choice(gifts), amount=part),
            Payment(payment_id=rng.choice(cards), amount=total - part),
        ]
    pool = gifts if gifts and (not cards or rng.random() < 0.45) else cards
    return [Payment(payment_id=rng.choice(pool), amount=total)]


# -- 4) the whole DB -----------------------------------------------------------------------------
def generate_db(users: int, seed: int) -> AirlineDB:
    """A consistent airline DB with ``users`` users, ~4 reservations each; deterministic in seed."""
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    with gc_paused():
        return _build(users, seed)


def _build(users: int, seed: int) -> AirlineDB:
    rng = random.Random(seed)
    n_flights = max(40, round(300 * math.sqrt(users / 500)))
    density = 4 * users * 2.9 / (n_flights * LAST_DAY * 3)  # passenger-legs per flight-date-cabin
    legs = build_schedule(rng, n_flights, density)
    statuses = [[day_status(rng, leg, day) for day in range(1, LAST_DAY + 1)] for leg in legs]

    names = IdPool(rng)
    payment_ids = IdPool(rng, NEW_CERTIFICATE_IDS)
    reservation_ids = IdPool(rng, NEW_RESERVATION_IDS)
    user_list = [_user(rng, names, payment_ids) for _ in range(users)]

    booker = _Booker(rng, legs)
    reservations: list[Reservation] = []
    for user in user_list:
        for _ in range(rng.choices(range(len(_RES_PER_USER)), cum_weights=_RES_PER_USER)[0]):
            res = _reservation(rng, booker, user, reservation_ids.chars(_RES_ALPHABET, 6))
            if res is not None:
                reservations.append(res)
                user.reservations.append(res.reservation_id)
    rng.shuffle(reservations)

    return AirlineDB(
        flights=flight_table(legs, statuses, booker.booked),
        users={u.user_id: u for u in user_list},
        reservations={r.reservation_id: r for r in reservations},
    )
