"""Property tests of the kernel: no call escapes as an exception, refused calls change nothing,
incremental hashes agree with full rehashes, and conversations never see each other's writes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs import BaseDB, State, get_domain
from tests.envs.calls import DOMAIN_CALLS, broken_call

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _step(draw: st.DrawFn, domain: str, state: State) -> tuple[str, object]:
    if draw(st.integers(0, 3)) == 0:
        return draw(broken_call(domain))
    return draw(DOMAIN_CALLS[domain](state))


def _full_rehash(state: State) -> int:
    """The hash of a fully materialized, independent copy, computed from nothing cached."""
    copy = BaseDB(state.materialize())
    return copy.base_sum()


@pytest.mark.parametrize("domain", ["airline", "retail"])
@SETTINGS
@given(data=st.data())
def test_random_calls_never_raise_and_refusals_change_nothing(
    domain: str, data: st.DataObject, tau2_bases: dict[str, BaseDB]
) -> None:
    dom = get_domain(domain)
    state = tau2_bases[domain].new_state()
    writes = 0
    for _ in range(data.draw(st.integers(5, 25))):
        name, args = _step(data.draw, domain, state)
        before_hash = state.hash()
        before = state.snapshot()
        result = dom.call(state, name, args, strict=True)  # tools may raise only ToolError
        assert isinstance(result.output, str)
        if result.error:
            assert result.output.startswith("Error: ")
            assert state.snapshot() == before
            assert state.hash() == before_hash
        elif dom.tool_kind(name).value == "write":
            writes += 1
    assert state.hash() == _full_rehash(state)


@pytest.mark.parametrize("domain", ["airline", "retail"])
@SETTINGS
@given(data=st.data())
def test_live_records_behave_as_packed_ones(domain: str, data: st.DataObject, tau2_bases: dict[str, BaseDB]) -> None:
    """Records stay live between calls until a hash, snapshot or pack: a state never packed gives
    the same outputs, hash and snapshot as a twin packed after every call (refusals included)."""
    dom = get_domain(domain)
    live = tau2_bases[domain].new_state()
    packed = tau2_bases[domain].new_state()
    for _ in range(data.draw(st.integers(5, 25))):
        name, args = _step(data.draw, domain, live)
        assert dom.call(live, name, args, strict=True) == dom.call(packed, name, args, strict=True)
        packed.pack()
        if data.draw(st.integers(0, 5)) == 0:
            assert live.snapshot() == packed.snapshot()  # packs ``live`` too
    assert live.snapshot() == packed.snapshot()
    assert live.hash() == packed.hash() == _full_rehash(live)


@pytest.mark.parametrize("domain", ["airline", "retail"])
@SETTINGS
@given(data=st.data())
def test_conversations_are_isolated(
    domain: str, data: st.DataObject, tau2_bases: dict[str, BaseDB]
) -> None:
    dom = get_domain(domain)
    base = tau2_bases[domain]
    base_hash = base.base_sum()
    a, b = base.new_state(), base.new_state()
    log_a: list[tuple[str, object]] = []
    outputs_a: list[str] = []
    for _ in range(data.draw(st.integers(4, 16))):
        who = data.draw(st.sampled_from("ab"))
        state = a if who == "a" else b
        call = _step(data.draw, domain, state)
        out = dom.call(state, *call).output
        if who == "a":
            log_a.append(call)
            outputs_a.append(out)
    alone = base.new_state()
    assert [dom.call(alone, *c).output for c in log_a] == outputs_a
    assert alone.hash() == a.hash()
    assert alone.snapshot() == a.snapshot()
    assert base.new_state().hash() == base_hash
    assert BaseDB(base.db).base_sum() == base_hash


def test_hash_is_independent_of_write_order(tau2_bases: dict[str, BaseDB]) -> None:
    dom = get_domain("retail")
    base = tau2_bases["retail"]
    pending = [k for k, o in base.tables["orders"].items() if o.status == "pending"][:2]
    address = {"address1": "1 Elm St", "address2": "", "city": "Austin", "state": "TX",
               "country": "USA", "zip": "73301"}  # fmt: skip
    calls = [("modify_pending_order_address", {"order_id": o, **address}) for o in pending]
    first, second = base.new_state(), base.new_state()
    for call in calls:
        assert not dom.call(first, *call).error
    for call in reversed(calls):
        assert not dom.call(second, *call).error
    assert first.hash() == second.hash() != base.base_sum()
    assert first.hash() == _full_rehash(first)


def test_snapshot_round_trip_restores_the_same_state(tau2_bases: dict[str, BaseDB]) -> None:
    dom = get_domain("airline")
    base = tau2_bases["airline"]
    state = base.new_state()
    rid = next(iter(base.tables["reservations"]))
    assert not dom.call(state, "cancel_reservation", {"reservation_id": rid}).error
    restored = State.restore(base, state.snapshot())
    assert restored.hash() == state.hash()
    args = {"reservation_id": rid}
    assert dom.call(restored, "get_reservation_details", args).output == dom.call(
        state, "get_reservation_details", args
    ).output
