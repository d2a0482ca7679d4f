"""Build the agent-turn grammar from OpenAI tool schemas: free text to the user, or one tool call.

The grammar is lark in llguidance's dialect. The call branch is the model's own tool-call block
around ``%json{...}`` of an ``anyOf`` over ``{"name": const, <args key>: bounded parameters}``.
Schemas are bounded (``maxLength``, ``maxItems``, ``additionalProperties: false``) and whitespace
is fixed, so a sampled call always ends and always decodes. Grammars are cached per tool set and
format; the ``key`` is a digest of the grammar text, so a backend compiles each one once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Any

import msgspec

from grammars.formats import ToolCallFormat, ToolCallFormatError, get_format

__all__ = ["DEFAULT_BOUNDS", "AgentTurnGrammar", "Bounds", "agent_turn_grammar", "bound_schema"]

# Keys that say nothing about what text is valid; dropped so they do not split the cache.
_PROSE_KEYS = frozenset({"description", "title", "examples", "default", "$comment"})


class Bounds(msgspec.Struct, kw_only=True, frozen=True):
    """Upper limits added to schemas that leave them open."""

    max_string_length: int = 128
    max_items: int = 8
    max_properties: int = 8
    min_integer: int = -(10**15)
    max_integer: int = 10**15
    max_number: float = 1e15


DEFAULT_BOUNDS = Bounds()


class AgentTurnGrammar(msgspec.Struct, kw_only=True, frozen=True):
    """The constraint for one agent turn, ready to wrap as ``Constraint(kind="lark", ...)``."""

    lark: str
    key: str
    format: str
    tool_names: tuple[str, ...]
    tag_tokens: bool
    tool_choice: str


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def bound_schema(schema: Any, bounds: Bounds = DEFAULT_BOUNDS) -> Any:
    """A copy of ``schema`` with limits on every open string, number, array and object, prose dropped."""
    if isinstance(schema, list):
        return [bound_schema(item, bounds) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE_KEYS:
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = {k: bound_schema(v, bounds) for k, v in value.items()}
        elif key in ("enum", "const", "required", "x-guidance"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = bound_schema(value, bounds)
    kinds = _types(out)
    closed = "enum" in out or "const" in out
    if "string" in kinds and not closed:
        out.setdefault("maxLength", bounds.max_string_length)
    # Integers inside what the kernel's 64-bit fields hold (llguidance cannot compile the full
    # 64-bit range; no count, amount or id number here comes near 10^15).
    if "integer" in kinds and not closed:
        out.setdefault("minimum", bounds.min_integer)
        out.setdefault("maximum", bounds.max_integer)
    elif "number" in kinds and not closed:  # finite, and far from where JSON parsers round to inf
        out.setdefault("minimum", -bounds.max_number)
        out.setdefault("maximum", bounds.max_number)
    if "array" in kinds and not closed:
        out.setdefault("maxItems", bounds.max_items)
    if "object" in kinds and not closed:
        extra = out.get("additionalProperties", True)
        if extra is True or extra == {}:
            out["additionalProperties"] = False
        elif isinstance(extra, dict):  # a mapping with free keys: cap how many
            out.setdefault("maxProperties", bounds.max_properties)
    return out


def _tool_parts(tool: dict[str, Any], index: int) -> tuple[str, dict[str, Any]]:
    fn = tool.get("function", tool) if isinstance(tool, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ToolCallFormatError(f"tool {index}: expected an OpenAI function schema with a name")
    params = fn.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(params, dict):
        raise ToolCallFormatError(f"tool {fn['name']!r}: parameters must be a JSON schema object")
    return fn["name"], params


def _build(
    tools: Sequence[dict[str, Any]],
    fmt: ToolCallFormat,
    tag_tokens: bool,
    tool_choice: str,
    bounds: Bounds,
) -> AgentTurnGrammar:
    names: list[str] = []
    alternatives: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        name, params = _tool_parts(tool, i)
        if name in names:
            raise ToolCallFormatError(f"tool {name!r} is listed twice")
        names.append(name)
        alternatives.append(fmt.call_schema(name, bound_schema(params, bounds)))
    if not alternatives:
        raise ToolCallFormatError("an agent turn needs at least one tool")
    schema = {
        "x-guidance": {
            "whitespace_flexible": False,
            "item_separator": ", ",
            "key_separator": ": ",
        },
        "anyOf": alternatives,
    }
    lark = "\n".join(
        [
            "%llguidance {}",
            fmt.lark_rules("tool_json", tag_tokens=tag_tokens, allow_text=tool_choice == "auto"),
            "tool_json: %json " + json.dumps(schema, ensure_ascii=False, sort_keys=False),
            "",
        ]
    )
    key = "agent_turn:" + hashlib.sha256(lark.encode()).hexdigest()[:24]
    return AgentTurnGrammar(
        lark=lark,
        key=key,
        format=fmt.name,
        tool_names=tuple(names),
        tag_tokens=tag_tokens,
        tool_choice=tool_choice,
    )


_CACHE: dict[str, AgentTurnGrammar] = {}
_LOCK = threading.Lock()


def agent_turn_grammar(
    tools: Sequence[dict[str, Any]],
    fmt: str | ToolCallFormat,
    *,
    tag_tokens: bool = False,
    tool_choice: str = "auto",
    bounds: Bounds = DEFAULT_BOUNDS,
) -> AgentTurnGrammar:
    """The agent-turn grammar for ``tools`` (OpenAI format) written in ``fmt``; cached.

    ``tag_tokens`` says the format's tags (``<tool_call>``...) are single special tokens in the
    model's vocabulary, so the grammar names them as tokens instead of spelling them out.
    ``tool_choice`` is ``"auto"`` (text or a call) or ``"required"`` (a call).
    """
    fmt = get_format(fmt)
    if tool_choice not in ("auto", "required"):
        raise ToolCallFormatError(f"tool_choice must be 'auto' or 'required', got {tool_choice!r}")
    fingerprint = json.dumps(
        [list(tools), fmt.name, tag_tokens, tool_choice, msgspec.to_builtins(bounds)],
        sort_keys=True,
        default=str,
    )
    with _LOCK:
        hit = _CACHE.get(fingerprint)
    if hit is not None:
        return hit
    grammar = _build(tools, fmt, tag_tokens, tool_choice, bounds)
    with _LOCK:
        return _CACHE.setdefault(fingerprint, grammar)
