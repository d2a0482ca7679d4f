"""The 14 airline tools, with tau2-bench's names, arguments, behaviour and error texts."""

from __future__ import annotations

from typing import Any

from envs.airline.pricing import (  # noqa: F401  (NOW and the id sequences re-exported for callers)
    BAG_FEE,
    INSURANCE_FEE,
    NEW_CERTIFICATE_IDS,
    NEW_RESERVATION_IDS,
    NOW,
    bag_charge,
    next_reservation_id,
)
from envs.airline.schema import (
    AirportCode,
    Available,
    Cabin,
    Certificate,
    DirectFlight,
    Flight,
    FlightInfo,
    FlightStatus,
    FlightType,
    GiftCard,
    Insurance,
    Passenger,
    Payment,
    Reservation,
    ReservationFlight,
    User,
)
from envs.kernel import Index, State, ToolError, tool
from envs.kernel.common_tools import calculate, transfer_to_human_agents

__all__ = ["TOOLS"]

AIRPORTS = (
    ("SFO", "San Francisco"), ("JFK", "New York"), ("LAX", "Los Angeles"), ("ORD", "Chicago"),
    ("DFW", "Dallas"), ("DEN", "Denver"), ("SEA", "Seattle"), ("ATL", "Atlanta"),
    ("MIA", "Miami"), ("BOS", "Boston"), ("PHX", "Phoenix"), ("IAH", "Houston"),
    ("LAS", "Las Vegas"), ("MCO", "Orlando"), ("EWR", "Newark"), ("CLT", "Charlotte"),
    ("MSP", "Minneapolis"), ("DTW", "Detroit"), ("PHL", "Philadelphia"), ("LGA", "LaGuardia"),
)  # fmt: skip


# -- lookups ---------------------------------------------------------------------------------------
def _user(state: State, user_id: str) -> User:
    user = state.get("users", user_id)
    if user is None:
        raise ToolError(f"User {user_id} not found")
    return user


def _reservation(state: State, reservation_id: str) -> Reservation:
    reservation = state.get("reservations", reservation_id)
    if reservation is None:
        raise ToolError(f"Reservation {reservation_id} not found")
    return reservation


def _flight(state: State, flight_number: str) -> Flight:
    flight = state.get("flights", flight_number)
    if flight is None:
        raise ToolError(f"Flight {flight_number} not found")
    return flight


def _flight_on(state: State, flight_number: str, date: str) -> FlightStatus:
    return _status_on(_flight(state, flight_number), flight_number, date)


def _status_on(flight: Flight, flight_number: str, date: str) -> FlightStatus:
    """``_flight_on`` for a flight already looked up."""
    status = flight.dates.get(date)
    if status is None:
        raise ToolError(f"Flight {flight_number} not found on date {date}")
    return status


def _by_origin(base: Any) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for number, flight in base.tables["flights"].items():
        index.setdefault(flight.origin, []).append(number)
    return index


BY_ORIGIN = Index("airline.by_origin", _by_origin)
"""Flight numbers by origin airport, in DB order."""


def _direct_flights(
    state: State, date: str, origin: str, destination: str | None, leave_after: str | None = None
) -> list[DirectFlight]:
    """Bookable flights from ``origin`` on ``date``, in DB order (flights are never added)."""
    results = []
    for number in BY_ORIGIN.of(state.base).get(origin, ()):
        flight = state.get("flights", number)
        if destination is not None and flight.destination != destination:
            continue
        status = flight.dates.get(date)
        if not isinstance(status, Available):
            continue
        if leave_after is not None and flight.scheduled_departure_time_est < leave_after:
            continue
        results.append(
            DirectFlight(
                flight_number=flight.flight_number,
                origin=flight.origin,
                destination=flight.destination,
                scheduled_departure_time_est=flight.scheduled_departure_time_est,
                scheduled_arrival_time_est=flight.scheduled_arrival_time_est,
                available_seats=status.available_seats,
                prices=status.prices,
            )
        )
    return results


def _charge_for_update(state: State, user_id: str, payment_id: str, total: int) -> Payment | None:
    """Check and take payment for a change to a reservation (no certificates; gift card balance)."""
    method = _user(state, user_id).payment_methods.get(payment_id)
    if method is None:
        raise ToolError("Payment method not found")
    if isinstance(method, Certificate):
        raise ToolError("Certificate cannot be used to update reservation")
    if isinstance(method, GiftCard):
        if method.amount < total:
            raise ToolError("Gift card balance is not enough")
        state.mut("users", user_id).payment_methods[payment_id].amount -= total
    return Payment(payment_id=payment_id, amount=total) if total != 0 else None


# -- tools -----------------------------------------------------------------------------------------
@tool("write")
def book_reservation(
    state: State,
    user_id: str,
    origin: str,
    destination: str,
    flight_type: FlightType,
    cabin: Cabin,
    flights: list[FlightInfo],
    passengers: list[Passenger],
    payment_methods: list[Payment],
    total_baggages: int,
    nonfree_baggages: int,
    insurance: Insurance,
) -> Reservation:
    """Create a new reservation for a user and charge it to their payment methods.

    Args:
        user_id: The id of the user who books, e.g. 'sara_doe_496'.
        origin: IATA code of the trip's origin, e.g. 'SFO'.
        destination: IATA code of the trip's destination, e.g. 'JFK'.
        flight_type: 'one_way' or 'round_trip'.
        cabin: 'basic_economy', 'economy' or 'business'.
        flights: Every flight of the itinerary, each with its number and date.
        passengers: Every traveller, each with first name, last name and date of birth.
        payment_methods: Payment methods from the user's profile and the amount charged to each;
            the amounts must add up to the total price.
        total_baggages: Number of checked bags in all.
        nonfree_baggages: Number of those bags that are paid for.
        insurance: 'yes' or 'no' for travel insurance.
    """
    user = _user(state, user_id)
    reservation_id = next_reservation_id(state)
    if reservation_id is None:
        raise ToolError("Too many reservations")
    reservation = Reservation(
        reservation_id=reservation_id,
        user_id=user_id,
        origin=origin,
        destination=destination,
        flight_type=flight_type,
        cabin=cabin,
        flights=[],
        passengers=[Passenger(first_name=p.first_name, last_name=p.last_name, dob=p.dob) for p in passengers],
        payment_history=[Payment(payment_id=p.payment_id, amount=p.amount) for p in payment_methods],
        created_at=NOW,
        total_baggages=total_baggages,
        nonfree_baggages=nonfree_baggages,
        insurance=insurance,
    )
    n = len(passengers)
    total_price = 0
    for info in flights:
        flight = _flight(state, info.flight_number)
        status = _status_on(flight, info.flight_number, info.date)
        if not isinstance(status, Available):
            raise ToolError(f"Flight {info.flight_number} not available on date {info.date}")
        if status.available_seats[cabin] < n:
            raise ToolError(f"Not enough seats on flight {info.flight_number}")
        price = status.prices[cabin]
        reservation.flights.append(
            ReservationFlight(
                flight_number=info.flight_number,
                origin=flight.origin,
                destination=flight.destination,
                date=info.date,
                price=price,
            )
        )
        total_price += price * n
    if insurance == "yes":
        total_price += INSURANCE_FEE * n
    total_price += BAG_FEE * nonfree_baggages

    for payment in payment_methods:
        method = user.payment_methods.get(payment.payment_id)
        if method is None:
            raise ToolError(f"Payment method {payment.payment_id} not found")
        if isinstance(method, (GiftCard, Certificate)) and method.amount < payment.amount:
            raise ToolError(f"Not enough balance in payment method {payment.payment_id}")
    paid = sum(p.amount for p in payment_methods)
    if paid != total_price:
        raise ToolError(
            f"Payment amount does not add up, total price is {total_price}, but paid {paid}"
        )

    owner = state.mut("users", user_id)
    for payment in payment_methods:
        method = owner.payment_methods.get(payment.payment_id)
        if method is None:  # a certificate named twice: spent by its first use
            # tau2-bench fails here with the KeyError's text (after spending the first use); we
            # refuse with the same text and the call is rolled back whole.
            raise ToolError(repr(payment.payment_id))
        if isinstance(method, GiftCard):
            method.amount -= payment.amount
        elif isinstance(method, Certificate):
            del owner.payment_methods[payment.payment_id]
    for info in flights:
        seats = state.mut("flights", info.flight_number).dates[info.date]
        seats.available_seats[cabin] -= n
    state.insert("reservations", reservation_id, reservation)
    owner.reservations.append(reservation_id)
    return reservation


@tool("write")
def cancel_reservation(state: State, reservation_id: str) -> Reservation:
    """Cancel a whole reservation; every payment on it is refunded to its payment method.

    Args:
        reservation_id: The reservation id, e.g. 'ZFA04Y'.
    """
    _reservation(state, reservation_id)
    reservation = state.mut("reservations", reservation_id)
    refunds = [Payment(payment_id=p.payment_id, amount=-p.amount) for p in reservation.payment_history]
    reservation.payment_history.extend(refunds)
    reservation.status = "cancelled"
    return reservation


@tool("read")
def get_reservation_details(state: State, reservation_id: str) -> Reservation:
    """Look up a reservation: itinerary, passengers, payments, bags, insurance and status.

    Args:
        reservation_id: The reservation id, e.g. '8JX2WO'.
    """
    return _reservation(state, reservation_id)


@tool("read")
def get_user_details(state: State, user_id: str) -> User:
    """Look up a user's profile: name, address, payment methods, saved passengers, membership and reservation ids.

    Args:
        user_id: The user id, e.g. 'sara_doe_496'.
    """
    return _user(state, user_id)


@tool("read")
def list_all_airports(state: State) -> list[AirportCode]:
    """List every airport the airline serves, with its IATA code and city."""
    return [AirportCode(iata=code, city=city) for code, city in AIRPORTS]


@tool("read")
def search_direct_flight(state: State, origin: str, destination: str, date: str) -> list[DirectFlight]:
    """Find nonstop flights between two airports on a date, with seats left and prices per cabin.

    Args:
        origin: IATA code of the departure airport, e.g. 'JFK'.
        destination: IATA code of the arrival airport, e.g. 'LAX'.
        date: Travel date, YYYY-MM-DD, e.g. '2024-05-01'.
    """
    return _direct_flights(state, date, origin, destination)


@tool("read")
def search_onestop_flight(
    state: State, origin: str, destination: str, date: str
) -> list[list[DirectFlight]]:
    """Find connections with exactly one stop between two airports, departing on a date.

    Args:
        origin: IATA code of the departure airport, e.g. 'JFK'.
        destination: IATA code of the final arrival airport, e.g. 'LAX'.
        date: Date of the first flight, YYYY-MM-DD, e.g. '2024-05-01'.
    """
    results: list[list[DirectFlight]] = []
    for first in _direct_flights(state, date, origin, None):
        first.date = date
        # tau2-bench's rule for a first leg landing after midnight (kept as is, padding included).
        second_date = (
            f"2024-05-{int(date[-2:]) + 1}" if "+1" in first.scheduled_arrival_time_est else date
        )
        for second in _direct_flights(
            state, second_date, first.destination, destination, first.scheduled_arrival_time_est
        ):
            second.date = second_date
            results.append([first, second])
    return results


@tool("write")
def send_certificate(state: State, user_id: str, amount: int) -> str:
    """Add a travel certificate of the given value to a user's profile. Use with care.

    Args:
        user_id: The id of the user who receives it, e.g. 'sara_doe_496'.
        amount: The certificate's value in dollars.
    """
    user = _user(state, user_id)
    for payment_id in NEW_CERTIFICATE_IDS:
        if payment_id not in user.payment_methods:
            owner = state.mut("users", user_id)
            owner.payment_methods[payment_id] = Certificate(id=payment_id, amount=float(amount))
            return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
    raise ToolError("Too many certificates")


@tool("write")
def update_reservation_baggages(
    state: State, reservation_id: str, total_baggages: int, nonfree_baggages: int, payment_id: str
) -> Reservation:
    """Change the number of checked bags on a reservation, charging any new paid bags.

    Args:
        reservation_id: The reservation id, e.g. 'ZFA04Y'.
        total_baggages: The new total number of checked bags.
        nonfree_baggages: The new number of paid bags.
        payment_id: A payment method id from the user's profile, e.g. 'credit_card_7815826' or 'gift_card_7815826'.
    """
    current = _reservation(state, reservation_id)
    _user(state, current.user_id)
    total = bag_charge(current.nonfree_baggages, nonfree_baggages)
    payment = _charge_for_update(state, current.user_id, payment_id, total)
    reservation = state.mut("reservations", reservation_id)
    if payment is not None:
        reservation.payment_history.append(payment)
    reservation.total_baggages = total_baggages
    reservation.nonfree_baggages = nonfree_baggages
    return reservation


@tool("write")
def update_reservation_flights(
    state: State, reservation_id: str, cabin: Cabin, flights: list[FlightInfo], payment_id: str
) -> Reservation:
    """Replace the flights (and cabin) of a reservation, charging or refunding the fare difference.

    Args:
        reservation_id: The reservation id, e.g. 'ZFA04Y'.
        cabin: The cabin for the whole reservation after the change.
        flights: Every flight of the reservation after the change, unchanged segments included.
        payment_id: A payment method id from the user's profile, e.g. 'credit_card_7815826' or 'gift_card_7815826'.
    """
    current = _reservation(state, reservation_id)
    _user(state, current.user_id)
    n = len(current.passengers)
    total = 0
    new_flights: list[ReservationFlight] = []  # fresh objects only: none shared with ``current``
    same_cabin = cabin == current.cabin
    for info in flights:
        kept = (
            next((f for f in current.flights if f.flight_number == info.flight_number and f.date == info.date), None)
            if same_cabin
            else None
        )
        if kept is not None:
            total += kept.price * n
            new_flights.append(
                ReservationFlight(
                    flight_number=kept.flight_number,
                    origin=kept.origin,
                    destination=kept.destination,
                    date=kept.date,
                    price=kept.price,
                )
            )
            continue
        flight = _flight(state, info.flight_number)
        status = _status_on(flight, info.flight_number, info.date)
        if not isinstance(status, Available):
            raise ToolError(f"Flight {info.flight_number} not available on date {info.date}")
        if status.available_seats[cabin] < n:
            raise ToolError(f"Not enough seats on flight {info.flight_number}")
        segment = ReservationFlight(
            flight_number=info.flight_number,
            origin=flight.origin,
            destination=flight.destination,
            date=info.date,
            price=status.prices[cabin],
        )
        total += segment.price * n
        new_flights.append(segment)
    total -= sum(f.price for f in current.flights) * n
    payment = _charge_for_update(state, current.user_id, payment_id, total)
    reservation = state.mut("reservations", reservation_id)
    if payment is not None:
        reservation.payment_history.append(payment)
    reservation.flights = new_flights
    reservation.cabin = cabin
    return reservation


@tool("write")
def update_reservation_passengers(
    state: State, reservation_id: str, passengers: list[Passenger]
) -> Reservation:
    """Replace the passengers' details on a reservation; the number of passengers cannot change.

    Args:
        reservation_id: The reservation id, e.g. 'ZFA04Y'.
        passengers: Every passenger after the change, each with first name, last name and date of birth.
    """
    current = _reservation(state, reservation_id)
    if len(passengers) != len(current.passengers):
        raise ToolError("Number of passengers does not match")
    reservation = state.mut("reservations", reservation_id)
    reservation.passengers = list(passengers)
    return reservation


@tool("read")
def get_flight_status(state: State, flight_number: str, date: str) -> str:
    """Tell the status of a flight on a date (available, on time, delayed, flying, landed, cancelled).

    Args:
        flight_number: The flight number, e.g. 'HAT001'.
        date: The flight date, YYYY-MM-DD.
    """
    status = _flight_on(state, flight_number, date)
    return type(status).__struct_config__.tag


TOOLS = (
    book_reservation,
    calculate,
    cancel_reservation,
    get_reservation_details,
    get_user_details,
    list_all_airports,
    search_direct_flight,
    search_onestop_flight,
    send_certificate,
    transfer_to_human_agents,
    update_reservation_baggages,
    update_reservation_flights,
    update_reservation_passengers,
    get_flight_status,
)
