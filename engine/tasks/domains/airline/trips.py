"""Airline recipes that search flights: book a trip, change a reservation's flights, change its cabin.

Each recipe states the user's wish as a rule over search results (cheapest, fastest, earliest ...,
on either of two days, from either of two airports, direct only or with one stop) and records the
searches as evidence reads; the rule must pick exactly one itinerary. Fares, bag fees, insurance
and payment splits follow the airline policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from engine.tasks.domains.airline.common import (
    CITY,
    METRO,
    card_words,
    pick_payment,
    pick_reservation,
    upcoming,
)
from engine.tasks.domains.airline.policy import segment_status, status_kind
from engine.tasks.domains.airline.search import (
    FLIGHT_RULES,
    cabin_words,
    day_words,
    pick_itinerary,
    reachable,
    search,
)
from engine.tasks.model import Intent, Selection
from engine.tasks.recipe import Reject, SampleContext, act, facts, read, unique_best
from envs.airline.pricing import free_bags, next_reservation_id, reservation_price
from envs.airline.schema import Available

__all__ = ["choose_by_cost", "sample_book", "sample_change_cabin", "sample_change_flights"]

CABINS = ("basic_economy", "economy", "business")
FIRST_DAY, LAST_DAY = 16, 30  # bookable dates in May 2024 (the policy's "now" is May 15)


def choose_by_cost(ctx: SampleContext, options: Sequence[tuple[int, Any]], target: int) -> Any:
    """An option whose cost (new reads) is closest to ``target``; sometimes any option."""
    if ctx.rng.random() < 0.2:
        return ctx.rng.choice(list(options))[1]
    best = min(abs(cost - target) for cost, _ in options)
    return ctx.rng.choice([v for cost, v in options if abs(cost - target) == best])


def _date(day: int) -> str:
    return f"2024-05-{day:02d}"


def _days_text(dates: Sequence[str]) -> str:
    return " or ".join(day_words(d) for d in dates) if len(dates) > 1 else day_words(dates[0])


def _scope(onestop: bool) -> str:
    return "nonstop or one-stop" if onestop else "nonstop"


# how a customer states each flight rule; ``{scope}`` is 'nonstop' or 'nonstop or one-stop'
RULE_WORDS = {
    "cheapest": "the cheapest {scope} flight",
    "fastest": "the fastest {scope} flight",
    "earliest": "the earliest-departing {scope} flight",
    "latest": "the latest-departing {scope} flight",
    "fewest_stops": "a flight with as few stops as possible (nonstop beats one-stop; the cheaper if there is a tie)",
    "earliest_arrival": "the {scope} flight that gets there earliest",
}


def _flight_want(rule: str, cabin: str, onestop: bool, dates: Sequence[str]) -> str:
    either = " (either day is fine)" if len(dates) > 1 else ""
    return (
        f"{RULE_WORDS[rule].format(scope=_scope(onestop))} in {cabin_words(cabin)} with seats"
        f" for everyone, leaving on {_days_text(dates)}{either}"
    )


def _ask_amount(diff: int) -> list[str]:
    """The sentence that makes the user ask for the price difference (a required output)."""
    return ["You want to know how much you will pay or get back."] if diff else []


def _user_read(ctx: SampleContext, why: str) -> Any:
    return read("get_user_details", why, user_id=ctx.user_id)


def _rule(ctx: SampleContext, n_dates: int, onestop: bool) -> str:
    """A flight rule that can single out one option: over two days, the same nonstop flight
    runs on both with the same duration, so 'fastest' needs one day or one-stop options."""
    rules = sorted(FLIGHT_RULES)
    if not onestop:
        rules.remove("fewest_stops")  # among nonstop flights only, it is just 'cheapest'
    if n_dates > 1 and not onestop:
        rules.remove("fastest")
    return ctx.rng.choice(rules)


def _dates(ctx: SampleContext, lo: int, hi: int, count: int) -> list[str] | None:
    if hi < lo or hi - lo + 1 < count:
        return None
    days = sorted(ctx.rng.sample(range(lo, hi + 1), count))
    return [_date(d) for d in days]


def _book_payment(
    ctx: SampleContext, user: Any, total: int
) -> tuple[list[dict[str, Any]], str, list[Selection]] | Reject:
    """How a booking is paid: one card, one gift card, or a certificate plus a card."""
    methods = list(user.payment_methods.values())
    tag = {m.id: type(m).__struct_config__.tag for m in methods}
    cards = [m for m in methods if tag[m.id] == "credit_card"]
    certs = [m for m in methods if tag[m.id] == "certificate"]
    plans = ["single"]
    if certs and cards:
        plans.append("certificate")
    if ctx.rng.choice(plans) == "single":
        picked = pick_payment(ctx, total)
        if isinstance(picked, Reject):
            return picked
        payment_id, words, selections = picked
        return [{"payment_id": payment_id, "amount": total}], f"Pay with {words}.", selections
    if len(certs) == 1:
        cert, selections = certs[0], []
        words = "your travel certificate"
    else:
        rows = [(c.id, c.amount, c) for c in certs]
        picked_cert = unique_best("payment: largest certificate", "value", "max", rows)
        if isinstance(picked_cert, Reject):
            return picked_cert
        cert, selection = picked_cert
        selections, words = [selection], "your largest travel certificate"
    amount = int(cert.amount)
    if amount != cert.amount or amount >= total:
        return Reject("book: certificate does not fit the fare")
    card = ctx.rng.choice(cards)
    payments = [
        {"payment_id": cert.id, "amount": amount},
        {"payment_id": card.id, "amount": total - amount},
    ]
    return payments, f"Use {words} first and pay the rest with {card_words(card)}.", selections


class _Trip(NamedTuple):
    """A booking's trip before any search: where from and to, which days, which rule picks flights."""

    origins: list[str]
    destination: str
    out_dates: list[str]
    n_return: int
    onestop: bool
    rule: str


def _travellers(user: Any, rng: Any) -> list[dict[str, str]]:
    """The user and up to two of their saved passengers, each once."""
    extra = rng.sample(user.saved_passengers, min(len(user.saved_passengers), rng.choice((0, 0, 1, 2))))
    me = {"first_name": user.name.first_name, "last_name": user.name.last_name, "dob": user.dob}
    passengers = [me] + [{"first_name": p.first_name, "last_name": p.last_name, "dob": p.dob} for p in extra]
    return [p for i, p in enumerate(passengers) if p not in passengers[:i]]


def _plan_trip(ctx: SampleContext) -> _Trip | Reject:
    """The shape of the searches (airports, days, stops, return days), chosen by their cost in reads
    against the E hint, then the airports and the outbound days."""
    rng = ctx.rng
    base_cost = 0 if f'get_user_details{{"user_id":"{ctx.user_id}"}}' in ctx.seen else 1
    shapes = [
        (base_cost + o * d * (1 + s) + (r * (1 + s) if r else 0), (o, d, s, r))
        for o in (1, 2)
        for d in (1, 2)
        for s in (0, 1)
        for r in (0, 1, 2)
    ]
    n_origins, n_dates, onestop, n_return = choose_by_cost(ctx, shapes, ctx.e_hint)
    rule = _rule(ctx, n_dates, bool(onestop))
    reach = reachable(ctx.base, bool(onestop))
    metro = [o for o in reach if o in METRO]
    origin = rng.choice(metro if n_origins == 2 and metro else list(reach))
    ends = [d for d in reach[origin] if not n_return or origin in reach.get(d, ())]
    if not ends:
        return Reject("book: no round trip from the airport")
    destination = rng.choice(ends)
    origins = [origin]
    if n_origins == 2:
        others = [o for o in reach if o != origin and METRO.get(o, o) == METRO.get(origin) and destination in reach[o]]
        if not others:
            return Reject("book: no second airport in the area")
        origins.append(rng.choice(others))
    out_dates = _dates(ctx, FIRST_DAY, LAST_DAY - (6 if n_return else 0), n_dates)
    if out_dates is None:
        return Reject("book: no dates")
    return _Trip(origins, destination, out_dates, n_return, bool(onestop), rule)


def _trip_words(trip: _Trip, cabin: str) -> str:
    """'Book a one-way trip from Boston (BOS) to Seattle (SEA) in economy.'"""
    origin, destination = trip.origins[0], trip.destination
    if len(trip.origins) > 1:
        airports = " or ".join(f"{CITY[o]} ({o})" for o in trip.origins)
        to = f"{CITY[destination]} ({destination})"
        text = f"from the {METRO[origin]} area ({airports}, whichever works) to {to}"
    else:
        text = f"from {CITY[origin]} ({origin}) to {CITY[destination]} ({destination})"
    return f"Book a {'round trip' if trip.n_return else 'one-way trip'} {text} in {cabin_words(cabin)}."


def _return_leg(
    ctx: SampleContext, trip: _Trip, outbound: Any, cabin: str, n: int
) -> tuple[Any, Selection, list[Any], list[str]] | Reject:
    """The return days (after the outbound lands), their search and its winner."""
    last = outbound.legs[-1]
    first = int(last.date[-2:]) + 1 + ("+1" in last.scheduled_arrival_time_est)
    back_dates = _dates(ctx, first, min(LAST_DAY, first + 5), trip.n_return)
    if back_dates is None:
        return Reject("book: no return dates")
    options, reads = search(ctx.state, [trip.destination], outbound.legs[0].origin, back_dates, trip.onestop)
    picked = pick_itinerary(trip.rule, options, cabin, n)
    if isinstance(picked, Reject):
        return Reject(f"book: {picked.reason}")
    back, selection = picked
    return back, selection, reads, back_dates


def sample_book(ctx: SampleContext) -> Intent | Reject:
    """Book a one-way or round trip chosen by a flight rule, with passengers, bags and payment."""
    state, rng = ctx.state, ctx.rng
    user = state.get("users", ctx.user_id)
    new_id = next_reservation_id(state)
    if new_id is None:
        return Reject("book: no reservation id left")
    cabin = rng.choice(CABINS)
    passengers = _travellers(user, rng)
    n = len(passengers)
    # 1) the trip: the shape of its searches (by cost in reads), its airports and outbound days
    trip = _plan_trip(ctx)
    if isinstance(trip, Reject):
        return trip
    # 2) the outbound search and its winner
    options, reads = search(state, trip.origins, trip.destination, trip.out_dates, trip.onestop)
    picked = pick_itinerary(trip.rule, options, cabin, n)
    if isinstance(picked, Reject):
        return Reject(f"book: {picked.reason}")
    outbound, selection = picked
    selections = [selection]
    flights = outbound.flights()
    wants = [_trip_words(trip, cabin), f"Outbound: {_flight_want(trip.rule, cabin, trip.onestop, trip.out_dates)}."]
    # 3) the return leg(s) of a round trip
    if trip.n_return:
        back = _return_leg(ctx, trip, outbound, cabin, n)
        if isinstance(back, Reject):
            return back
        itinerary, selection, back_reads, back_dates = back
        selections.append(selection)
        reads += back_reads
        flights += itinerary.flights()
        wants.append(f"Return: {_flight_want(trip.rule, cabin, trip.onestop, back_dates)}.")
    # 4) bags, insurance, price and payment
    bags = rng.randint(0, n + 2)
    nonfree = max(0, bags - free_bags(user.membership, cabin, n))
    insurance = rng.choice(("yes", "no"))
    fares = [segment_status(state, f["flight_number"], f["date"]).prices[cabin] for f in flights]
    total = reservation_price(fares, n, insurance, nonfree)
    paid = _book_payment(ctx, user, total)
    if isinstance(paid, Reject):
        return paid
    payments, pay_words, pay_selections = paid
    # 5) the intent
    reads = [_user_read(ctx, "membership, passengers and payment methods"), *reads]
    names = ", ".join(f"{p['first_name']} {p['last_name']} (born {p['dob']})" for p in passengers)
    action = act(
        "book_reservation",
        user_id=ctx.user_id,
        origin=outbound.legs[0].origin,
        destination=trip.destination,
        flight_type="round_trip" if trip.n_return else "one_way",
        cabin=cabin,
        flights=flights,
        passengers=passengers,
        payment_methods=payments,
        total_baggages=bags,
        nonfree_baggages=nonfree,
        insurance=insurance,
    )
    return Intent(
        kind="book",
        rule=trip.rule,
        rule_text=wants[1],
        actions=[action],
        reads=reads,
        facts=facts(
            known=[f"The travellers are: {names}.", f"You will check {bags} bag(s) in total."],
            wants=[
                *wants,
                f"You {'want' if insurance == 'yes' else 'do not want'} travel insurance.",
                pay_words,
                "You want to know the total price of the booking.",
            ],
            withhold=["Do not name flight numbers; let the agent compare the options."],
            if_fail=["If no flight fits your wish, do not book anything and end the call."],
        ),
        selections=selections + pay_selections,
        target=new_id,
        params={"passengers": n},
        outputs=[str(total)],
    )


def _all_available(state: Any, reservation: Any) -> bool:
    return all(status_kind(state, f.flight_number, f.date) is Available for f in reservation.flights)


def split_trip(reservation: Any) -> tuple[list[Any], list[Any]]:
    """The outbound segments (up to the destination) and the return segments."""
    for i, f in enumerate(reservation.flights):
        if f.destination == reservation.destination:
            return list(reservation.flights[: i + 1]), list(reservation.flights[i + 1 :])
    return list(reservation.flights), []


def sample_change_flights(ctx: SampleContext) -> Intent | Reject:
    """Move one direction of a reservation to the option a flight rule picks on other dates."""
    state, rng = ctx.state, ctx.rng

    def eligible(r: Any) -> bool:
        return upcoming(state, r) and r.cabin != "basic_economy" and _all_available(state, r)

    target = pick_reservation(ctx, eligible, "change_flights")
    if isinstance(target, Reject):
        return target
    reservation = target.reservation
    n = len(reservation.passengers)
    outbound, back = split_trip(reservation)
    change_back = bool(back) and rng.random() < 0.5
    part, keep = (back, outbound) if change_back else (outbound, back)
    if change_back:
        lo, hi = int(outbound[-1].date[-2:]) + 2, LAST_DAY
    else:
        lo, hi = FIRST_DAY, (int(back[0].date[-2:]) - 2) if back else LAST_DAY
    shapes = [(d * (1 + s), (d, s)) for d in (1, 2) for s in (0, 1)]
    fixed = ctx.new_reads([*target.reads, _user_read(ctx, "")])
    n_dates, onestop = choose_by_cost(ctx, shapes, ctx.e_hint - fixed)
    dates = _dates(ctx, lo, hi, n_dates)
    if dates is None:
        return Reject("change_flights: no dates")
    origin, destination = part[0].origin, part[-1].destination
    options, searches = search(state, [origin], destination, dates, bool(onestop))
    current = "+".join(f.flight_number for f in part) + " " + part[0].date
    rule = _rule(ctx, n_dates, bool(onestop))
    picked = pick_itinerary(rule, options, reservation.cabin, n, exclude=current)
    if isinstance(picked, Reject):
        return Reject(f"change_flights: {picked.reason}")
    chosen, selection = picked
    diff = (chosen.price(reservation.cabin) - sum(f.price for f in part)) * n
    paid = pick_payment(ctx, diff)
    if isinstance(paid, Reject):
        return Reject(f"change_flights: {paid.reason}")
    payment_id, pay_words, pay_selections = paid
    kept = [{"flight_number": f.flight_number, "date": f.date} for f in keep]
    flights = kept + chosen.flights() if change_back else chosen.flights() + kept
    direction = "return" if change_back else "outbound"
    want = (
        f"Move the {direction} flight(s) of {target.rule_text} to "
        f"{_flight_want(rule, reservation.cabin, bool(onestop), dates)}."
    )
    action = act(
        "update_reservation_flights",
        reservation_id=reservation.reservation_id,
        cabin=reservation.cabin,
        flights=flights,
        payment_id=payment_id,
    )
    return Intent(
        kind="change_flights",
        rule=f"{target.rule}+{rule}",
        rule_text=want,
        actions=[action],
        reads=[*target.reads, _user_read(ctx, "payment methods"), *searches],
        facts=facts(
            known=target.known,
            wants=[want, f"Pay or get refunded with {pay_words}.", *_ask_amount(diff)],
            withhold=["Do not name flight numbers; let the agent compare the options."],
            if_fail=["If the change is not possible, keep the reservation as it is."],
        ),
        selections=[*target.selections, selection, *pay_selections],
        target=reservation.reservation_id,
        params={"direction": direction},
        outputs=[str(abs(diff))] if diff else [],
    )


def sample_change_cabin(ctx: SampleContext) -> Intent | Reject:
    """Move a whole reservation to another cabin, paying or refunding the fare difference."""
    state, rng = ctx.state, ctx.rng

    def eligible(r: Any) -> bool:
        return upcoming(state, r) and _all_available(state, r)

    target = pick_reservation(ctx, eligible, "change_cabin")
    if isinstance(target, Reject):
        return target
    reservation = target.reservation
    n = len(reservation.passengers)
    cabin = rng.choice([c for c in CABINS if c != reservation.cabin])
    fare = 0
    for f in reservation.flights:
        status = segment_status(state, f.flight_number, f.date)
        if status.available_seats[cabin] < n:
            return Reject("change_cabin: not enough seats")
        fare += status.prices[cabin]
    diff = (fare - sum(f.price for f in reservation.flights)) * n
    paid = pick_payment(ctx, diff)
    if isinstance(paid, Reject):
        return Reject(f"change_cabin: {paid.reason}")
    payment_id, pay_words, pay_selections = paid
    flights = [{"flight_number": f.flight_number, "date": f.date} for f in reservation.flights]
    want = f"Move every flight of {target.rule_text} to {cabin_words(cabin)}."
    return Intent(
        kind="change_cabin",
        rule=target.rule,
        rule_text=want,
        actions=[
            act(
                "update_reservation_flights",
                reservation_id=reservation.reservation_id,
                cabin=cabin,
                flights=flights,
                payment_id=payment_id,
            )
        ],
        # no fare search: update_reservation_flights prices the new cabin itself
        reads=[*target.reads, _user_read(ctx, "payment methods")],
        facts=facts(
            known=target.known,
            wants=[want, f"Pay or get refunded with {pay_words}.", *_ask_amount(diff)],
            if_fail=["If the cabin cannot be changed, keep the reservation as it is."],
        ),
        selections=[*target.selections, *pay_selections],
        target=reservation.reservation_id,
        params={"cabin": cabin},
        outputs=[str(abs(diff))] if diff else [],
    )
