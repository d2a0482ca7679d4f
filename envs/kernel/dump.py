"""tau2-bench's JSON forms of our records: tool output strings and the canonical DB dump/hash."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from envs.kernel.state import State

__all__ = ["json_text", "tau2_db_hash", "tau2_db_json", "tool_output"]

_json_encode = msgspec.json.Encoder().encode
_json_format = msgspec.json.format
_quote = json.encoder.encode_basestring_ascii  # json.dumps of a str (ensure_ascii), in C
# number forms that msgspec writes unlike Python's ``repr`` (1e16 vs 1e+16, 0.00001 vs 1e-05)
_OTHER_NUMBER_FORM = re.compile(rb"\d[eE]|0\.0000")
# in msgpack, a float is 0xcb then its IEEE bytes, big-endian: a first byte 0x40-0x42 (or, negative,
# 0xc0-0xc2) is an exponent for 2 <= |x| < 2**49, which msgspec writes as ``repr`` does; any other
# byte after a 0xcb (another float, or a 0xcb inside a string or an integer) sends the text to the scan
_ODD_FLOAT = re.compile(rb"\xcb[^\x40-\x42\xc0-\xc2]", re.DOTALL)
_EXPONENT = re.compile(rb"e[-0-9]")  # msgspec's exponents (1e16, 1e-7); a literal prefix: a fast scan


def tool_output(result: Any, packed: bytes | None = None) -> str:
    """The string tau2-bench returns for a tool result (``Environment.to_json_str``).

    That is ``json.dumps`` of the plain value. msgspec's compact JSON reformatted with one space
    after each separator (``msgspec.json.format``, in C) is the same text; output with anything
    else that could differ (escapes, non-ASCII, exponents) takes ``json.dumps`` itself.
    ``packed``, ``result``'s msgpack form when the caller has it, lets floats be checked there
    (cheaper than scanning the text): only one outside 2 <= |x| < 2**49 (or what looks like one)
    sends the text to the exponent scan.
    """
    if isinstance(result, str):
        return result
    if isinstance(result, (bool, int, float)):
        return str(result)
    data = _json_encode(result)
    # (``find``, not ``in``: ``bytes.__contains__`` tries the needle as an int first, and fails slowly)
    if data.find(b"\\") != -1 or data.find(b"\x7f") != -1 or not data.isascii():
        return json.dumps(msgspec.to_builtins(result))
    odd = packed is None or _ODD_FLOAT.search(packed) is not None
    if odd and (_EXPONENT.search(data) is not None or data.find(b"0.0000") != -1):  # cheap test first; then exact
        # no backslash: every quote opens or closes a string; NUL cannot occur raw in JSON text
        outside = b"\x00".join(data.split(b'"')[0::2])
        if _OTHER_NUMBER_FORM.search(outside) is not None:
            return json.dumps(msgspec.to_builtins(result))
    return _json_format(data, indent=0).decode("ascii")


def json_text(value: Any) -> str:
    """``json.dumps(msgspec.to_builtins(value))`` for any value, a bare string included."""
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool or kind is float:
        return json.dumps(value)
    return tool_output(value)


def _fragment(record: Any) -> str:
    return json.dumps(msgspec.to_builtins(record), sort_keys=True)


def tau2_db_json(state: State) -> str:
    """The DB as tau2 hashes it: ``json.dumps(db.model_dump(), sort_keys=True)``.

    Base records are serialized once and kept in the base's ``BaseCache``; only records this
    state changed are serialized again.
    """
    from envs.kernel.state import cache_of  # state imports this module

    base = state.base
    cache = cache_of(base).fragments
    parts: list[str] = []
    for table in sorted(base.table_names):
        base_table = base.tables[table]
        items: list[str] = []
        for key in sorted(state.keys(table)):
            if state.is_changed(table, key):
                frag = _fragment(state.get(table, key))
            else:
                frag = cache.get((table, key))
                if frag is None:
                    frag = _fragment(base_table[key])
                    cache[(table, key)] = frag
            items.append(f"{json.dumps(key)}: {frag}")
        parts.append(f"{json.dumps(table)}: {{{', '.join(items)}}}")
    return "{" + ", ".join(parts) + "}"


def tau2_db_hash(state: State) -> str:
    """tau2-bench's DB hash (``get_dict_hash``) of this state: sha256 hex of the canonical dump."""
    return hashlib.sha256(tau2_db_json(state).encode()).hexdigest()
