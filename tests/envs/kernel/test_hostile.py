"""Nothing escapes the kernel (issue 9): random hostile calls through ``Domain.call``, plus one
focused test per failure the issue lists (huge integers, escaping exceptions, costly
``calculate``, a certificate paid twice).

The property test runs ~60 examples per domain (each a sequence of calls) and checks that every
category was drawn; ``bench/fuzz_kernel.py --examples N`` runs the same strategy at scale.
"""

from __future__ import annotations

import json
import time
import types
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs import BaseDB, Domain, State, get_domain
from envs.airline.schema import AirlineDB, Certificate
from envs.kernel import BoundCall, tool
from tests.envs.hostile import CATEGORIES, Outcome, draw_step, run_call

CPU_BOUND_S = 0.25
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _full_rehash(state: State) -> int:
    return BaseDB(state.materialize()).base_sum()


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_no_input_crosses_the_kernel_boundary(domain: str, tau2_bases: dict[str, BaseDB]) -> None:
    dom = get_domain(domain)
    drawn: Counter[str] = Counter()
    slowest: list[Outcome] = []

    @SETTINGS
    @given(data=st.data())
    def calls(data: st.DataObject) -> None:
        state = tau2_bases[domain].new_state()
        write_run = data.draw(st.booleans())
        for _ in range(data.draw(st.integers(4, 12))):
            outcome = run_call(dom, state, data.draw(draw_step(domain, state, write_run)))
            drawn[outcome.category] += 1
            assert outcome.escaped is None, outcome
            assert outcome.fault is None, outcome
            assert outcome.bad_result is None, outcome
            assert not outcome.changed_on_refusal, outcome
            assert outcome.cpu_s < CPU_BOUND_S, outcome
            slowest[:] = sorted([*slowest, outcome], key=lambda o: -o.cpu_s)[:1]
        assert state.hash() == _full_rehash(state)
        state.snapshot()  # still encodable after every write

    calls()
    assert sorted(drawn) == sorted(CATEGORIES), drawn


# -- item 1: huge integers ---------------------------------------------------------------------------
def test_huge_integer_is_refused_at_decode_and_state_stays_usable(tau2_bases: dict[str, BaseDB]) -> None:
    dom = get_domain("airline")
    base = tau2_bases["airline"]
    state = base.new_state()
    rid, reservation = next(iter(base.tables["reservations"].items()))
    pay = next(iter(base.tables["users"][reservation.user_id].payment_methods))
    args = {"reservation_id": rid, "total_baggages": 18446744073709551616, "nonfree_baggages": 0, "payment_id": pay}
    before = state.snapshot()
    for form in (args, json.dumps(args), json.dumps(args).encode()):
        result = dom.call(state, "update_reservation_baggages", form)
        assert result.output == (
            "Error: Integer out of range (the database holds 64-bit integers) - at `$.total_baggages`"
        )
        assert result.error and result.fault is None
    assert state.snapshot() == before and state.hash() == base.base_sum()
    ok = dom.call(state, "update_reservation_baggages", {**args, "total_baggages": 2})
    assert not ok.error and state.hash() == _full_rehash(state)


def test_in_range_integers_that_overflow_in_a_tool_are_refused_whole(tau2_bases: dict[str, BaseDB]) -> None:
    """Bags near 2**63 pass decoding; the fee (50 per bag) no longer fits: the commit refuses all."""
    dom = get_domain("airline")
    base = tau2_bases["airline"]
    state = base.new_state()
    rid, card = next(
        (r, k) for r, res in base.tables["reservations"].items()
        for k in base.tables["users"][res.user_id].payment_methods if k.startswith("credit_card")
    )  # fmt: skip
    args = {"reservation_id": rid, "total_baggages": 1, "nonfree_baggages": 2**63 - 1, "payment_id": card}
    result = dom.call(state, "update_reservation_baggages", args)
    assert (result.output, result.error) == ("Error: Integer out of range (the database holds 64-bit integers)", True)
    assert result.fault is None
    assert state.snapshot() == base.new_state().snapshot() and state.hash() == base.base_sum()


def test_commit_never_half_applies(tau2_bases: dict[str, BaseDB]) -> None:
    """A call writing two records, the second of which cannot be stored, keeps neither."""
    base = tau2_bases["airline"]
    state = base.new_state()
    first, second = list(base.tables["reservations"])[:2]
    state.begin()
    state.mut("reservations", first).total_baggages = 3
    state.mut("reservations", second).total_baggages = 2**64
    with pytest.raises(ValueError, match=r"^Integer out of range \(the database holds 64-bit integers\)$"):
        state.commit()
    assert state.changed() == {} and state.hash() == base.base_sum()
    assert state.snapshot() == base.new_state().snapshot()


# -- item 2: other exceptions escaping Domain.call ---------------------------------------------------
@pytest.mark.parametrize(
    ("name", "arguments", "output"),
    [
        ("get_user_details", {"user_id": "\ud800"},
         "Error: String is not valid Unicode (a lone surrogate) - at `$.user_id`"),
        ("get_user_details", '{"user_id": "\ud800"}',
         "Error: tool arguments are not valid Unicode text (a lone surrogate)"),
        ("get_user_details", {"\ud800": 1}, "Error: String is not valid Unicode (a lone surrogate)"),
        ("get_user_details", '{"user_id": "x", "deep": ' + "[" * 1000 + "]" * 1000 + "}",
         "Error: tool arguments are nested too deeply (more than 64 levels)"),
        ("get_user_details", b"[" * 3000 + b"]" * 3000,
         "Error: tool arguments are nested too deeply (more than 64 levels)"),
        ("get_user_details", None, "Error: tool arguments must be a JSON object, got NoneType"),
        ("get_user_details", 7, "Error: tool arguments must be a JSON object, got int"),
        ("get_user_details", {1: "x"}, "Error: AirlineTools.get_user_details() keywords must be strings"),
        ("no\ud800pe", {}, "Error: Tool 'no\\ud800pe' not found."),
        (None, {}, "Error: Tool 'NoneType' not found."),
    ],
)  # fmt: skip
def test_hostile_arguments_are_refused_not_raised(name: object, arguments: object, output: str) -> None:
    dom = get_domain("airline")
    state = dom.from_struct(AirlineDB(flights={}, users={}, reservations={})).new_state()
    result = dom.call(state, name, arguments)  # type: ignore[arg-type]
    assert (result.output, result.error) == (output, True)
    assert result.fault is None
    assert dom.bind(name, arguments).text == output.removeprefix("Error: ")  # type: ignore[arg-type]


@tool("write")
def _buggy_write(state: State, reservation_id: str) -> str:
    """A tool with a bug: it writes, then fails with something other than a refusal.

    Args:
        reservation_id: A reservation id.
    """
    state.mut("reservations", reservation_id).total_baggages = 9
    return str(1 // 0)


def test_a_tool_bug_is_a_fault_and_is_rolled_back(tau2_bases: dict[str, BaseDB]) -> None:
    airline = get_domain("airline")
    dom = Domain("buggy", "BuggyTools", airline.db_type, [_buggy_write], airline.policy_path)
    base = dom.from_struct(tau2_bases["airline"].db)
    state = base.new_state()
    rid = next(iter(base.tables["reservations"]))
    result = dom.call(state, "_buggy_write", {"reservation_id": rid})
    assert (result.output, result.error, result.fault) == (
        "Error: integer division or modulo by zero", True, "ZeroDivisionError: integer division or modulo by zero"
    )
    assert state.changed() == {} and state.hash() == base.base_sum()
    with pytest.raises(ZeroDivisionError):
        dom.call(state, "_buggy_write", {"reservation_id": rid}, strict=True)


def test_a_mapping_that_is_not_a_dict_works_like_a_dict(tau2_bases: dict[str, BaseDB]) -> None:
    dom = get_domain("airline")
    state = tau2_bases["airline"].new_state()
    user_id = next(iter(tau2_bases["airline"].tables["users"]))
    plain = dom.call(state, "get_user_details", {"user_id": user_id})
    proxy = dom.call(state, "get_user_details", types.MappingProxyType({"user_id": user_id}))
    assert not plain.error and proxy == plain
    assert isinstance(dom.bind("get_user_details", types.MappingProxyType({"user_id": user_id})), BoundCall)


# -- item 3: calculate is bounded ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "output"),
    [
        ("((9**999)**999)**30", "Error: Result too large"),
        ("(9**999)**999", "Error: Result too large"),
        ("*".join(["9**999"] * 6), "Error: Result too large"),
        ("2**1001", "Error: Exponent too large"),
        ("-" * 999 + "1", "Error: Expression too complex"),
        ("1+" * 499 + "1", "Error: Expression too complex"),
        ("1" * 1001, "Error: Expression too long"),
        ("1+" * 150 + "1", "151.0"),
        ("10**400 / 10**399", "10.0"),
        ("10**400", "Error: int too large to convert to float"),
    ],
)
def test_calculate_bounds_the_work_of_any_expression(expression: str, output: str) -> None:
    dom = get_domain("retail")
    state = dom.from_struct(dom.db_type(users={}, orders={}, products={})).new_state()
    started = time.process_time()
    result = dom.call(state, "calculate", {"expression": expression})
    assert time.process_time() - started < 0.05
    assert (result.output, result.fault) == (output, None)


# -- item 9: one certificate used twice in one booking -----------------------------------------------
def test_paying_twice_with_one_certificate_is_refused_whole(tau2_bases: dict[str, BaseDB]) -> None:
    dom = get_domain("airline")
    base = tau2_bases["airline"]
    state = base.new_state()
    user_id, user = next(
        (k, u) for k, u in base.tables["users"].items()
        if any(isinstance(m, Certificate) and m.amount >= 200 for m in u.payment_methods.values())
        and any(k.startswith("gift_card") for k in u.payment_methods)
    )  # fmt: skip
    cert = next(k for k, m in user.payment_methods.items() if isinstance(m, Certificate) and m.amount >= 200)
    gift = next(k for k in user.payment_methods if k.startswith("gift_card"))
    number, flight, date, status = next(
        (n, f, d, s) for n, f in base.tables["flights"].items() for d, s in f.dates.items()
        if getattr(s, "prices", {}).get("basic_economy", 999) <= 180
    )  # fmt: skip
    price = status.prices["basic_economy"]
    half = price // 2
    payments = [{"payment_id": gift, "amount": 0}, {"payment_id": cert, "amount": half},
                {"payment_id": cert, "amount": price - half}]  # fmt: skip
    args = {
        "user_id": user_id, "origin": flight.origin, "destination": flight.destination, "flight_type": "one_way",
        "cabin": "basic_economy", "flights": [{"flight_number": number, "date": date}],
        "passengers": [{"first_name": "Ann", "last_name": "Lee", "dob": "1990-01-01"}],
        "payment_methods": payments, "total_baggages": 0, "nonfree_baggages": 0, "insurance": "no",
    }  # fmt: skip
    result = dom.call(state, "book_reservation", args)
    assert (result.output, result.error) == (f"Error: '{cert}'", True)
    assert result.fault is None
    assert state.hash() == base.base_sum() and state.snapshot() == base.new_state().snapshot()
    once = dom.call(state, "book_reservation", {**args, "payment_methods": [{"payment_id": cert, "amount": price}]})
    assert not once.error and cert not in state.get("users", user_id).payment_methods
