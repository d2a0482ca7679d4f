"""Hypothesis strategies for tool calls: valid ones built from the live state, and broken ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from envs import State, get_domain

JUNK = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=3),
)


_SAMPLES: dict[tuple[int, str], list[str]] = {}


def _sample(state: State, table: str, limit: int = 40) -> list[str]:
    """About ``limit`` keys spread over the base table (cached), plus keys this state added."""
    slot = (id(state.base), table)
    keys = _SAMPLES.get(slot)
    if keys is None:
        every = max(1, len(state.base.tables[table]) // limit)
        keys = [k for i, k in enumerate(state.base.tables[table]) if i % every == 0]
        _SAMPLES[slot] = keys
    return keys + state.added(table)


@st.composite
def broken_call(draw: st.DrawFn, domain: str) -> tuple[str, Any]:
    """A call that must be refused: unknown tool, bad JSON, wrong types, missing or extra args."""
    dom = get_domain(domain)
    name = draw(st.sampled_from(sorted(dom.tools)))
    tool = dom.tools[name]
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.text(min_size=1, max_size=20)) + "_nope", {}
    if choice == 1:
        return name, draw(st.sampled_from([b"{", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b""]))
    if choice == 2:
        return name, {"unexpected_argument": draw(JUNK)}
    if choice == 3 and tool.required:
        return name, {p: "x" for p in tool.required[1:]}
    return name, {p: draw(JUNK) for p in tool.param_names}


@st.composite
def airline_call(
    draw: st.DrawFn, state: State, names: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """An airline call (of one of ``names``, default any tool) with arguments drawn from real ids
    (often valid, sometimes not)."""
    users = _sample(state, "users")
    reservations = [*_sample(state, "reservations"), "HATHAT", "NOPE00"]
    flights = _sample(state, "flights")
    dates = [f"2024-05-{d:02d}" for d in range(1, 31)] + ["2024-06-01"]
    airports = ["SFO", "JFK", "LAX", "ORD", "DFW", "DEN", "SEA", "ATL", "MIA", "BOS", "PHX",
                "IAH", "LAS", "MCO", "EWR", "CLT", "MSP", "DTW", "PHL", "LGA"]  # fmt: skip
    cabins = ["basic_economy", "economy", "business"]
    user_id = draw(st.sampled_from(users))
    user = state.get("users", user_id)
    pay_ids = [*user.payment_methods, "credit_card_0000000"]
    rid = draw(st.sampled_from(reservations))
    res = state.get("reservations", rid)
    name = draw(st.sampled_from(sorted(names or get_domain("airline").tools)))
    date = draw(st.sampled_from(dates))
    if name == "book_reservation":
        number = draw(st.sampled_from(flights))
        flight = state.get("flights", number)
        date = draw(st.sampled_from(sorted(flight.dates)))
        cabin = draw(st.sampled_from(cabins))
        n = draw(st.integers(1, 3))
        status = flight.dates[date]
        price = getattr(status, "prices", {}).get(cabin, 100)
        insurance = draw(st.sampled_from(["yes", "no"]))
        bags = draw(st.integers(0, 2))
        total = price * n + (30 * n if insurance == "yes" else 0) + 50 * bags
        total += draw(st.sampled_from([0, 0, 0, 1]))
        return name, {
            "user_id": user_id, "origin": flight.origin, "destination": flight.destination,
            "flight_type": "one_way", "cabin": cabin,
            "flights": [{"flight_number": number, "date": date}],
            "passengers": [{"first_name": "Ann", "last_name": f"Lee{i}", "dob": "1990-01-01"}
                           for i in range(n)],
            "payment_methods": [{"payment_id": draw(st.sampled_from(pay_ids)), "amount": total}],
            "total_baggages": bags, "nonfree_baggages": bags, "insurance": insurance,
        }  # fmt: skip
    if name in {"update_reservation_flights"} and res is not None:
        segments = [{"flight_number": f.flight_number, "date": f.date} for f in res.flights]
        if draw(st.booleans()):
            segments[0]["date"] = date
        owner_pay = [*state.get("users", res.user_id).payment_methods, "gift_card_0"]
        cabin = draw(st.sampled_from([res.cabin, *cabins]))
        return name, {"reservation_id": rid, "cabin": cabin,
                      "flights": segments, "payment_id": draw(st.sampled_from(owner_pay))}  # fmt: skip
    if name == "update_reservation_passengers" and res is not None:
        count = len(res.passengers) + draw(st.sampled_from([0, 0, 1]))
        people = [{"first_name": "Bo", "last_name": f"Kim{i}", "dob": "1985-02-03"} for i in range(count)]
        return name, {"reservation_id": rid, "passengers": people}
    if name == "update_reservation_baggages":
        owner = state.get("users", res.user_id) if res is not None else user
        return name, {"reservation_id": rid, "total_baggages": draw(st.integers(0, 5)),
                      "nonfree_baggages": draw(st.integers(0, 5)),
                      "payment_id": draw(st.sampled_from([*owner.payment_methods, "gift_card_0"]))}  # fmt: skip
    values = {
        "user_id": user_id, "reservation_id": rid, "flight_number": draw(st.sampled_from(flights)),
        "date": date, "origin": draw(st.sampled_from(airports)),
        "destination": draw(st.sampled_from(airports)), "amount": draw(st.integers(1, 500)),
        "expression": draw(st.sampled_from(["2 + 2", "(10 - 4) * 3 / 7", "1 / 0", "2 ** 3", "1 +", "abc"])),
        "summary": "needs a human", "cabin": draw(st.sampled_from(cabins)),
        "flights": [{"flight_number": draw(st.sampled_from(flights)), "date": date}],
        "payment_id": draw(st.sampled_from(pay_ids)), "total_baggages": 1, "nonfree_baggages": 1,
        "passengers": [{"first_name": "Cy", "last_name": "Ng", "dob": "2000-01-01"}],
    }  # fmt: skip
    tool = get_domain("airline").tools[name]
    return name, {p: values[p] for p in tool.param_names}


@st.composite
def retail_call(
    draw: st.DrawFn, state: State, names: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """A retail call (of one of ``names``, default any tool) with arguments drawn from real ids
    (often valid, sometimes not)."""
    orders = [*_sample(state, "orders"), "#W0000000"]
    order_id = draw(st.sampled_from(orders))
    order = state.get("orders", order_id)
    user = state.get("users", order.user_id) if order is not None else None
    if user is None:
        user = state.get("users", draw(st.sampled_from(_sample(state, "users"))))
    pay_ids = [*user.payment_methods, "paypal_0000000"]
    if order is not None and order.payment_history:
        pay_ids.extend([order.payment_history[0].payment_method_id] * 3)
    name = draw(st.sampled_from(sorted(names or get_domain("retail").tools)))
    item_ids: list[str] = []
    new_item_ids: list[str] = []
    if order is not None and order.items:
        positions = st.integers(0, len(order.items) - 1)
        picked = draw(st.lists(positions, min_size=1, max_size=3, unique=True))
        for item in (order.items[i] for i in picked):
            item_ids.append(item.item_id)
            product = state.get("products", item.product_id)
            new_item_ids.append(draw(st.sampled_from(sorted(product.variants))))
    products = _sample(state, "products")
    values = {
        "order_id": order_id, "user_id": user.user_id, "item_ids": item_ids,
        "new_item_ids": new_item_ids, "payment_method_id": draw(st.sampled_from(pay_ids)),
        "reason": draw(st.sampled_from(["no longer needed", "ordered by mistake", "bored"])),
        "first_name": user.name.first_name, "last_name": user.name.last_name,
        "zip": draw(st.sampled_from([user.address.zip, "00000"])), "email": user.email.upper(),
        "product_id": draw(st.sampled_from(products)),
        "item_id": draw(st.sampled_from([*new_item_ids, "123"])),
        "address1": "1 Elm St", "address2": "", "city": "Austin", "state": "TX", "country": "USA",
        "expression": draw(st.sampled_from(["19.99 * 3", "(5 + 5) / 4", "7 // 0", "2 ** 10", ")"])),
        "summary": "wants a human",
    }  # fmt: skip
    tool = get_domain("retail").tools[name]
    return name, {p: values[p] for p in tool.param_names}


DOMAIN_CALLS = {"airline": airline_call, "retail": retail_call}
