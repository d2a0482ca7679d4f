"""Raw tool-call arguments to a tool's keyword arguments, or one line saying why not.

Takes whatever a model or a caller sends (JSON bytes or text, a mapping, or anything else) and
either returns values the database can hold (64-bit integers, finite floats, encodable strings)
or raises ``ArgumentError``. It never raises anything else and never runs a tool.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

import msgspec

from envs.kernel.tool import Tool

__all__ = ["INT_RANGE", "MAX_DEPTH", "ArgumentError", "decode_arguments", "printable"]

INT_RANGE = (-(2**63), 2**63 - 1)
"""The integers a record may hold: signed 64-bit, as Arrow (the parquet export) and most JSON readers."""
INT_RANGE_ERROR = "Integer out of range (the database holds 64-bit integers)"
MAX_DEPTH = 64
"""The deepest nesting of JSON arrays and objects looked into when explaining bad arguments."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_msgpack_encode = msgspec.msgpack.Encoder().encode


class ArgumentError(ValueError):
    """Arguments a tool cannot take; the message is one line (tau2-bench's text where it has one)."""


def printable(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates written as ``\\udXXX`` escapes, the rest unchanged."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def decode_arguments(t: Tool, toolkit: str, arguments: object) -> dict[str, Any]:
    """The keyword arguments of a call to ``t``, decoded and checked; ``ArgumentError`` otherwise."""
    try:
        return _decode(t, toolkit, arguments)
    except ArgumentError:
        raise
    except Exception as exc:  # e.g. a mapping whose keys cannot be compared: refused, not raised
        raise ArgumentError(f"tool arguments cannot be read: {type(exc).__name__}") from None


def _decode(t: Tool, toolkit: str, arguments: object) -> dict[str, Any]:
    # 1) the container: JSON bytes or text, or a mapping
    data: Any
    if type(arguments) is bytes:  # the common case first
        data = arguments
    elif isinstance(arguments, str):
        try:
            data = arguments.encode("utf-8")
        except UnicodeEncodeError:
            raise ArgumentError("tool arguments are not valid Unicode text (a lone surrogate)") from None
    elif isinstance(arguments, (bytes, bytearray, memoryview)):
        data = bytes(arguments)
    elif isinstance(arguments, dict):
        data = arguments
    elif isinstance(arguments, Mapping):
        data = dict(arguments)
    else:
        raise ArgumentError(f"tool arguments must be a JSON object, got {type(arguments).__name__}")
    # 2) typed decode (nesting is bounded by the tool's parameter types)
    try:
        kwargs = t.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ArgumentError(_explain(t, toolkit, data, exc)) from None
    except UnicodeEncodeError:  # a mapping key with a lone surrogate
        raise ArgumentError("String is not valid Unicode (a lone surrogate)") from None
    # 3) values the database can hold (one C encode clears most calls; the walk names the problem)
    if _surely_holdable(kwargs):
        return kwargs
    for name, value in kwargs.items():
        problem = _bad_value(value)
        if problem is not None:
            message, path = problem
            raise ArgumentError(f"{message} - at `$.{name}{''.join(reversed(path))}`")
    return kwargs


def _surely_holdable(kwargs: dict[str, Any]) -> bool:
    """True only if every value is one a record can hold, proven by one msgpack encode (in C).

    msgpack refuses lone surrogates and integers outside [-2**63, 2**64); what it accepts but a
    record cannot hold leaves a mark in its bytes: unsigned 64-bit integers (0xcf, which also
    tags smaller large integers) and non-finite floats (0xcb, which tags every float). Any such
    byte, or any error, answers False and ``_bad_value`` decides (a false alarm only costs time).
    """
    try:
        data = _msgpack_encode(kwargs)
    except Exception:
        return False
    return data.find(b"\xcb") == -1 and data.find(b"\xcf") == -1  # find: ``in`` tries an int first


def _bad_value(value: Any) -> tuple[str, list[str]] | None:
    """The first value a record cannot hold, with its path (innermost first), or None."""
    kind = type(value)
    if kind is str:
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "String is not valid Unicode (a lone surrogate)", []
        return None
    if kind is int:
        low, high = INT_RANGE
        return None if low <= value <= high else (INT_RANGE_ERROR, [])
    if kind is float:
        return None if math.isfinite(value) else ("Number is not finite", [])
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            problem = _bad_value(item)
            if problem is not None:
                problem[1].append(f"[{i}]")
                return problem
        return None
    if kind is dict:
        for key, item in value.items():
            problem = _bad_value(key) or _bad_value(item)
            if problem is not None:
                problem[1].append(f"[{printable(str(key))!r}]")
                return problem
        return None
    fields = getattr(value, "__struct_fields__", None)
    if fields is not None:
        for field in fields:
            problem = _bad_value(getattr(value, field))
            if problem is not None:
                problem[1].append(f".{field}")
                return problem
    return None


def _json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in JSON text (strings skipped); no recursion."""
    skeleton = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[b] for b in skeleton), default=0)


def _plural_args(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _explain(t: Tool, toolkit: str, data: bytes | dict[str, Any], exc: Exception) -> str:
    """Explain bad arguments as tau2-bench would (Python's own TypeError text) where it can."""
    arguments: Any = data
    if isinstance(data, bytes):
        if _json_depth(data) > MAX_DEPTH:
            return f"tool arguments are nested too deeply (more than {MAX_DEPTH} levels)"
        try:
            arguments = json.loads(data)
        except (ValueError, RecursionError):
            return f"tool arguments are not valid JSON: {exc}"
    if not isinstance(arguments, dict):
        return f"tool arguments must be a JSON object, got {type(arguments).__name__}"
    head = f"{toolkit}.{t.name}()"
    for key in arguments:
        if not isinstance(key, str):
            return f"{head} keywords must be strings"
        if key not in t.param_names:
            return f"{head} got an unexpected keyword argument '{key}'"
    missing = [n for n in t.required if n not in arguments]
    if missing:
        noun = "argument" if len(missing) == 1 else "arguments"
        return f"{head} missing {len(missing)} required positional {noun}: {_plural_args(missing)}"
    return str(exc)
