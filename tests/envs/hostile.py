"""Hostile tool calls for fuzzing the kernel's error boundary, and the checks made on each call.

``hostile_call`` draws one call of a named category (valid calls with real ids, writes, hostile
leaf values, extra or missing keys, non-object arguments, deep nesting, non-dict mappings, bad
tool names, costly ``calculate`` expressions); ``run_call`` makes it through ``Domain.call`` and
reports what happened. Used by tests/envs/kernel/test_hostile.py and bench/fuzz_kernel.py.
"""

from __future__ import annotations

import gc
import json
import math
import time
import types
from collections import ChainMap, OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from envs import DOMAINS, Domain, State, get_domain
from tests.envs.calls import DOMAIN_CALLS, JUNK

__all__ = ["CATEGORIES", "Call", "Outcome", "draw_step", "run_call"]

CATEGORIES = (
    "valid",
    "write",
    "hostile_leaf",
    "extra_keys",
    "missing_keys",
    "non_object",
    "deep",
    "mapping",
    "bad_name",
    "expression",
)

SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff", "\ud83d")
HUGE_INTS = st.one_of(
    st.sampled_from([2**63, 2**64, 18446744073709551616, -(2**63) - 1, 10**30, -(10**40)]),
    st.integers(2**63, 2**256),
    st.integers(-(2**256), -(2**63) - 1),
)
EDGE_INTS = st.sampled_from([2**63 - 1, -(2**63), 2**62, -(2**62), 2**53 + 1, -1, 0])
SURROGATE_TEXT = st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=4), st.sampled_from(SURROGATES), st.text(max_size=4)
)
HOSTILE_LEAF = st.one_of(
    HUGE_INTS,
    EDGE_INTS,
    st.integers(-(10**12), -1),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.floats(),
    SURROGATE_TEXT,
    st.text(max_size=40),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@dataclass(frozen=True)
class Call:
    """One call to make: its category, tool name and arguments, as ``Domain.call`` takes them."""

    category: str
    name: Any
    arguments: Any


@dataclass(frozen=True)
class Outcome:
    """What one call did. ``escaped`` and ``fault`` name an exception; both should stay None."""

    category: str
    name: str
    cpu_s: float
    error: bool
    escaped: str | None = None
    fault: str | None = None
    changed_on_refusal: bool = False
    bad_result: str | None = None


class _Mapping(Mapping[str, Any]):
    """A read-only mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _BrokenMapping(_Mapping):
    """A mapping that fails when read."""

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("this mapping cannot be iterated")


def _copy(arguments: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(arguments))


def _leaves(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) slot holding a leaf (non-container) value, in a fixed order."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, (dict, list)) and item:
            _leaves(item, out)
        else:
            out.append((value, key))
    return out


def _encode(draw: st.DrawFn, arguments: Any) -> Any:
    """The arguments as a Python object, JSON bytes, or JSON text (raw surrogates kept in text)."""
    form = draw(st.sampled_from(["object", "bytes", "text"]))
    if form == "object":
        return arguments
    try:
        if form == "bytes":
            return json.dumps(arguments).encode()
        return json.dumps(arguments, ensure_ascii=False)
    except (TypeError, ValueError):  # keys json cannot write
        return arguments


def _nested(depth: int, kind: str, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def _nested_text(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


_TEMPLATES = [
    "((9**999)**999)**30", "(9**999)**999", "10**400 / 10**399", "2(3)", "(1/0)(2)", "()", "...",
    "2(*())", "(-8) ** 0.5", "1 / 0", "7 // 0", " 1 + 1", "-" * 999 + "1", "9" * 999,
]  # fmt: skip


def _expression(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["random", "powers", "chain", "product", "parens", "templates"]))
    if shape == "random":
        return draw(st.text(alphabet="0123456789+-*/(). ", max_size=draw(st.sampled_from([20, 200, 1200]))))
    if shape == "powers":
        expr = str(draw(st.integers(2, 10**6)))
        for _ in range(draw(st.integers(1, 6))):
            expr = f"({expr})**{draw(st.integers(0, 1000))}"
        return expr
    if shape == "chain":
        op = draw(st.sampled_from(["+", "-", "*", "/", "**", "//"]))
        return op.join(str(draw(st.integers(1, 99))) for _ in range(draw(st.integers(2, 400))))
    if shape == "product":
        digits = draw(st.integers(1, 990))
        return "*".join(["9" * digits] * draw(st.integers(1, 40)))
    if shape == "parens":
        depth = draw(st.integers(1, 400))
        return draw(st.sampled_from(["(", "-(", "2**(", "+"])) * depth + "2" + ")" * depth
    return draw(st.sampled_from(_TEMPLATES))


def _valid(draw: st.DrawFn, domain: str, state: State, writes: bool = False) -> tuple[str, dict[str, Any]]:
    dom = get_domain(domain)
    names = sorted(n for n, t in dom.tools.items() if t.mutates) if writes else None
    return draw(DOMAIN_CALLS[domain](state, names))


@st.composite
def draw_step(draw: st.DrawFn, domain: str, state: State, write_run: bool = False) -> Call:
    """One call of a drawn category for ``domain``, built from the live ``state``; in a
    ``write_run`` two steps in three are valid writes (sequences of writes on one state)."""
    if write_run and draw(st.integers(0, 2)):
        category = "write"
    else:
        category = draw(st.sampled_from(CATEGORIES))
    dom = get_domain(domain)
    if category == "bad_name":
        other = [n for d in DOMAINS if d != domain for n in get_domain(d).tools if n not in dom.tools]
        name = draw(
            st.one_of(
                st.text(max_size=20).filter(lambda n: n not in dom.tools),
                st.sampled_from(other),
                st.sampled_from([n.upper() for n in dom.tools]),
                SURROGATE_TEXT,
                st.none(),
                st.integers(),
                st.binary(max_size=8),
                st.just(""),
            )
        )
        return Call(category, name, draw(st.one_of(st.just({}), st.dictionaries(st.text(max_size=4), JUNK))))
    if category == "expression":
        return Call(category, "calculate", _encode(draw, {"expression": _expression(draw)}))
    if category == "non_object":
        arguments = draw(
            st.one_of(
                st.none(),
                st.integers(),
                st.floats(),
                st.lists(JUNK, max_size=3),
                st.tuples(st.integers()),
                st.sampled_from([b"null", b"[1, 2]", b'"x"', b"3", b"", b"\xff\xfe", b"{", "[]", "nan", "{}}",
                                 bytearray(b"[]"), memoryview(b"1"), {1, 2}, object(), 1j]),
                st.text(max_size=20).map(str.encode),
            )
        )  # fmt: skip
        return Call(category, draw(st.sampled_from(sorted(dom.tools))), arguments)
    name, arguments = _valid(draw, domain, state, writes=category == "write")
    arguments = _copy(arguments)
    if category in ("valid", "write"):
        return Call(category, name, _encode(draw, arguments))
    if category == "hostile_leaf":
        slots = _leaves(arguments, [])
        if slots:
            container, key = draw(st.sampled_from(slots))
            container[key] = draw(HOSTILE_LEAF)
        else:
            arguments["unexpected"] = draw(HOSTILE_LEAF)
        return Call(category, name, _encode(draw, arguments))
    if category == "extra_keys":
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.one_of(st.text(max_size=12), SURROGATE_TEXT, st.sampled_from(["user_id", "amount"])))
            arguments.setdefault(key, draw(st.one_of(JUNK, HOSTILE_LEAF)))
        if draw(st.integers(0, 9)) == 0:
            arguments[draw(st.sampled_from([1, None, 2.5, (1, 2)]))] = 1  # type: ignore[index]
        return Call(category, name, _encode(draw, arguments))
    if category == "missing_keys":
        if arguments:
            for key in draw(st.lists(st.sampled_from(sorted(arguments)), min_size=1, unique=True)):
                del arguments[key]
        return Call(category, name, _encode(draw, arguments))
    if category == "deep":
        depth = draw(st.integers(20, 3000))
        kind = draw(st.sampled_from(["list", "dict"]))
        where = draw(st.sampled_from(["param", "extra", "top"]))
        keys = sorted(arguments) if where == "param" and arguments else ["deep_extra"]
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):  # as JSON text: never built as Python objects
            inner = _nested_text(depth, kind)
            if where == "top":
                return Call(category, name, inner.encode())
            arguments[key] = None
            text = json.dumps(arguments).replace(f'{json.dumps(key)}: null', f"{json.dumps(key)}: {inner}")
            return Call(category, name, draw(st.sampled_from([text, text.encode()])))
        if where == "top":
            return Call(category, name, _nested(depth, kind))
        arguments[key] = _nested(depth, kind)
        return Call(category, name, arguments)
    # category == "mapping": the same arguments in a mapping that is not a plain dict
    wrap = draw(st.sampled_from(["proxy", "ordered", "custom", "chain", "broken"]))
    if wrap == "proxy":
        return Call(category, name, types.MappingProxyType(arguments))
    if wrap == "ordered":
        return Call(category, name, OrderedDict(arguments))
    if wrap == "custom":
        return Call(category, name, _Mapping(arguments))
    if wrap == "chain":
        return Call(category, name, ChainMap(arguments, {}))
    return Call(category, name, _BrokenMapping(arguments))


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def run_call(dom: Domain, state: State, call: Call) -> Outcome:
    """Make ``call`` on ``state`` and check the result; never raises."""
    before_hash = state.hash()
    before = state.snapshot()
    enabled = gc.isenabled()
    gc.disable()
    escaped = None
    started = time.process_time()
    try:
        result = dom.call(state, call.name, call.arguments)
    except Exception as exc:  # what the kernel must never let out
        result = None
        escaped = f"{type(exc).__name__}: {exc}"
    cpu_s = time.process_time() - started
    if enabled:
        gc.enable()
    name = call.name if isinstance(call.name, str) and _valid_utf8(call.name) else repr(call.name)
    if result is None:
        return Outcome(call.category, name, cpu_s, True, escaped=escaped)
    bad = None
    if not isinstance(result.output, str) or not isinstance(result.error, bool):
        bad = f"not a str/bool result: {result!r}"
    elif not _valid_utf8(result.output) or (result.error and not result.output.startswith("Error: ")):
        bad = f"bad output {result.output[:80]!r}"
    elif call.category == "mapping" and not isinstance(call.arguments, _BrokenMapping):
        twin = dom.call(State.restore(state.base, before), call.name, dict(call.arguments))
        if (twin.output, twin.error) != (result.output, result.error):
            bad = f"a mapping and a dict differ: {result.output[:60]!r} vs {twin.output[:60]!r}"
    changed = result.error and (state.hash() != before_hash or state.snapshot() != before)
    return Outcome(call.category, name, cpu_s, result.error, None, result.fault, changed, bad)
