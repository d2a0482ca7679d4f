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
from datetime import datetime, timedelta

from envs.airline.schema import (
    Address,
    AirlineDB,
    Available,
    Cancelled,
    Certificate,
    CreditCard,
    Delayed,
    Flight,
    FlightStatus,
    Flying,
    GiftCard,
    Landed,
    Name,
    OnTime,
    Passenger,
    Payment,
    PaymentMethod,
    Reservation,
    ReservationFlight,
    User,
)
from envs.airline.tools import AIRPORTS, NEW_CERTIFICATE_IDS, NEW_RESERVATION_IDS
from envs.synth import IdPool, Person, address_fields, cumulative, gc_paused, random_date

__all__ = ["CABINS", "FREE_BAGS", "LAST_DAY", "TODAY", "generate_db"]

CABINS = ("basic_economy", "economy", "business")
# Free checked bags per passenger, by membership and cabin (the policy's allowance table).
FREE_BAGS = {
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 4},
}
LAST_DAY = 30  # flights exist on 2024-05-01 .. 2024-05-30
TODAY = 15  # tools.NOW is 2024-05-15T15:00:00
_NOW = (TODAY - 1) * 1440 + 15 * 60  # minutes since 2024-05-01 00:00
_EPOCH = datetime(2024, 5, 1)
_RES_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# Approximate airport positions (degrees) for distances, durations and fares.
_COORDS = {
    "SFO": (37.62, -122.38), "JFK": (40.64, -73.78), "LAX": (33.94, -118.41),
    "ORD": (41.98, -87.90), "DFW": (32.90, -97.04), "DEN": (39.86, -104.67),
    "SEA": (47.45, -122.31), "ATL": (33.64, -84.43), "MIA": (25.80, -80.29),
    "BOS": (42.36, -71.01), "PHX": (33.43, -112.01), "IAH": (29.99, -95.34),
    "LAS": (36.08, -115.15), "MCO": (28.43, -81.31), "EWR": (40.69, -74.17),
    "CLT": (35.21, -80.94), "MSP": (44.88, -93.22), "DTW": (42.21, -83.35),
    "PHL": (39.87, -75.24), "LGA": (40.78, -73.87),
}  # fmt: skip
# How much traffic an airport draws, relative (hubs get more routes and flights).
_HUB = {
    "ATL": 5, "ORD": 5, "DFW": 5, "DEN": 4, "LAX": 4, "JFK": 4, "SFO": 3, "SEA": 3, "CLT": 3,
    "IAH": 3, "LAS": 3, "MIA": 3, "PHX": 3, "EWR": 3, "MCO": 2, "MSP": 2, "DTW": 2, "BOS": 2,
    "PHL": 2, "LGA": 2,
}  # fmt: skip
# Departure hour weights: a busy day with a few red-eyes.
_HOUR_WEIGHTS = (2, 1, 1, 1, 2, 5, 9, 10, 10, 9, 8, 8, 8, 8, 8, 8, 9, 9, 9, 8, 6, 5, 4, 3)
# First-flight day weights for bookings (days 1..29): most trips are near or after "now".
_DAY_WEIGHTS = (1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 12, 12, 11, 10, 10, 9, 8, 8, 7, 6, 6,
                5, 5, 4)  # fmt: skip
_SPAN_WEIGHTS = (15, 15, 13, 11, 10, 6, 6, 5, 4, 4, 2, 2, 1, 1)  # round trips, 1..14 days
_RES_PER_USER = cumulative((48, 26, 77, 70, 82, 66, 50, 35, 22, 13, 9, 2))  # 0..11 reservations, mean ~4
_HOUR_CUM = cumulative(_HOUR_WEIGHTS)
_DAY_CUM = cumulative(_DAY_WEIGHTS)
_SPAN_CUM = cumulative(_SPAN_WEIGHTS)
_PAX_CUM = cumulative((46, 33, 15, 5, 1))  # 1..5 passengers
_BAGS_CUM = cumulative((62, 26, 10, 2))  # 0..3 checked bags per passenger


def _miles(a: str, b: str) -> float:
    (la1, lo1), (la2, lo2) = _COORDS[a], _COORDS[b]
    p1, p2, dl = math.radians(la1), math.radians(la2), math.radians(lo2 - lo1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 3959.0 * math.acos(max(-1.0, min(1.0, c)))


def _clock(minute: int) -> str:
    """A schedule time of day, ``HH:MM:SS`` with ``+1`` when it falls on the next day."""
    day, m = divmod(minute, 1440)
    return f"{m // 60:02d}:{m % 60:02d}:00" + ("+1" if day else "")


def _stamp(minute: int) -> str:
    """An EST timestamp from minutes since 2024-05-01 00:00."""
    return (_EPOCH + timedelta(minutes=minute)).isoformat()


class _Leg:
    """A scheduled flight while generating: times in minutes, fares and capacity per cabin."""

    __slots__ = ("arr", "cap", "conns", "dep", "dest", "dest_conns", "idx", "number", "orig",
                 "prices")  # fmt: skip

    def __init__(self, orig: str, dest: str, dep: int, arr: int) -> None:
        self.orig, self.dest, self.dep, self.arr = orig, dest, dep, arr
        self.idx = 0
        self.number = ""
        self.cap: tuple[int, int, int] = (0, 0, 0)
        self.prices: list[tuple[int, int, int]] = []
        self.conns: list[tuple[_Leg, int]] = []  # (next leg, day offset), for realistic layovers


# -- 1) the network and the schedule ------------------------------------------------------------
def _route_pairs(rng: random.Random, n_pairs: int) -> list[tuple[str, str]]:
    """Unordered airport pairs served (both ways): a random spanning tree, then weighted extras."""
    codes = [code for code, _ in AIRPORTS]
    allowed = [(a, b) for i, a in enumerate(codes) for b in codes[i + 1 :] if _miles(a, b) >= 90]
    order = codes[:]
    rng.shuffle(order)
    chosen: list[tuple[str, str]] = []
    taken: set[tuple[str, str]] = set()
    for i, code in enumerate(order[1:], start=1):  # spanning tree: one-stop trips exist
        options = [o for o in order[:i] if _miles(o, code) >= 90]
        other = rng.choices(options, weights=[_HUB[o] for o in options])[0]
        pair = (other, code) if codes.index(other) < codes.index(code) else (code, other)
        chosen.append(pair)
        taken.add(pair)
    rest = [p for p in allowed if p not in taken]
    weights = [_HUB[a] * _HUB[b] for a, b in rest]
    while len(chosen) < n_pairs and rest:
        k = rng.choices(range(len(rest)), weights=weights)[0]
        chosen.append(rest.pop(k))
        weights.pop(k)
    return chosen


def _schedule(rng: random.Random, n_flights: int, density: float) -> list[_Leg]:
    """Flights numbered HAT001.. in random order, each with a fixed route, times and capacity."""
    pairs = _route_pairs(rng, min(190, max(20, round(n_flights / 5.5))))
    routes = [r for a, b in pairs for r in ((a, b), (b, a))]
    counts = [1] * len(routes)
    weights = [_HUB[a] * _HUB[b] for a, b in routes]
    for k in rng.choices(range(len(routes)), weights=weights, k=max(0, n_flights - len(routes))):
        counts[k] += 1
    legs = []
    for (orig, dest), count in zip(routes, counts, strict=True):
        block = 30 * math.ceil((30 + _miles(orig, dest) / 8.5) / 30)  # minutes, in half hours
        for _ in range(count):
            dep = 60 * rng.choices(range(24), cum_weights=_HOUR_CUM)[0]
            dep += 30 if rng.random() < 0.2 else 0
            legs.append(_Leg(orig, dest, dep, dep + block))
    rng.shuffle(legs)
    extra = 3.0 * density
    for i, leg in enumerate(legs):
        leg.idx = i
        leg.number = f"HAT{i + 1:03d}"
        bump = round(extra * rng.uniform(0.6, 1.4))
        leg.cap = (rng.randint(6, 18) + bump, rng.randint(10, 28) + bump, rng.randint(4, 14) + bump)
        base = 60 + 0.075 * _miles(leg.orig, leg.dest)
        leg.prices = [(0, 0, 0)] + [_fares(rng, base, day) for day in range(1, LAST_DAY + 1)]
    by_origin: dict[str, list[_Leg]] = {}
    for leg in legs:
        by_origin.setdefault(leg.orig, []).append(leg)
    for leg in legs:  # connections: 45 minutes to 6 hours on the day of arrival
        offset, at = divmod(leg.arr, 1440)
        for nxt in by_origin.get(leg.dest, ()):
            if nxt.dest != leg.orig and at + 45 <= nxt.dep <= at + 360:
                leg.conns.append((nxt, offset))
    return legs


def _fares(rng: random.Random, base: float, day: int) -> tuple[int, int, int]:
    """Basic economy < economy < business fares for one date (weekends and late dates cost more)."""
    weekday = (day + 1) % 7  # 2024-05-01 was a Wednesday; 4 = Friday, 6 = Sunday
    demand = (1.12 if weekday in (4, 6) else 1.0) * (1.1 if 16 <= day <= 20 else 1.0)
    economy = max(60, round(base * demand * rng.uniform(0.85, 1.2)))
    basic = max(35, min(economy - 5, round(economy * rng.uniform(0.55, 0.78))))
    business = max(economy + 50, round(economy * rng.uniform(1.8, 2.8)))
    return basic, economy, business


def _status(rng: random.Random, leg: _Leg, day: int) -> FlightStatus | None:
    """The state of a flight on a day relative to now; None for a bookable (future) date."""
    if day > TODAY:
        return None
    start = (day - 1) * 1440
    if rng.random() < (0.08 if day < TODAY else 0.03):
        return Cancelled()
    late = rng.random() < (0.12 if day < TODAY else 0.35)
    delay = rng.randint(30, 200) if late else rng.randint(-15, 20)
    dep = start + leg.dep + delay
    arr = start + leg.arr + delay + rng.randint(-20, 12)
    if arr <= _NOW:
        return Landed(actual_departure_time_est=_stamp(dep), actual_arrival_time_est=_stamp(arr))
    if dep <= _NOW:
        return Flying(actual_departure_time_est=_stamp(dep), estimated_arrival_time_est=_stamp(arr))
    if late:
        return Delayed(estimated_departure_time_est=_stamp(dep), estimated_arrival_time_est=_stamp(arr))
    return OnTime(estimated_departure_time_est=_stamp(dep), estimated_arrival_time_est=_stamp(arr))


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
    while True:
        user_id = f"{first}_{last}_{rng.randint(1000, 9999)}"
        if names.take(user_id):
            break
    while True:
        email = f"{first}.{last}{rng.randint(1000, 9999)}@example.com"
        if names.take(email):
            break
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

    def __init__(self, rng: random.Random, legs: list[_Leg]) -> None:
        self.rng = rng
        self.legs = legs
        self.booked = [0] * (len(legs) * (LAST_DAY + 1) * 3)
        self.direct: dict[tuple[str, str], list[_Leg]] = {}
        for leg in legs:
            self.direct.setdefault((leg.orig, leg.dest), []).append(leg)
        self._onestop: dict[tuple[str, str], list[tuple[_Leg, _Leg, int]]] = {}
        self.by_origin: dict[str, list[_Leg]] = {}
        for leg in legs:
            self.by_origin.setdefault(leg.orig, []).append(leg)

    def onestop(self, orig: str, dest: str) -> list[tuple[_Leg, _Leg, int]]:
        key = (orig, dest)
        found = self._onestop.get(key)
        if found is None:
            found = [
                (a, b, off) for a in self.by_origin.get(orig, ()) for b, off in a.conns if b.dest == dest
            ]
            self._onestop[key] = found
        return found

    def outbound(self, day: int) -> list[tuple[_Leg, int]]:
        """A one-way trip starting on ``day``: direct (30%) or with one connection."""
        rng = self.rng
        first = self.legs[rng.randrange(len(self.legs))]
        if rng.random() < 0.3 or not first.conns:
            return [(first, day)]
        second, offset = first.conns[rng.randrange(len(first.conns))]
        return [(first, day), (second, day + offset)]

    def inbound(self, orig: str, dest: str, day: int, direct: bool) -> list[tuple[_Leg, int]] | None:
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

    def itinerary(self, round_trip: bool) -> tuple[list[tuple[_Leg, int]], str] | None:
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

    def fits(self, trip: list[tuple[_Leg, int]], cabin: int, n: int) -> bool:
        """Every leg on a date in range, and seats left on every bookable one."""
        for leg, day in trip:
            if day > LAST_DAY:
                return False
            if day > TODAY and self.booked[(leg.idx * (LAST_DAY + 1) + day) * 3 + cabin] + n > leg.cap[cabin]:
                return False
        return True

    def take(self, trip: list[tuple[_Leg, int]], cabin: int, n: int) -> None:
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
    nonfree = max(0, bags - FREE_BAGS[user.membership][cabin] * n)
    insurance = "yes" if rng.random() < 0.5 else "no"
    total = sum(f.price for f in flights) * n + (30 * n if insurance == "yes" else 0) + 50 * nonfree
    payments = _pay(rng, user, total)
    if cancelled:
        payments += [Payment(payment_id=p.payment_id, amount=-p.amount) for p in payments]
    first_leg, first_day = trip[0]
    departs = (first_day - 1) * 1440 + first_leg.dep
    latest = min(_NOW, departs - 120)
    earliest = max(-3 * 1440, departs - 30 * 1440)
    if latest > _NOW - 1440 and rng.random() < 0.1:
        earliest = max(earliest, _NOW - 1440)  # some bookings are less than a day old
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
        created_at=(_EPOCH + timedelta(seconds=seconds)).isoformat(),
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
    legs = _schedule(rng, n_flights, density)
    statuses = [[_status(rng, leg, day) for day in range(1, LAST_DAY + 1)] for leg in legs]

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

    flights: dict[str, Flight] = {}
    for leg, days in zip(legs, statuses, strict=True):
        dates: dict[str, FlightStatus] = {}
        for day, status in enumerate(days, start=1):
            if status is None:
                base = (leg.idx * (LAST_DAY + 1) + day) * 3
                status = Available(
                    available_seats={c: leg.cap[i] - booker.booked[base + i] for i, c in enumerate(CABINS)},
                    prices=dict(zip(CABINS, leg.prices[day], strict=True)),
                )
            dates[f"2024-05-{day:02d}"] = status
        flights[leg.number] = Flight(
            flight_number=leg.number,
            origin=leg.orig,
            destination=leg.dest,
            scheduled_departure_time_est=_clock(leg.dep),
            scheduled_arrival_time_est=_clock(leg.arr),
            dates=dates,
        )
    return AirlineDB(
        flights=flights,
        users={u.user_id: u for u in user_list},
        reservations={r.reservation_id: r for r in reservations},
    )
