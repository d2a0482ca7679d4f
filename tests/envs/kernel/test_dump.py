"""``tool_output`` writes exactly what ``json.dumps`` of the plain value writes (tau2-bench's text)."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from envs import BaseDB
from envs.kernel.dump import json_text, tool_output

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["a,b", "k: v", '"q"', "back\\slash", "caf\u00e9", "del\x7f", "1e5", "0.00001"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(value=_values)
def test_tool_output_matches_json_dumps_on_any_value(value: object) -> None:
    if isinstance(value, (str, bool, int, float)):
        return  # scalars are str()-ed, as tau2 does
    assert tool_output(value) == json.dumps(value)


_edge_floats = st.sampled_from(
    [0.0, -0.0, 1e-4, 1.2e-4, 9.9e-5, 1e-5, 1e-7, 2.0**53 - 1, 2.0**53, 9.99e15, 1e16, 1.5e300, 5e-324, 47.84]
)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(value=st.recursive(_scalars | _edge_floats, lambda inner: st.lists(inner, max_size=4), max_leaves=12))
def test_tool_output_given_the_msgpack_form_matches_json_dumps(value: object) -> None:
    """The float check done in the msgpack form (a changed record's, from the commit) is exact."""
    assert tool_output([value], msgspec.msgpack.encode([value])) == json.dumps([value])


def test_tool_output_matches_json_dumps_on_every_record(tau2_bases: dict[str, BaseDB]) -> None:
    fast = 0
    for base in tau2_bases.values():
        for table in base.table_names:
            records = list(base.tables[table].values())
            assert tool_output(records[:3]) == json.dumps(msgspec.to_builtins(records[:3]))
            for record in records:
                assert tool_output(record) == json.dumps(msgspec.to_builtins(record))
                fast += b"\\" not in msgspec.json.encode(record)
    assert fast > 1000  # the fast path, not only the fallback, was checked


@settings(max_examples=300, deadline=None, derandomize=True)
@given(value=_values)
def test_json_text_is_json_dumps_for_scalars_too(value: object) -> None:
    assert json_text(value) == json.dumps(value)
