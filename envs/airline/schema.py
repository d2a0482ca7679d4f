"""The airline DB as msgspec Structs, field for field and in the field order of tau2-bench's models."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

__all__ = [
    "AirlineDB",
    "AirportCode",
    "Available",
    "Cancelled",
    "Certificate",
    "CreditCard",
    "Delayed",
    "DirectFlight",
    "Flight",
    "FlightInfo",
    "FlightStatus",
    "Flying",
    "GiftCard",
    "Landed",
    "OnTime",
    "Passenger",
    "Payment",
    "PaymentMethod",
    "Reservation",
    "ReservationFlight",
    "User",
]

Cabin = Literal["business", "economy", "basic_economy"]
FlightType = Literal["round_trip", "one_way"]
Insurance = Literal["yes", "no"]
Membership = Literal["gold", "silver", "regular"]


class Name(Struct, kw_only=True):
    first_name: str
    last_name: str


class Address(Struct, kw_only=True):
    address1: str
    address2: str | None = None
    city: str
    country: str
    state: str
    zip: str


class Payment(Struct, kw_only=True):
    """One payment (or refund, when negative) on a reservation."""

    payment_id: Annotated[str, Meta(description="A payment method id from the user's profile")]
    amount: Annotated[int, Meta(description="Amount in dollars")]


class CreditCard(Struct, kw_only=True, tag_field="source", tag="credit_card"):
    id: str
    brand: str
    last_four: str


class GiftCard(Struct, kw_only=True, tag_field="source", tag="gift_card"):
    id: str
    amount: float


class Certificate(Struct, kw_only=True, tag_field="source", tag="certificate"):
    id: str
    amount: float


PaymentMethod = CreditCard | GiftCard | Certificate


class Passenger(Struct, kw_only=True):
    first_name: str
    last_name: str
    dob: Annotated[str, Meta(description="Date of birth, YYYY-MM-DD")]


class Available(Struct, kw_only=True, tag_field="status", tag="available"):
    available_seats: dict[Cabin, int]
    prices: dict[Cabin, int]


class Landed(Struct, kw_only=True, tag_field="status", tag="landed"):
    actual_departure_time_est: str
    actual_arrival_time_est: str


class Cancelled(Struct, kw_only=True, tag_field="status", tag="cancelled"):
    pass


class Delayed(Struct, kw_only=True, tag_field="status", tag="delayed"):
    estimated_departure_time_est: str
    estimated_arrival_time_est: str


class Flying(Struct, kw_only=True, tag_field="status", tag="flying"):
    actual_departure_time_est: str
    estimated_arrival_time_est: str


class OnTime(Struct, kw_only=True, tag_field="status", tag="on time"):
    estimated_departure_time_est: str
    estimated_arrival_time_est: str


FlightStatus = Available | Landed | Cancelled | Delayed | Flying | OnTime


class Flight(Struct, kw_only=True):
    flight_number: str
    origin: str
    destination: str
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str
    dates: dict[str, FlightStatus]


class DirectFlight(Struct, kw_only=True):
    """A bookable flight on one date, as the search tools return it."""

    flight_number: str
    origin: str
    destination: str
    status: str = "available"
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str
    date: str | None = None
    available_seats: dict[Cabin, int]
    prices: dict[Cabin, int]


class ReservationFlight(Struct, kw_only=True):
    flight_number: str
    origin: str
    destination: str
    date: str
    price: int


class FlightInfo(Struct, kw_only=True):
    """A flight of an itinerary: its number and date."""

    flight_number: Annotated[str, Meta(description="Flight number, e.g. 'HAT001'")]
    date: Annotated[str, Meta(description="Flight date, YYYY-MM-DD")]


class User(Struct, kw_only=True):
    user_id: str
    name: Name
    address: Address
    email: str
    dob: str
    payment_methods: dict[str, PaymentMethod]
    saved_passengers: list[Passenger]
    membership: Membership
    reservations: list[str]


class Reservation(Struct, kw_only=True):
    reservation_id: str
    user_id: str
    origin: str
    destination: str
    flight_type: FlightType
    cabin: Cabin
    flights: list[ReservationFlight]
    passengers: list[Passenger]
    payment_history: list[Payment]
    created_at: str
    total_baggages: int
    nonfree_baggages: int
    insurance: Insurance
    status: Literal["cancelled"] | None = None


class AirportCode(Struct, kw_only=True):
    iata: str
    city: str


class AirlineDB(Struct, kw_only=True):
    """The whole airline database: tables keyed by flight number, user id and reservation id."""

    flights: dict[str, Flight]
    users: dict[str, User]
    reservations: dict[str, Reservation]
