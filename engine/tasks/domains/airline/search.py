"""Flight-search evidence for airline intents: itineraries from search reads and the rules that pick one.

A trip request (origins, destination, dates, whether one-stop flights count) becomes the search
reads an agent must make (one ``search_direct_flight`` and optionally one ``search_onestop_flight``
per origin and date) and the itineraries those reads return. A flight rule (cheapest, fastest,
earliest, latest, fewest stops then cheapest, earliest arrival) then picks exactly one itinerary
among those with seats for every passenger, or rejects on a tie. Searches run the kernel's own
tool functions on the state, so the options are exactly what the agent will see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from engine.tasks.model import EvidenceRead, Selection
from engine.tasks.recipe import Reject, read, unique_best
from envs.airline.tools import search_direct_flight, search_onestop_flight
from envs.kernel import BaseDB, Index, State

__all__ = [
    "FLIGHT_RULES",
    "Itinerary",
    "cabin_words",
    "day_words",
    "pick_itinerary",
    "reachable",
    "search",
]

CABIN_WORDS = {"basic_economy": "basic economy", "economy": "economy", "business": "business"}
MONTH = "May"


SEARCHES: Index[dict[tuple[str, str, str, str], list[Itinerary]]] = Index("tasks.airline.searches", lambda base: {})
"""Per base: the itineraries of each search on the untouched base DB, filled as searches are made."""


def cabin_words(cabin: str) -> str:
    """The cabin as a user says it."""
    return CABIN_WORDS[cabin]


def day_words(date: str) -> str:
    """'2024-05-20' as 'May 20'."""
    return f"{MONTH} {int(date[-2:])}"


def _minutes(time: str) -> int:
    """'06:30:00' or '01:10:00+1' as minutes after midnight of the leg's date."""
    extra = 1440 if time.endswith("+1") else 0
    hours, minutes = time[:5].split(":")
    return int(hours) * 60 + int(minutes) + extra


def _day_index(date: str) -> int:
    return int(date[-2:])


class Itinerary:
    """One bookable option: its legs (number, date, origin, destination, times, prices, seats)."""

    __slots__ = ("legs",)

    def __init__(self, legs: list[Any]) -> None:
        self.legs = legs  # DirectFlight structs with ``date`` set

    def label(self) -> str:
        """Distinct text for the option, e.g. 'HAT001+HAT002 2024-05-20'."""
        return "+".join(leg.flight_number for leg in self.legs) + " " + self.legs[0].date

    def flights(self) -> list[dict[str, str]]:
        """The ``flights`` argument of a write: [{'flight_number', 'date'}, ...]."""
        return [{"flight_number": leg.flight_number, "date": leg.date} for leg in self.legs]

    def price(self, cabin: str) -> int:
        """Fare per passenger in a cabin."""
        return sum(leg.prices[cabin] for leg in self.legs)

    def seats(self, cabin: str) -> int:
        """Seats left in a cabin on the fullest leg."""
        return min(leg.available_seats[cabin] for leg in self.legs)

    def departure(self) -> str:
        """Departure as 'YYYY-MM-DDTHH:MM:SS' (compares in time order)."""
        return f"{self.legs[0].date}T{self.legs[0].scheduled_departure_time_est}"

    def _abs(self, date: str, time: str) -> int:
        return _day_index(date) * 1440 + _minutes(time)

    def arrival_minutes(self) -> int:
        """Arrival in minutes since the start of the month."""
        last = self.legs[-1]
        return self._abs(last.date, last.scheduled_arrival_time_est)

    def duration(self) -> int:
        """Minutes from first departure to final arrival."""
        first = self.legs[0]
        return self.arrival_minutes() - self._abs(first.date, first.scheduled_departure_time_est)

    def stops(self) -> int:
        """Number of stops (legs - 1)."""
        return len(self.legs) - 1


# rule id -> (metric, order, value(itinerary, cabin), wording)
FLIGHT_RULES: dict[str, tuple[str, str, Any, str]] = {
    "cheapest": ("fare", "min", lambda it, c: it.price(c), "the cheapest"),
    "fastest": ("travel minutes", "min", lambda it, c: it.duration(), "the fastest"),
    "earliest": ("departure", "min", lambda it, c: it.departure(), "the earliest-departing"),
    "latest": ("departure", "max", lambda it, c: it.departure(), "the latest-departing"),
    "fewest_stops": (
        "stops, then fare",
        "min",
        lambda it, c: it.stops() * 100_000 + it.price(c),
        "the flight with the fewest stops (and, among those, the cheapest)",
    ),
    "earliest_arrival": (
        "arrival minute",
        "min",
        lambda it, c: it.arrival_minutes(),
        "the earliest-arriving",
    ),
}


def _base_search(base: BaseDB, kind: str, origin: str, destination: str, date: str) -> list[Itinerary]:
    """A search's itineraries on the untouched base DB (cached per base)."""
    cache = SEARCHES.of(base)
    key = (kind, origin, destination, date)
    found = cache.get(key)
    if found is None:
        clean = base.new_state()
        if kind == "direct":
            found = []
            for flight in search_direct_flight.fn(clean, origin, destination, date):
                flight.date = date
                found.append(Itinerary([flight]))
        else:
            pairs = search_onestop_flight.fn(clean, origin, destination, date)
            found = [Itinerary(list(p)) for p in pairs]
        cache[key] = found
    return found


def _run_search(state: State, kind: str, origin: str, destination: str, date: str) -> list[Itinerary]:
    """One search read's itineraries as the state shows them.

    Tools never add flights or change a status's kind, so the state's results are the base's with
    seat counts re-read for the flights this state changed (bookings and flight changes).
    """
    found = _base_search(state.base, kind, origin, destination, date)
    changed = state.changed().get("flights")
    if not changed or not any(leg.flight_number in changed for it in found for leg in it.legs):
        return found
    return [
        Itinerary([_reread(state, leg) if leg.flight_number in changed else leg for leg in it.legs]) for it in found
    ]


def _reread(state: State, leg: Any) -> Any:
    """A leg with its seats as the state has them now."""
    status = state.get("flights", leg.flight_number).dates[leg.date]
    return msgspec.structs.replace(leg, available_seats=status.available_seats)


def search(
    state: State, origins: Sequence[str], destination: str, dates: Sequence[str], onestop: bool
) -> tuple[list[Itinerary], list[EvidenceRead]]:
    """Every itinerary the search reads for a trip return, and those reads, in agent order."""
    options: list[Itinerary] = []
    reads: list[EvidenceRead] = []
    purpose = f"find flights to {destination}"
    for origin in origins:
        for date in dates:
            args = {"origin": origin, "destination": destination, "date": date}
            reads.append(read("search_direct_flight", purpose, **args))
            options += _run_search(state, "direct", origin, destination, date)
            if onestop:
                reads.append(read("search_onestop_flight", purpose, **args))
                options += _run_search(state, "onestop", origin, destination, date)
    return options, reads


def pick_itinerary(
    rule: str, options: Sequence[Itinerary], cabin: str, passengers: int, exclude: str = ""
) -> tuple[Itinerary, Selection] | Reject:
    """The one option a flight rule picks among those with seats for all, or a Reject."""
    metric, order, value, _ = FLIGHT_RULES[rule]
    rows = [
        (it.label(), value(it, cabin), it) for it in options if it.seats(cabin) >= passengers and it.label() != exclude
    ]
    return unique_best(f"flight: {rule}", metric, order, rows)  # type: ignore[arg-type]


def _reach(base: BaseDB) -> dict[str, list[str]]:
    """Destinations reachable from each origin with one stop at most (sorted)."""
    direct: dict[str, set[str]] = {}
    for flight in base.tables["flights"].values():
        direct.setdefault(flight.origin, set()).add(flight.destination)
    reach: dict[str, list[str]] = {}
    for origin, first in direct.items():
        ends = set(first)
        for hop in first:
            ends.update(direct.get(hop, ()))
        ends.discard(origin)
        reach[origin] = sorted(ends)
    return dict(sorted(reach.items()))


REACH = Index("tasks.airline.reach", _reach)


def _direct(base: BaseDB) -> dict[str, list[str]]:
    """Destinations reachable from each origin nonstop (sorted)."""
    direct: dict[str, set[str]] = {}
    for flight in base.tables["flights"].values():
        direct.setdefault(flight.origin, set()).add(flight.destination)
    return {o: sorted(d) for o, d in sorted(direct.items())}


DIRECT = Index("tasks.airline.direct", _direct)


def reachable(base: BaseDB, onestop: bool = True) -> dict[str, list[str]]:
    """Destinations per origin, with one stop at most or nonstop only (cached on the base DB)."""
    if onestop:
        return REACH.of(base)
    return DIRECT.of(base)
