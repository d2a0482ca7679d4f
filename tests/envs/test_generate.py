"""Seeded DB generators: consistency, determinism, round trips, and real tool calls on their output."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest

from envs import get_domain
from envs.airline.integrity import check as check_airline
from envs.airline.schema import AirlineDB, Available, CreditCard
from envs.airline.tools import NEW_CERTIFICATE_IDS, NEW_RESERVATION_IDS
from envs.retail.integrity import check as check_retail
from envs.retail.schema import GiftCard, RetailDB

CHECKS = {"airline": check_airline, "retail": check_retail}
FUTURE = "2024-05-22"


def _copy(db: Any) -> Any:
    """An independent deep copy of a DB (JSON round trip)."""
    return msgspec.json.decode(msgspec.json.encode(db), type=type(db))


def _call(state: Any, domain: str, name: str, /, **args: Any) -> Any:
    """Run a real tool call; it must succeed. Returns the decoded JSON output (or the string)."""
    result = get_domain(domain).call(state, name, args, strict=True)
    assert not result.error, f"{name}({args}) -> {result.output}"
    try:
        return json.loads(result.output)
    except ValueError:
        return result.output


@pytest.fixture(scope="module")
def airline() -> AirlineDB:
    return get_domain("airline").generate_db(users=500, seed=11)


@pytest.fixture(scope="module")
def retail() -> RetailDB:
    return get_domain("retail").generate_db(users=500, seed=11)


# -- consistency, sizes, determinism, round trip ----------------------------------------------------
@pytest.mark.parametrize("domain", ["airline", "retail"])
@pytest.mark.parametrize(("users", "seed"), [(1, 0), (3, 9), (40, 1), (500, 2), (1500, 3)])
def test_generated_db_is_consistent(domain: str, users: int, seed: int) -> None:
    db = get_domain(domain).generate_db(users=users, seed=seed)
    assert CHECKS[domain](db) == []
    assert len(db.users) == users
    if domain == "airline":
        assert len(db.flights) >= 40
        if users >= 500:
            assert 3.5 * users < len(db.reservations) < 4.5 * users
    elif users >= 500:
        assert 1.7 * users < len(db.orders) < 2.3 * users
        assert len(db.products) >= 50


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_tiny_dbs_over_many_seeds_are_consistent(domain: str) -> None:
    dom = get_domain(domain)
    for seed in range(60):
        db = dom.generate_db(users=1 + seed % 3, seed=seed)
        assert CHECKS[domain](db) == [], f"seed {seed}"


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_same_seed_same_bytes(domain: str) -> None:
    dom = get_domain(domain)
    first = msgspec.json.encode(dom.generate_db(users=200, seed=5))
    assert msgspec.json.encode(dom.generate_db(users=200, seed=5)) == first
    assert msgspec.json.encode(dom.generate_db(users=200, seed=6)) != first


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_encode_then_load_gives_the_same_records(domain: str) -> None:
    dom = get_domain(domain)
    db = dom.generate_db(users=120, seed=4)
    data = msgspec.json.encode(db)
    loaded = dom.load_bytes(data).db
    assert msgspec.to_builtins(loaded) == msgspec.to_builtins(db)
    assert msgspec.json.encode(loaded) == data


def test_zero_users_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"^users must be at least 1, got 0$"):
        get_domain("airline").generate_db(users=0, seed=1)
    with pytest.raises(ValueError, match=r"^users must be at least 1, got 0$"):
        get_domain("retail").generate_db(users=0, seed=1)


def test_airline_ids_and_variety(airline: AirlineDB) -> None:
    assert not set(NEW_RESERVATION_IDS) & set(airline.reservations)
    for uid, user in airline.users.items():
        assert re.fullmatch(r"[a-z]+_[a-z]+_\d{4}", uid)
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d{4}@example\.com", user.email)
        assert not set(NEW_CERTIFICATE_IDS) & set(user.payment_methods)
    for rid in airline.reservations:
        assert re.fullmatch(r"[A-Z0-9]{6}", rid)
    assert all(re.fullmatch(r"HAT\d{3}", n) for n in airline.flights)
    overnight = [f for f in airline.flights.values() if f.scheduled_arrival_time_est.endswith("+1")]
    assert overnight and all(re.fullmatch(r"\d\d:\d\d:00\+1", f.scheduled_arrival_time_est) for f in overnight)
    today = {type(f.dates["2024-05-15"]).__struct_config__.tag for f in airline.flights.values()}
    assert {"landed", "flying", "on time", "delayed"} <= today
    res = list(airline.reservations.values())
    assert {r.flight_type for r in res} == {"one_way", "round_trip"}
    assert {r.cabin for r in res} == {"basic_economy", "economy", "business"}
    assert {len(r.flights) for r in res} >= {1, 2, 3, 4}
    assert any(r.status == "cancelled" for r in res) and any(r.nonfree_baggages for r in res)
    assert len({(f.origin, f.destination) for f in airline.flights.values()}) > 60


def test_retail_ids_and_variety(retail: RetailDB) -> None:
    assert {o.status for o in retail.orders.values()} == {"pending", "processed", "delivered", "cancelled"}
    for oid in retail.orders:
        assert re.fullmatch(r"#W\d{7}", oid)
    for pid, product in retail.products.items():
        assert re.fullmatch(r"\d{10}", pid) and 1 <= len(product.variants) <= 20
        assert sum(v.available for v in product.variants.values()) >= min(2, len(product.variants))
    kinds = {type(m).__struct_config__.tag for u in retail.users.values() for m in u.payment_methods.values()}
    assert kinds == {"credit_card", "paypal", "gift_card"}


# -- check() finds injected problems --------------------------------------------------------------------
def test_airline_check_finds_injected_problems(airline: AirlineDB) -> None:
    db = _copy(airline)
    user = next(iter(db.users.values()))
    user.reservations.append("ZZZZZZ")
    res = next(r for r in db.reservations.values() if r.status is None and len(r.payment_history) == 1)
    res.payment_history[0].amount += 1
    paid = res.payment_history[0].amount
    other = next(r for r in db.reservations.values() if r is not res and r.status is None)
    other.flights[0].flight_number = "HAT9999"
    problems = check_airline(db)
    assert f"user {user.user_id}: reservation ZZZZZZ does not exist" in problems
    assert f"reservation {res.reservation_id}: payments sum to {paid}, price is {paid - 1}" in problems
    assert f"reservation {other.reservation_id}: flight HAT9999 does not exist" in problems


def test_airline_check_finds_a_wrong_seat_count(airline: AirlineDB) -> None:
    db = _copy(airline)
    number, flight = next(iter(db.flights.items()))
    booked = {
        d: sum(
            len(r.passengers)
            for r in db.reservations.values()
            if r.status is None and r.cabin == "economy"
            for f in r.flights
            if f.flight_number == number and f.date == d
        )
        for d in ("2024-05-16", "2024-05-30")
    }
    first, last = flight.dates["2024-05-16"], flight.dates["2024-05-30"]
    assert isinstance(first, Available) and isinstance(last, Available)
    capacity = first.available_seats["economy"] + booked["2024-05-16"]
    assert last.available_seats["economy"] + booked["2024-05-30"] == capacity
    last.available_seats["economy"] -= 1
    assert check_airline(db) == [
        f"flight {number} on 2024-05-30: economy seats left + booked is {capacity - 1}, {capacity} on 2024-05-16"
    ]


def test_retail_check_finds_injected_problems(retail: RetailDB) -> None:
    db = _copy(retail)
    pending = next(o for o in db.orders.values() if o.status == "pending")
    pending.items[0].item_id = "0000000000"
    delivered = next(o for o in db.orders.values() if o.status == "delivered")
    delivered.payment_history[0].amount = round(delivered.payment_history[0].amount + 1, 2)
    user = next(iter(db.users.values()))
    user.orders.append("#W0000000")
    problems = check_retail(db)
    product = pending.items[0].product_id
    total = round(sum(i.price for i in delivered.items), 2)
    net = delivered.payment_history[0].amount
    assert f"order {pending.order_id}: item 0000000000 of product {product} does not exist" in problems
    assert f"order {delivered.order_id}: payments net {net}, want {total} (delivered)" in problems
    assert f"user {user.user_id}: order #W0000000 does not exist" in problems


# -- real tool calls on generated airline data ----------------------------------------------------------
def test_airline_searches_find_flights_on_future_dates(airline: AirlineDB) -> None:
    state = get_domain("airline").from_struct(airline).new_state()
    flight = next(iter(airline.flights.values()))
    direct = _call(
        state, "airline", "search_direct_flight", origin=flight.origin, destination=flight.destination, date=FUTURE
    )
    assert flight.flight_number in {f["flight_number"] for f in direct}
    assert all(f["origin"] == flight.origin and f["destination"] == flight.destination for f in direct)
    codes = [a["iata"] for a in _call(state, "airline", "list_all_airports")]
    found = 0
    for origin in codes[:6]:
        for destination in codes:
            if destination == origin:
                continue
            args = {"origin": origin, "destination": destination, "date": FUTURE}
            trips = _call(state, "airline", "search_onestop_flight", **args)
            for first, second in trips:
                assert first["destination"] == second["origin"]
                assert (first["origin"], second["destination"]) == (origin, destination)
            found += bool(trips)
    assert found >= 40  # of 114 airport pairs searched


def _future_reservation(db: AirlineDB, test: Any) -> Any:
    """An active reservation, all flights after today, for which ``test(reservation)`` holds."""
    for res in db.reservations.values():
        if res.status is None and all(f.date > "2024-05-15" for f in res.flights) and test(res):
            return res
    raise AssertionError("no such reservation in the generated DB")


def _credit_card(db: AirlineDB, user_id: str) -> str | None:
    methods = db.users[user_id].payment_methods
    return next((k for k, m in methods.items() if isinstance(m, CreditCard)), None)


def test_airline_book_then_db_stays_consistent(airline: AirlineDB) -> None:
    state = get_domain("airline").from_struct(airline).new_state()
    user = next(u for u in airline.users.values() if u.membership == "gold" and _credit_card(airline, u.user_id))
    number, flight = next(
        (n, f)
        for n, f in airline.flights.items()
        if isinstance(f.dates[FUTURE], Available) and f.dates[FUTURE].available_seats["economy"] >= 2
    )
    before = flight.dates[FUTURE]
    assert isinstance(before, Available)
    passengers = [
        {"first_name": user.name.first_name, "last_name": user.name.last_name, "dob": user.dob},
        {"first_name": "Ada", "last_name": "Novak", "dob": "1990-02-03"},
    ]
    total = 2 * before.prices["economy"] + 2 * 30
    booked = _call(
        state, "airline", "book_reservation", user_id=user.user_id, origin=flight.origin,
        destination=flight.destination, flight_type="one_way", cabin="economy",
        flights=[{"flight_number": number, "date": FUTURE}], passengers=passengers,
        payment_methods=[{"payment_id": _credit_card(airline, user.user_id), "amount": total}],
        total_baggages=3, nonfree_baggages=0, insurance="yes",
    )  # fmt: skip
    assert booked["reservation_id"] == "HATHAT"
    after = state.materialize()
    seats = after.flights[number].dates[FUTURE].available_seats["economy"]
    assert seats == before.available_seats["economy"] - 2
    assert check_airline(after) == []  # seats, payments and the user's list all agree after a booking


def test_airline_changes_and_cancellation_succeed(airline: AirlineDB) -> None:
    state = get_domain("airline").from_struct(airline).new_state()
    # 1) change flights: a nonstop one-way economy trip moves to the same route on another date
    res = _future_reservation(
        airline,
        lambda r: r.cabin == "economy" and len(r.flights) == 1 and _credit_card(airline, r.user_id),
    )
    leg, n = res.flights[0], len(res.passengers)
    number, date = next(
        (num, d)
        for num, f in airline.flights.items()
        if (f.origin, f.destination) == (leg.origin, leg.destination)
        for d, s in f.dates.items()
        if isinstance(s, Available) and d != leg.date and s.available_seats["economy"] >= n
    )
    out = _call(
        state, "airline", "update_reservation_flights", reservation_id=res.reservation_id, cabin="economy",
        flights=[{"flight_number": number, "date": date}], payment_id=_credit_card(airline, res.user_id),
    )  # fmt: skip
    assert (out["flights"][0]["flight_number"], out["flights"][0]["date"]) == (number, date)
    # 2) upgrade a basic economy reservation to business on the same flights
    res = _future_reservation(
        airline,
        lambda r: r.cabin == "basic_economy"
        and _credit_card(airline, r.user_id)
        and all(airline.flights[f.flight_number].dates[f.date].available_seats["business"] >= len(r.passengers)
                for f in r.flights),
    )  # fmt: skip
    out = _call(
        state, "airline", "update_reservation_flights", reservation_id=res.reservation_id, cabin="business",
        flights=[{"flight_number": f.flight_number, "date": f.date} for f in res.flights],
        payment_id=_credit_card(airline, res.user_id),
    )  # fmt: skip
    assert out["cabin"] == "business" and out["payment_history"][-1]["amount"] > 0
    # 3) bags, passengers, then cancel
    res = _future_reservation(airline, lambda r: r.flight_type == "round_trip" and _credit_card(airline, r.user_id))
    out = _call(
        state, "airline", "update_reservation_baggages", reservation_id=res.reservation_id,
        total_baggages=res.total_baggages + 1, nonfree_baggages=res.nonfree_baggages + 1,
        payment_id=_credit_card(airline, res.user_id),
    )  # fmt: skip
    assert out["payment_history"][-1]["amount"] == 50
    renamed = [{"first_name": "Mila", "last_name": p.last_name, "dob": p.dob} for p in res.passengers]
    rid = res.reservation_id
    out = _call(state, "airline", "update_reservation_passengers", reservation_id=rid, passengers=renamed)
    assert {p["first_name"] for p in out["passengers"]} == {"Mila"}
    out = _call(state, "airline", "cancel_reservation", reservation_id=res.reservation_id)
    assert out["status"] == "cancelled" and sum(p["amount"] for p in out["payment_history"]) == 0
    user = _call(state, "airline", "get_user_details", user_id=res.user_id)
    assert res.reservation_id in user["reservations"]
    flight = next(iter(airline.flights.values()))
    assert _call(state, "airline", "get_flight_status", flight_number=flight.flight_number, date=FUTURE) == "available"


# -- real tool calls on generated retail data ---------------------------------------------------------------
def _other_variant(db: RetailDB, product_id: str, item_id: str) -> Any:
    """An available variant of the same product with another item id, or None."""
    variants = db.products[product_id].variants.values()
    return next((v for v in variants if v.available and v.item_id != item_id), None)


def _non_gift_method(db: RetailDB, user_id: str, not_this: str | None = None) -> str | None:
    methods = db.users[user_id].payment_methods
    return next((k for k, m in methods.items() if not isinstance(m, GiftCard) and k != not_this), None)


def test_retail_lookups_find_the_user(retail: RetailDB) -> None:
    state = get_domain("retail").from_struct(retail).new_state()
    for user in list(retail.users.values())[:50]:
        assert _call(state, "retail", "find_user_id_by_email", email=user.email) == user.user_id
        found = _call(
            state, "retail", "find_user_id_by_name_zip", first_name=user.name.first_name,
            last_name=user.name.last_name, zip=user.address.zip,
        )  # fmt: skip
        assert found == user.user_id
    types = _call(state, "retail", "list_all_product_types")
    assert sorted(types.values()) == sorted(retail.products)


def test_retail_pending_order_actions_succeed(retail: RetailDB) -> None:
    state = get_domain("retail").from_struct(retail).new_state()
    pending = [o for o in retail.orders.values() if o.status == "pending"]
    # 1) cancel
    out = _call(state, "retail", "cancel_pending_order", order_id=pending[0].order_id, reason="ordered by mistake")
    assert out["status"] == "cancelled" and out["payment_history"][-1]["transaction_type"] == "refund"
    # 2) new shipping address
    address = {"address1": "12 Harbor Street", "address2": "Apt 3C", "city": "Boise", "state": "ID",
               "country": "USA", "zip": "83702"}  # fmt: skip
    out = _call(state, "retail", "modify_pending_order_address", order_id=pending[1].order_id, **address)
    assert out["address"] == address
    # 3) pay with another method
    order = next(o for o in pending[2:] if _non_gift_method(retail, o.user_id, o.payment_history[0].payment_method_id))
    method = _non_gift_method(retail, order.user_id, order.payment_history[0].payment_method_id)
    out = _call(state, "retail", "modify_pending_order_payment", order_id=order.order_id, payment_method_id=method)
    assert [p["transaction_type"] for p in out["payment_history"]] == ["payment", "payment", "refund"]
    # 4) swap an item for another variant of the same product
    order = next(
        o for o in pending[2:]
        if o.order_id != order.order_id and _non_gift_method(retail, o.user_id)
        and _other_variant(retail, o.items[0].product_id, o.items[0].item_id)
    )  # fmt: skip
    new = _other_variant(retail, order.items[0].product_id, order.items[0].item_id)
    out = _call(
        state, "retail", "modify_pending_order_items", order_id=order.order_id, item_ids=[order.items[0].item_id],
        new_item_ids=[new.item_id], payment_method_id=_non_gift_method(retail, order.user_id),
    )  # fmt: skip
    assert out["status"] == "pending (item modified)" and new.item_id in {i["item_id"] for i in out["items"]}
    # 5) a new default address for the user
    out = _call(state, "retail", "modify_user_address", user_id=order.user_id, **address)
    assert out["address"] == address


def test_retail_delivered_order_actions_succeed(retail: RetailDB) -> None:
    state = get_domain("retail").from_struct(retail).new_state()
    delivered = [o for o in retail.orders.values() if o.status == "delivered"]
    order = delivered[0]
    out = _call(
        state, "retail", "return_delivered_order_items", order_id=order.order_id, item_ids=[order.items[0].item_id],
        payment_method_id=order.payment_history[0].payment_method_id,
    )  # fmt: skip
    assert out["status"] == "return requested" and out["return_items"] == [order.items[0].item_id]
    order = next(
        o for o in delivered[1:]
        if _non_gift_method(retail, o.user_id) and _other_variant(retail, o.items[0].product_id, o.items[0].item_id)
    )  # fmt: skip
    new = _other_variant(retail, order.items[0].product_id, order.items[0].item_id)
    out = _call(
        state, "retail", "exchange_delivered_order_items", order_id=order.order_id,
        item_ids=[order.items[0].item_id], new_item_ids=[new.item_id],
        payment_method_id=_non_gift_method(retail, order.user_id),
    )  # fmt: skip
    assert out["status"] == "exchange requested" and out["exchange_new_items"] == [new.item_id]
    details = _call(state, "retail", "get_item_details", item_id=new.item_id)
    assert details["price"] == new.price
