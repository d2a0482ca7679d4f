"""Declare a tool once: a typed function plus its kind; schema and argument decoder derive from it."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal, get_args, get_origin, get_type_hints

import msgspec

__all__ = ["Tool", "ToolError", "ToolKind", "json_schema_of", "tool"]


class ToolKind(StrEnum):
    """What a tool does, as tau2-bench classifies it."""

    READ = "read"
    WRITE = "write"
    GENERIC = "generic"


class ToolError(Exception):
    """Raised by a tool for a refused call; the dispatcher turns it into ``Error: <message>``."""


_ARG_LINE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-argument text."""
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    section = "description"
    current: str | None = None
    for raw in lines:
        stripped = raw.strip()
        if stripped in {"Args:", "Arguments:"}:
            section = "args"
            continue
        if stripped in {"Returns:", "Raises:", "Examples:", "Note:"}:
            section = "other"
            continue
        if section == "description":
            description.append(stripped)
        elif section == "args":
            indent = len(raw) - len(raw.lstrip())
            match = _ARG_LINE.match(stripped)
            if match and indent <= 4:
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current is not None and stripped:
                args[current] = f"{args[current]} {stripped}"
    text = " ".join(part for part in description if part).strip()
    return text, args


def json_schema_of(tp: Any) -> dict[str, Any]:
    """The JSON schema of a parameter type: scalars, Literal, list, dict, Optional and Structs."""
    origin = get_origin(tp)
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if origin is Literal:
        values = list(get_args(tp))
        kind = "string" if all(isinstance(v, str) for v in values) else "integer"
        return {"type": kind, "enum": values}
    if origin is typing.Annotated:
        inner, *meta = get_args(tp)
        schema = json_schema_of(inner)
        for item in meta:
            if isinstance(item, msgspec.Meta) and item.description:
                schema["description"] = item.description
        return schema
    if origin in (list, tuple) or tp in (list, tuple):
        (item,) = get_args(tp)[:1] or (Any,)
        return {"type": "array", "items": json_schema_of(item)}
    if origin is dict:
        _, value = get_args(tp)
        return {"type": "object", "additionalProperties": json_schema_of(value)}
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return json_schema_of(members[0])
        return {"anyOf": [json_schema_of(m) for m in members]}
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        hints = get_type_hints(tp, include_extras=True)
        props = {f: json_schema_of(hints[f]) for f in tp.__struct_fields__}
        n_optional = len(tp.__struct_defaults__)
        fields = tp.__struct_fields__
        required = list(fields[: len(fields) - n_optional])
        return {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }
    raise TypeError(f"no JSON schema for parameter type {tp!r}")


class Tool:
    """One tool: the function, its kind, its OpenAI schema and its argument decoder.

    The function takes the conversation state first and the tool's arguments after it.
    """

    __slots__ = (
        "_decoder",
        "args_type",
        "description",
        "fn",
        "kind",
        "name",
        "param_names",
        "parameters",
        "required",
    )

    def __init__(self, fn: Callable[..., Any], kind: ToolKind) -> None:
        self.fn = fn
        self.kind = kind
        self.name = fn.__name__
        description, arg_docs = _parse_docstring(fn.__doc__ or "")
        self.description = description
        hints = get_type_hints(fn, include_extras=True)
        params = list(inspect.signature(fn).parameters.values())[1:]  # first is the state
        fields: list[tuple[Any, ...]] = []
        properties: dict[str, Any] = {}
        required: list[str] = []
        for p in params:
            tp = hints[p.name]
            schema = json_schema_of(tp)
            if p.name in arg_docs:
                schema = {"description": arg_docs[p.name], **schema}
            properties[p.name] = schema
            if p.default is inspect.Parameter.empty:
                required.append(p.name)
                fields.append((p.name, tp))
            else:
                fields.append((p.name, tp, p.default))
        self.param_names = tuple(p.name for p in params)
        self.required = tuple(required)
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        self.args_type = msgspec.defstruct(
            f"{self.name}_args", fields, kw_only=True, forbid_unknown_fields=True
        )
        self._decoder = msgspec.json.Decoder(self.args_type, strict=False)

    @property
    def mutates(self) -> bool:
        """Whether the tool may change the database (tau2's ``mutates_state``)."""
        return self.kind is ToolKind.WRITE

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI's function-calling format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def decode(self, arguments: bytes | str | dict[str, Any]) -> dict[str, Any]:
        """Validate arguments and return them as keyword arguments; raises ``msgspec`` errors."""
        if isinstance(arguments, dict):
            value = msgspec.convert(arguments, self.args_type, strict=False)
        else:
            value = self._decoder.decode(arguments)
        return msgspec.structs.asdict(value)  # the parameters, in order

    def __call__(self, state: Any, **kwargs: Any) -> Any:
        return self.fn(state, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, kind={self.kind.value!r})"


def tool(kind: str | ToolKind) -> Callable[[Callable[..., Any]], Tool]:
    """Decorator: declare ``fn`` a tool of the given kind (``read``, ``write`` or ``generic``)."""
    tool_kind = ToolKind(kind)

    def wrap(fn: Callable[..., Any]) -> Tool:
        return Tool(fn, tool_kind)

    return wrap
