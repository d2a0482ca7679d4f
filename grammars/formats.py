"""Tool-call formats (Hermes/Qwen ``<tool_call>``, Llama 3.x JSON): write, detect, parse strictly.

A format knows how a model writes one tool call, what the free-text branch of an agent turn may
look like in lark, how to recognise itself in a chat template, and how to read a completion back
into ``(content, calls)``. It does not build grammars over tool schemas (see ``agent_turn``).
"""

from __future__ import annotations

import abc
import json
import re
from typing import Any, ClassVar

import msgspec

__all__ = [
    "FORMATS",
    "HermesFormat",
    "Llama3JsonFormat",
    "ParsedCall",
    "ToolCallFormat",
    "ToolCallFormatError",
    "detect_format",
    "get_format",
]


class ToolCallFormatError(ValueError):
    """A completion or a format name could not be read; the message is one line."""


class ParsedCall(msgspec.Struct, kw_only=True, frozen=True):
    """One tool call read out of model text; ``arguments`` is the JSON object as text."""

    name: str
    arguments: str


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters and shown as a one-line literal for error messages."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return json.dumps(cut, ensure_ascii=False)


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        raise ToolCallFormatError(f"{where}: invalid JSON ({msg}) in {_short(text)}") from None


def _canonical(value: Any) -> str:
    """JSON text as ``json.dumps`` writes it: what llguidance emits and chat templates render."""
    return json.dumps(value, ensure_ascii=False)


def _call_from_object(obj: Any, arg_keys: tuple[str, ...], where: str) -> ParsedCall:
    """Check a decoded ``{"name": ..., <arg key>: {...}}`` object and turn it into a call."""
    if not isinstance(obj, dict):
        raise ToolCallFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallFormatError(f'{where}: "name" must be a non-empty string')
    present = [k for k in arg_keys if k in obj]
    if len(present) != 1:
        keys = " or ".join(f'"{k}"' for k in arg_keys)
        raise ToolCallFormatError(f"{where}: call to {name!r} needs exactly one of {keys}")
    args = obj[present[0]]
    if isinstance(args, str):  # some servers send arguments as a JSON string
        args = _load_json(args, f"{where}: arguments of {name!r}")
    if not isinstance(args, dict):
        raise ToolCallFormatError(f"{where}: arguments of {name!r} must be a JSON object")
    extra = sorted(set(obj) - {"name", *arg_keys})
    if extra:
        raise ToolCallFormatError(f"{where}: call to {name!r} has unexpected keys {extra}")
    return ParsedCall(name=name, arguments=_canonical(args))


class ToolCallFormat(abc.ABC):
    """How one model family writes tool calls."""

    name: ClassVar[str]
    #: the key under which the model writes the arguments object
    args_key: ClassVar[str]
    #: literal tags that delimit a call and that may be single special tokens in a vocabulary
    tags: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def render_call(self, name: str, arguments: dict[str, Any]) -> str:
        """The text the model writes for one call."""

    @abc.abstractmethod
    def lark_rules(self, call_rule: str, *, tag_tokens: bool, allow_text: bool = True) -> str:
        """Lark rules ``start``, ``TEXT`` and ``call`` (around the JSON rule ``call_rule``).

        Without ``allow_text`` the turn must be a call (OpenAI's ``tool_choice="required"``).
        """

    @abc.abstractmethod
    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        """Split a completion into the text for the user and the calls; strict, one-line errors."""

    @classmethod
    @abc.abstractmethod
    def matches_template(cls, chat_template: str) -> bool:
        """Whether a jinja chat template writes tool calls in this format."""

    def call_schema(self, name: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """JSON schema of the object the model writes for a call to ``name``."""
        return {
            "type": "object",
            "properties": {"name": {"const": name}, self.args_key: parameters},
            "required": ["name", self.args_key],
            "additionalProperties": False,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HermesFormat(ToolCallFormat):
    """Hermes / Qwen 2.5+: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``."""

    name = "hermes"
    args_key = "arguments"
    tags = ("<tool_call>", "</tool_call>")
    _block = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)

    def render_call(self, name: str, arguments: dict[str, Any]) -> str:
        body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        return f"<tool_call>\n{body}\n</tool_call>"

    def lark_rules(self, call_rule: str, *, tag_tokens: bool, allow_text: bool = True) -> str:
        if tag_tokens:  # the tags are single special tokens: text cannot produce them anyway
            open_, close = "<tool_call>", "</tool_call>"
            text = r"TEXT: /\s*[^\s](?s:.*)/"
        else:
            open_, close = '"<tool_call>"', '"</tool_call>"'
            text = r"TEXT: /\s*[^\s](?s:.*)/ & ~/(?s:.*)<tool_call>(?s:.*)/"
        head = ["start: TEXT | call", text] if allow_text else ["start: call"]
        return "\n".join([*head, f'call: {open_} "\\n" {call_rule} "\\n" {close}'])

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        calls: list[ParsedCall] = []
        for i, match in enumerate(self._block.finditer(text)):
            obj = _load_json(match.group(1).strip(), f"tool call {i + 1}")
            calls.append(_call_from_object(obj, ("arguments",), f"tool call {i + 1}"))
        rest = self._block.sub("", text)
        for tag in self.tags:
            if tag in rest:
                raise ToolCallFormatError(f"unbalanced {tag} in completion {_short(text)}")
        return rest.strip(), calls

    @classmethod
    def matches_template(cls, chat_template: str) -> bool:
        return "<tool_call>" in chat_template


class Llama3JsonFormat(ToolCallFormat):
    """Llama 3.1-3.3 JSON tool calls: ``{"name": ..., "parameters": {...}}`` as the whole turn."""

    name = "llama3_json"
    args_key = "parameters"
    tags = ("<|python_tag|>",)

    def render_call(self, name: str, arguments: dict[str, Any]) -> str:
        return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)

    def lark_rules(self, call_rule: str, *, tag_tokens: bool, allow_text: bool = True) -> str:
        # Plain text may not begin with "{": a turn that starts with a brace is a call.
        head = ["start: TEXT | call", r"TEXT: /\s*[^\s{](?s:.*)/"] if allow_text else ["start: call"]
        return "\n".join([*head, f"call: {call_rule}"])

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        body = text.strip()
        if body.startswith("<|python_tag|>"):
            body = body[len("<|python_tag|>") :].lstrip()
        elif not body.startswith("{"):
            return body, []
        decoder = json.JSONDecoder(parse_constant=_reject_constant)
        calls: list[ParsedCall] = []
        pos = 0
        while True:
            where = f"tool call {len(calls) + 1}"
            try:
                obj, end = decoder.raw_decode(body, pos)
            except ValueError as exc:
                msg = str(exc).splitlines()[0]
                raise ToolCallFormatError(f"{where}: invalid JSON ({msg}) in {_short(body[pos:])}") from None
            calls.append(_call_from_object(obj, ("parameters", "arguments"), where))
            rest = body[end:].lstrip()
            if not rest:
                return "", calls
            if not rest.startswith(";"):
                raise ToolCallFormatError(f"text after tool call {len(calls)}: {_short(rest)}")
            pos = len(body) - len(rest[1:].lstrip())

    @classmethod
    def matches_template(cls, chat_template: str) -> bool:
        return "<|python_tag|>" in chat_template or (
            "<|start_header_id|>" in chat_template and '"parameters": ' in chat_template
        )


FORMATS: dict[str, ToolCallFormat] = {f.name: f for f in (HermesFormat(), Llama3JsonFormat())}


def get_format(name: str | ToolCallFormat) -> ToolCallFormat:
    """The format called ``name``; one-line error naming the known ones."""
    if isinstance(name, ToolCallFormat):
        return name
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ToolCallFormatError(f"unknown tool-call format {name!r} (known: {known})") from None


def detect_format(chat_template: str | None) -> ToolCallFormat:
    """The format a jinja chat template writes tool calls in; one-line error when unclear."""
    if not chat_template:
        raise ToolCallFormatError("the model has no chat template; set tool_format to one of: " + ", ".join(FORMATS))
    for fmt in FORMATS.values():
        if fmt.matches_template(chat_template):
            return fmt
    raise ToolCallFormatError(
        "cannot tell the tool-call format from the chat template; set tool_format to one of: " + ", ".join(FORMATS)
    )
