"""The airline generator's flights: route network, timetable, fares, capacities, per-date states.

All times are minutes since 2024-05-01 00:00 EST. Flights run every day from 2024-05-01 to
2024-05-30; relative to "now" (``pricing.NOW``, 2024-05-15 15:00) a date is over (landed or
cancelled), today (landed, flying, on time, delayed or cancelled) or bookable (available).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from envs.airline.schema import (
    Available,
    Cancelled,
    Delayed,
    Flight,
    FlightStatus,
    Flying,
    Landed,
    OnTime,
)
from envs.airline.tools import AIRPORTS
from envs.synth import cumulative

__all__ = ["CABINS", "EPOCH", "LAST_DAY", "NOW_MINUTE", "TODAY", "Leg", "build_schedule", "day_status", "flight_table"]

CABINS = ("basic_economy", "economy", "business")
LAST_DAY = 30  # flights exist on 2024-05-01 .. 2024-05-30
TODAY = 15  # pricing.NOW is 2024-05-15T15:00:00
NOW_MINUTE = (TODAY - 1) * 1440 + 15 * 60
EPOCH = datetime(2024, 5, 1)

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
_HOUR_CUM = cumulative(_HOUR_WEIGHTS)


def _miles(a: str, b: str) -> float:
    (la1, lo1), (la2, lo2) = _COORDS[a], _COORDS[b]
    p1, p2, dl = math.radians(la1), math.radians(la2), math.radians(lo2 - lo1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 3959.0 * math.acos(max(-1.0, min(1.0, c)))


def _clock(minute: int) -> str:
    """A schedule time of day, ``HH:MM:SS`` with ``+1`` when it falls on the next day."""
    day, m = divmod(minute, 1440)
    return f"{m // 60:02d}:{m % 60:02d}:00" + ("+1" if day else "")


def stamp(minute: int) -> str:
    """An EST timestamp from minutes since 2024-05-01 00:00."""
    return (EPOCH + timedelta(minutes=minute)).isoformat()


class Leg:
    """A scheduled flight while generating: times in minutes, fares and capacity per cabin."""

    __slots__ = ("arr", "cap", "conns", "dep", "dest", "idx", "number", "orig", "prices")

    def __init__(self, orig: str, dest: str, dep: int, arr: int) -> None:
        self.orig, self.dest, self.dep, self.arr = orig, dest, dep, arr
        self.idx = 0
        self.number = ""
        self.cap: tuple[int, int, int] = (0, 0, 0)
        self.prices: list[tuple[int, int, int]] = []
        self.conns: list[tuple[Leg, int]] = []  # (next leg, day offset), for realistic layovers


def _route_pairs(rng: random.Random, n_pairs: int) -> list[tuple[str, str]]:
    """Unordered airport pairs served (both ways): a random spanning tree, then weighted extras."""
    codes = [code for code, _ in AIRPORTS]
    allowed = [(a, b) for i, a in enumerate(codes) for b in codes[i + 1 :] if _miles(a, b) >= 90]
    pending = codes[:]
    rng.shuffle(pending)
    connected = [pending.pop(0)]
    chosen: list[tuple[str, str]] = []
    taken: set[tuple[str, str]] = set()
    while pending:  # a random spanning tree first, so every airport can be reached
        code = next(c for c in pending if any(_miles(o, c) >= 90 for o in connected))
        pending.remove(code)
        options = [o for o in connected if _miles(o, code) >= 90]
        connected.append(code)
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


def build_schedule(rng: random.Random, n_flights: int, density: float) -> list[Leg]:
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
            legs.append(Leg(orig, dest, dep, dep + block))
    rng.shuffle(legs)
    extra = 3.0 * density
    for i, leg in enumerate(legs):
        leg.idx = i
        leg.number = f"HAT{i + 1:03d}"
        bump = round(extra * rng.uniform(0.6, 1.4))
        leg.cap = (rng.randint(6, 18) + bump, rng.randint(10, 28) + bump, rng.randint(4, 14) + bump)
        base = 60 + 0.075 * _miles(leg.orig, leg.dest)
        leg.prices = [(0, 0, 0)] + [_fares(rng, base, day) for day in range(1, LAST_DAY + 1)]
    by_origin: dict[str, list[Leg]] = {}
    for leg in legs:
        by_origin.setdefault(leg.orig, []).append(leg)
    for leg in legs:  # connections: 45 minutes to 6 hours on the day of arrival
        offset, at = divmod(leg.arr, 1440)
        for nxt in by_origin.get(leg.dest, ()):
            if nxt.dest != leg.orig and at + 45 <= nxt.dep <= at + 360:
                leg.conns.append((nxt, offset))
    return legs


def _fares(rng: random.Random, base: float, day: int) -> tuple[int, int, int]:
    """Basic economy < economy < business fares for one date (Fridays, Sundays and the days
    right after now cost more)."""
    weekday = (day + 1) % 7  # 2024-05-01 was a Wednesday; 4 = Friday, 6 = Sunday
    demand = (1.12 if weekday in (4, 6) else 1.0) * (1.1 if 16 <= day <= 20 else 1.0)
    economy = max(60, round(base * demand * rng.uniform(0.85, 1.2)))
    basic = max(35, min(economy - 5, round(economy * rng.uniform(0.55, 0.78))))
    business = max(economy + 50, round(economy * rng.uniform(1.8, 2.8)))
    return basic, economy, business


def day_status(rng: random.Random, leg: Leg, day: int) -> FlightStatus | None:
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
    if arr <= NOW_MINUTE:
        return Landed(actual_departure_time_est=stamp(dep), actual_arrival_time_est=stamp(arr))
    if dep <= NOW_MINUTE:
        return Flying(actual_departure_time_est=stamp(dep), estimated_arrival_time_est=stamp(arr))
    if late:
        return Delayed(estimated_departure_time_est=stamp(dep), estimated_arrival_time_est=stamp(arr))
    return OnTime(estimated_departure_time_est=stamp(dep), estimated_arrival_time_est=stamp(arr))


def flight_table(legs: list[Leg], statuses: list[list[FlightStatus | None]], booked: list[int]) -> dict[str, Flight]:
    """The ``flights`` table: bookable dates get their fares and capacity minus ``booked`` seats.

    ``booked[(leg.idx * (LAST_DAY + 1) + day) * 3 + cabin]`` counts booked passengers.
    """
    flights: dict[str, Flight] = {}
    for leg, days in zip(legs, statuses, strict=True):
        dates: dict[str, FlightStatus] = {}
        for day, status in enumerate(days, start=1):
            if status is None:
                base = (leg.idx * (LAST_DAY + 1) + day) * 3
                status = Available(
                    available_seats={c: leg.cap[i] - booked[base + i] for i, c in enumerate(CABINS)},
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
    return flights
