"""Tests for the airline recipes and policy: one rejected blueprint per policy rule, and properties of
generated tasks (replay to the goal hash, E = distinct reads, tie-free rules recomputed from the
reads' own outputs, every write tool covered) on tau2-bench's DB and on a generated DB."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from engine.tasks.domains.airline.policy import CANCEL_WINDOW_START, has_status, is_flown, status_kind
from engine.tasks.model import Action, Blueprint, Intent, Task, UserFacts
from engine.tasks.recipe import Reject, get_spec
from engine.tasks.refusals import forbidden_action
from engine.tasks.synthesis import synthesize
from engine.tasks.validate import check_selection, validate
from envs import BaseDB, ToolKind, get_domain
from envs.airline.schema import Available, Cancelled, Certificate, CreditCard, Delayed, GiftCard, Landed
from tests.conftest import need_optional

SPEC = get_spec("airline")
NOW_DAY = "2024-05-20"


# -- finders over tau2's airline DB ----------------------------------------------------------------
def _reservation(base: BaseDB, pred: Callable[[Any, Any], bool]) -> Any:
    state = base.new_state()
    for r in base.tables["reservations"].values():
        if pred(state, r):
            return r
    raise LookupError("no reservation matches")


def _user_with(base: BaseDB, pred: Callable[[Any], bool]) -> Any:
    return next(u for u in base.tables["users"].values() if pred(u))


def _methods(user: Any, kind: type) -> list[str]:
    return [m.id for m in user.payment_methods.values() if isinstance(m, kind)]


def _bp(user_id: str, *intents: tuple[str, list[Action], dict[str, Any]]) -> Blueprint:
    return Blueprint(
        domain="airline",
        user_id=user_id,
        intents=[
            Intent(kind=k, rule="given", rule_text="", actions=a, reads=[], facts=UserFacts(), params=p)
            for k, a, p in intents
        ],
    )


def _one(owner: str, name: str, params: dict[str, Any] | None = None, /, **args: Any) -> Blueprint:
    return _bp(owner, ("x", [Action(name=name, arguments=args)], params or {}))


def _flights(r: Any) -> list[dict[str, str]]:
    return [{"flight_number": f.flight_number, "date": f.date} for f in r.flights]


def _plain(r: Any) -> bool:
    """Economy, booked before the 24 h window, no insurance, no cancelled flight."""
    return r.cabin == "economy" and r.created_at < CANCEL_WINDOW_START and r.insurance == "no"


def _unflown(s: Any, r: Any) -> bool:
    return all(status_kind(s, f.flight_number, f.date) is Available for f in r.flights)


# -- booking ---------------------------------------------------------------------------------------
def _booking(base: BaseDB, **change: Any) -> Blueprint:
    user = _user_with(base, lambda u: len(_methods(u, Certificate)) >= 2 and len(_methods(u, CreditCard)) >= 2)
    flight = next(f for f in base.tables["flights"].values() if isinstance(f.dates.get(NOW_DAY), Available))
    price = flight.dates[NOW_DAY].prices["economy"]
    args = {
        "user_id": user.user_id,
        "origin": flight.origin,
        "destination": flight.destination,
        "flight_type": "one_way",
        "cabin": "economy",
        "flights": [{"flight_number": flight.flight_number, "date": NOW_DAY}],
        "passengers": [{"first_name": user.name.first_name, "last_name": user.name.last_name, "dob": user.dob}],
        "payment_methods": [{"payment_id": _methods(user, CreditCard)[0], "amount": price}],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    for key, value in change.items():
        args[key] = value(args, user) if callable(value) else value
    return _one(user.user_id, "book_reservation", **args)


def _gift_user_booking(base: BaseDB) -> Blueprint:
    good = _booking(base)
    user = _user_with(base, lambda u: len(_methods(u, GiftCard)) >= 4)
    args = dict(good.intents[0].actions[0].arguments, user_id=user.user_id)
    args["payment_methods"] = [{"payment_id": g, "amount": 1} for g in _methods(user, GiftCard)[:4]]
    return _one(user.user_id, "book_reservation", **args)


# -- each policy rule with a blueprint that breaks it ------------------------------------------------
def _case_cancel_twice(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: r.cabin == "business" and _unflown(s, r))
    cancel = Action(name="cancel_reservation", arguments={"reservation_id": r.reservation_id})
    reason = {"reason": "change of plan"}
    return _bp(r.user_id, ("cancel", [cancel], reason), ("cancel", [cancel], reason))


def _case_cancel_flown(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: r.cabin == "business" and is_flown(s, r))
    return _one(r.user_id, "cancel_reservation", {"reason": "change of plan"}, reservation_id=r.reservation_id)


def _case_cancel_not_allowed(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: _plain(r) and _unflown(s, r))
    return _one(r.user_id, "cancel_reservation", {"reason": "health"}, reservation_id=r.reservation_id)


def _change(r: Any, flights: list[dict[str, str]], cabin: str | None = None, pay: str = "") -> Blueprint:
    return _one(
        r.user_id,
        "update_reservation_flights",
        reservation_id=r.reservation_id,
        cabin=cabin or r.cabin,
        flights=flights,
        payment_id=pay or "credit_card_0",
    )


def _later(flights: list[dict[str, str]], i: int) -> list[dict[str, str]]:
    out = [dict(f) for f in flights]
    out[i]["date"] = "2024-05-29"
    return out


def _case_basic_economy(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: r.cabin == "basic_economy" and _unflown(s, r))
    return _change(r, _later(_flights(r), 0))


def _case_trip_shape(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: r.cabin == "economy" and r.flight_type == "one_way" and _unflown(s, r))
    other = next(f for f in base.tables["flights"].values() if f.destination != r.destination and f.origin == r.origin)
    return _change(r, [{"flight_number": other.flight_number, "date": "2024-05-29"}])


def _case_change_flown(base: BaseDB) -> Blueprint:
    def pred(s: Any, r: Any) -> bool:
        first = status_kind(s, r.flights[0].flight_number, r.flights[0].date)
        return r.cabin == "economy" and first is Landed

    r = _reservation(base, pred)
    return _change(r, _later(_flights(r), 0))


def _case_cabin_flown(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: r.cabin == "economy" and is_flown(s, r))
    return _change(r, _flights(r), cabin="business")


def _case_certificate_pays_change(base: BaseDB) -> Blueprint:
    def pred(s: Any, r: Any) -> bool:
        user = base.tables["users"][r.user_id]
        return r.cabin == "economy" and _unflown(s, r) and bool(_methods(user, Certificate))

    r = _reservation(base, pred)
    cert = _methods(base.tables["users"][r.user_id], Certificate)[0]
    return _change(r, _flights(r), cabin="business", pay=cert)


def _bags(base: BaseDB, r: Any, total: int, nonfree: int) -> Blueprint:
    card = _methods(base.tables["users"][r.user_id], CreditCard)[0]
    return _one(
        r.user_id,
        "update_reservation_baggages",
        reservation_id=r.reservation_id,
        total_baggages=total,
        nonfree_baggages=nonfree,
        payment_id=card,
    )


def _bag_reservation(base: BaseDB) -> Any:
    def pred(s: Any, r: Any) -> bool:
        user = base.tables["users"][r.user_id]
        return r.total_baggages >= 1 and bool(_methods(user, CreditCard))

    return _reservation(base, pred)


def _case_fewer_bags(base: BaseDB) -> Blueprint:
    r = _bag_reservation(base)
    return _bags(base, r, r.total_baggages - 1, r.nonfree_baggages)


def _case_bag_fee(base: BaseDB) -> Blueprint:
    r = _bag_reservation(base)
    return _bags(base, r, r.total_baggages + 9, r.nonfree_baggages)


def _case_passenger_count(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: len(r.passengers) >= 2)
    first = r.passengers[0]
    one = [{"first_name": first.first_name, "last_name": first.last_name, "dob": first.dob}]
    return _one(r.user_id, "update_reservation_passengers", reservation_id=r.reservation_id, passengers=one)


def _certificate(r: Any, amount: int, complaint: str | None, flight: Any = None, user: str = "") -> Blueprint:
    params: dict[str, Any] = {}
    if complaint is not None:
        f = flight or r.flights[0]
        params = {
            "reservation_id": r.reservation_id,
            "complaint": complaint,
            "flight_number": f.flight_number,
            "date": f.date,
        }
    return _one(r.user_id, "send_certificate", params, user_id=user or r.user_id, amount=amount)


def _cancelled_flight(s: Any, r: Any) -> Any:
    return next(f for f in r.flights if status_kind(s, f.flight_number, f.date) is Cancelled)


def _compensable(base: BaseDB, kind: type) -> tuple[Any, Any]:
    def pred(s: Any, r: Any) -> bool:
        user = base.tables["users"][r.user_id]
        return has_status(s, r, kind) and user.membership == "gold"

    r = _reservation(base, pred)
    s = base.new_state()
    flight = next(f for f in r.flights if status_kind(s, f.flight_number, f.date) is kind)
    return r, flight


def _case_no_complaint(base: BaseDB) -> Blueprint:
    r, _ = _compensable(base, Cancelled)
    return _certificate(r, 100 * len(r.passengers), None)


def _case_not_compensable(base: BaseDB) -> Blueprint:
    def pred(s: Any, r: Any) -> bool:
        user = base.tables["users"][r.user_id]
        return (
            has_status(s, r, Cancelled)
            and user.membership == "regular"
            and r.insurance == "no"
            and r.cabin != "business"
        )

    r = _reservation(base, pred)
    return _certificate(r, 100 * len(r.passengers), "cancelled", _cancelled_flight(base.new_state(), r))


def _case_flight_not_cancelled(base: BaseDB) -> Blueprint:
    r = _reservation(base, lambda s, r: base.tables["users"][r.user_id].membership == "gold" and _unflown(s, r))
    return _certificate(r, 100 * len(r.passengers), "cancelled")


def _case_flight_not_delayed(base: BaseDB) -> Blueprint:
    r, flight = _compensable(base, Cancelled)
    return _certificate(r, 50 * len(r.passengers), "delayed", flight)


def _case_delay_first(base: BaseDB) -> Blueprint:
    r, flight = _compensable(base, Delayed)
    return _certificate(r, 50 * len(r.passengers), "delayed", flight)


def _case_wrong_amount(base: BaseDB) -> Blueprint:
    r, flight = _compensable(base, Cancelled)
    return _certificate(r, 100 * len(r.passengers) + 50, "cancelled", flight)


def _case_other_user(base: BaseDB) -> Blueprint:
    r, flight = _compensable(base, Cancelled)
    other = next(u for u in base.tables["users"] if u != r.user_id)
    return _certificate(r, 100 * len(r.passengers), "cancelled", flight, user=other)


def _with(key: str, value: Any) -> Callable[[BaseDB], Blueprint]:
    return lambda base: _booking(base, **{key: value})


CASES: list[tuple[str, Callable[[BaseDB], Blueprint]]] = [
    ("policy: more than five passengers", _with("passengers", lambda a, u: a["passengers"] * 6)),
    ("policy: payment method not in profile", _with("payment_methods", [{"payment_id": "gift_card_0", "amount": 1}])),
    (
        "policy: more than one certificate",
        _with("payment_methods", lambda a, u: [{"payment_id": c, "amount": 1} for c in _methods(u, Certificate)[:2]]),
    ),
    (
        "policy: more than one credit card",
        _with("payment_methods", lambda a, u: [{"payment_id": c, "amount": 1} for c in _methods(u, CreditCard)[:2]]),
    ),
    ("policy: more than three gift cards", _gift_user_booking),
    ("policy: itinerary does not match the trip", _with("destination", "XXX")),
    ("policy: wrong number of paid bags", _with("total_baggages", 9)),
    ("policy: reservation already cancelled", _case_cancel_twice),
    ("policy: a flight was already flown", _case_cancel_flown),
    ("policy: cancellation not allowed", _case_cancel_not_allowed),
    ("policy: basic economy flights cannot be modified", _case_basic_economy),
    ("policy: change must keep origin, destination and trip type", _case_trip_shape),
    ("policy: a flown flight cannot be changed", _case_change_flown),
    ("policy: cabin change after a flight was flown", _case_cabin_flown),
    ("policy: payment must be a gift card or credit card in the profile", _case_certificate_pays_change),
    ("policy: checked bags can only be added", _case_fewer_bags),
    ("policy: wrong number of paid bags", _case_bag_fee),
    ("policy: number of passengers cannot change", _case_passenger_count),
    ("policy: compensation without a complaint about a reservation", _case_no_complaint),
    ("policy: compensation not allowed for this member", _case_not_compensable),
    ("policy: no cancelled flight in the reservation", _case_flight_not_cancelled),
    ("policy: no delayed flight in the reservation", _case_flight_not_delayed),
    ("policy: delay compensation before changing or cancelling", _case_delay_first),
    ("policy: wrong compensation amount", _case_wrong_amount),
    ("policy: compensation to another user", _case_other_user),
]


@pytest.mark.parametrize(("reason", "build"), CASES, ids=[f"{i}-{c[0][8:]}" for i, c in enumerate(CASES)])
def test_policy_violation_is_rejected_with_its_reason(
    tau2_bases: dict[str, BaseDB], reason: str, build: Callable[[BaseDB], Blueprint]
) -> None:
    base = tau2_bases["airline"]
    assert validate(SPEC, base, build(base)) == Reject(reason)


def test_valid_booking_passes_policy(tau2_bases: dict[str, BaseDB]) -> None:
    base = tau2_bases["airline"]
    assert isinstance(validate(SPEC, base, _booking(base)), str)


# -- generated tasks ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tau2_tasks(tau2_bases: dict[str, BaseDB]) -> list[Task]:
    tasks, report = synthesize("airline", tau2_bases["airline"], 400, 21)
    assert report.accepted == 400
    return tasks


def _check_tasks(base: BaseDB, tasks: list[Task]) -> None:
    domain = get_domain("airline")
    keys = set()
    for task in tasks:
        # replay: every gold write succeeds on a fresh state and lands on the goal hash
        state = base.new_state()
        for action in task.actions:
            assert domain.tool_kind(action.name) is ToolKind.WRITE
            assert not domain.call(state, action.name, action.arguments).error, task.task_id
        assert state.hash_hex() == task.goal_hash
        # W and E
        distinct = {r.key() for i in task.intents for r in i.reads}
        assert task.e == len(task.evidence) == len(distinct) >= 1
        assert task.w == len(task.actions) == sum(len(i.actions) for i in task.intents)
        assert all(domain.tool_kind(r.name) is ToolKind.READ for r in task.evidence)
        # rules are tie-free
        for intent in task.intents:
            for selection in intent.selections:
                assert check_selection(selection) is None
        # a refusal task (no gold write) is told apart by the write its customer asks for
        keys.add(json.dumps([a.key() for a in task.actions] or [forbidden_action(i).key() for i in task.intents]))
    assert len(keys) == len(tasks), "two tasks share their gold actions"


def test_tasks_replay_and_count_on_tau2_db(tau2_bases: dict[str, BaseDB], tau2_tasks: list[Task]) -> None:
    _check_tasks(tau2_bases["airline"], tau2_tasks)


def test_every_write_tool_and_recipe_is_used(tau2_tasks: list[Task]) -> None:
    writes = {t.name for t in get_domain("airline").tools.values() if t.kind is ToolKind.WRITE}
    used = {a.name for t in tau2_tasks for a in t.actions}
    assert used == writes
    kinds = Counter(i.kind for t in tau2_tasks for i in t.intents)
    assert {"book", "cancel", "change_flights", "change_cabin", "add_bags", "update_passengers", "compensation"} <= set(
        kinds
    )
    assert any(i.depends_on for t in tau2_tasks for i in t.intents)
    cabin_changes = [a for t in tau2_tasks for i in t.intents if i.kind == "change_cabin" for a in i.actions]
    assert cabin_changes
    assert {t.w for t in tau2_tasks} == {0, 1, 2, 3, 4}  # 0: refusal tasks
    assert {t.e for t in tau2_tasks} >= set(range(1, 13))


def _minutes(time: str) -> int:
    return int(time[:2]) * 60 + int(time[3:5]) + (1440 if time.endswith("+1") else 0)


def _option_value(rule: str, legs: list[dict[str, Any]], cabin: str) -> Any:
    """The rule's value of one option, computed from the search tools' JSON output."""
    price = sum(leg["prices"][cabin] for leg in legs)
    day = lambda leg: int(leg["date"][-2:]) * 1440  # noqa: E731
    depart = day(legs[0]) + _minutes(legs[0]["scheduled_departure_time_est"])
    arrive = day(legs[-1]) + _minutes(legs[-1]["scheduled_arrival_time_est"])
    return {
        "cheapest": price,
        "fastest": arrive - depart,
        "earliest": depart,
        "latest": -depart,
        "fewest_stops": (len(legs), price),
        "earliest_arrival": arrive,
    }[rule]


def test_flight_rules_recomputed_from_read_outputs(tau2_bases: dict[str, BaseDB], tau2_tasks: list[Task]) -> None:
    """The winner of every flight rule is the unique best option in the search reads' own output."""
    base = tau2_bases["airline"]
    domain = get_domain("airline")
    checked = 0
    for task in tau2_tasks:
        state = base.new_state()
        for intent in task.intents:
            if intent.kind == "book":
                action = intent.actions[0].arguments
                rule, cabin, n = intent.rule, action["cabin"], len(action["passengers"])
                chosen = action["flights"]
                searches = [r for r in intent.reads if r.name.startswith("search_")]
                # outbound searches end at the trip's destination, return searches at its origin
                for end in (action["destination"], action["origin"]):
                    group = [r for r in searches if r.arguments["destination"] == end]
                    if not group:
                        continue
                    options = []
                    for r in group:
                        out = json.loads(domain.call(state, r.name, r.arguments).output)
                        for item in out:
                            legs = item if isinstance(item, list) else [dict(item, date=r.arguments["date"])]
                            if min(leg["available_seats"][cabin] for leg in legs) >= n:
                                options.append(legs)
                    values = [_option_value(rule, legs, cabin) for legs in options]
                    best = min(values)
                    winners = [o for o, v in zip(options, values, strict=True) if v == best]
                    assert len(winners) == 1, task.task_id
                    picked = [{"flight_number": leg["flight_number"], "date": leg["date"]} for leg in winners[0]]
                    assert picked == [f for f in chosen if f in picked] and picked[0] in chosen
                    checked += 1
            for action in intent.actions:
                domain.call(state, action.name, action.arguments)
    assert checked >= 50


def test_thousand_tasks_spread_without_duplicates(tau2_bases: dict[str, BaseDB]) -> None:
    tasks, _ = synthesize("airline", tau2_bases["airline"], 1000, 3)
    assert len(tasks) == 1000
    cells = Counter((t.w, t.e) for t in tasks)
    assert {w for w, _ in cells} == {0, 1, 2, 3, 4}  # 0: refusal tasks
    assert {e for _, e in cells} == set(range(1, 13))
    keys = {json.dumps([a.key() for a in t.actions] or [forbidden_action(i).key() for i in t.intents]) for t in tasks}
    assert len(keys) == 1000


def test_tasks_on_a_generated_db() -> None:
    dom = get_domain("airline")
    try:
        db = dom.generate_db(users=150, seed=4)
    except (NotImplementedError, ImportError):
        need_optional("the airline DB generator")
    base = dom.from_struct(db)
    tasks, report = synthesize("airline", base, 80, 2)
    assert report.accepted == 80
    _check_tasks(base, tasks)
    assert {a.name for t in tasks for a in t.actions} >= {
        "book_reservation",
        "cancel_reservation",
        "update_reservation_flights",
        "update_reservation_baggages",
        "update_reservation_passengers",
    }
