"""The airline's facts, stated once: the current time, fees, free-bag allowance, price formulas and
the ids new records take. The tools, the DB generator, the integrity check and the task recipes and
policy checks (``engine/tasks/domains/airline/``) use these; the policy text (policy.md) states the
same numbers in words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "BAG_FEE",
    "CANCELLED_COMPENSATION",
    "CANCEL_WINDOW_START",
    "DELAYED_COMPENSATION",
    "FREE_BAGS",
    "INSURANCE_FEE",
    "NEW_CERTIFICATE_IDS",
    "NEW_RESERVATION_IDS",
    "NOW",
    "bag_charge",
    "free_bags",
    "next_reservation_id",
    "reservation_price",
]

NOW = "2024-05-15T15:00:00"
"""The current time (EST) every tool and check works against (tau2-bench's airline)."""
CANCEL_WINDOW_START = "2024-05-14T15:00:00"
"""Bookings made at or after this time (the 24 hours before ``NOW``) may be cancelled for any reason."""
BAG_FEE = 50
"""Dollars per checked bag beyond the free allowance."""
INSURANCE_FEE = 30
"""Dollars of travel insurance per passenger."""
CANCELLED_COMPENSATION = 100
"""Certificate dollars per passenger the policy offers for a cancelled flight."""
DELAYED_COMPENSATION = 50
"""Certificate dollars per passenger the policy offers for a delayed flight (after a change or cancel)."""
FREE_BAGS = {
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 4},
}
"""Free checked bags per passenger, by membership and cabin (the policy's allowance table)."""
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
"""The ids a booking takes, first free one first (tau2-bench's fixed sequence)."""
NEW_CERTIFICATE_IDS = ("certificate_3221322", "certificate_3221323", "certificate_3221324")


class _Records(Protocol):
    def contains(self, table: str, key: str) -> bool: ...


def free_bags(membership: str, cabin: str, passengers: int) -> int:
    """Checked bags a reservation carries free."""
    return FREE_BAGS[membership][cabin] * passengers


def reservation_price(fares: Iterable[int | float], passengers: int, insurance: str, nonfree_bags: int) -> int | float:
    """What a reservation costs: every fare per passenger, insurance if taken, paid bags."""
    total = sum(fares) * passengers
    if insurance == "yes":
        total += INSURANCE_FEE * passengers
    return total + BAG_FEE * nonfree_bags


def bag_charge(old_nonfree: int, new_nonfree: int) -> int:
    """What changing a reservation's paid bags costs (nothing is refunded for fewer)."""
    return BAG_FEE * max(0, new_nonfree - old_nonfree)


def next_reservation_id(state: _Records) -> str | None:
    """The id the next booking on ``state`` takes, or None when all are used."""
    return next((r for r in NEW_RESERVATION_IDS if not state.contains("reservations", r)), None)
