"""The one interface every inference backend implements; no backend library is imported here."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from grammars import ToolCallFormat, ToolCallFormatError

__all__ = [
    "Backend",
    "BackendConfigError",
    "Completion",
    "Constraint",
    "Request",
    "SamplingParams",
    "ToolCall",
    "one_line",
    "parse_tool_calls",
]


class BackendConfigError(ValueError):
    """A backend was configured wrongly; the message is one line meant for the user."""


class SamplingParams(msgspec.Struct, kw_only=True, frozen=True):
    """How to sample one completion."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()


class Constraint(msgspec.Struct, kw_only=True, frozen=True):
    """A decoding constraint.

    ``kind`` says how ``spec`` reads: a JSON schema (JSON text), a lark grammar (llguidance
    dialect, may embed ``%json{...}``) or a regular expression. ``key`` names the compiled form
    so backends compile each constraint once and reuse it.
    """

    kind: Literal["json_schema", "lark", "regex"]
    spec: str
    key: str


class ToolCall(msgspec.Struct, kw_only=True, frozen=True):
    """A tool call parsed out of a completion; ``arguments`` is the JSON object as text."""

    name: str
    arguments: str


class Request(msgspec.Struct, kw_only=True):
    """One generation: chat ``messages`` (OpenAI format, rendered with the model's chat
    template together with ``tools``) or a raw ``prompt``."""

    request_id: str
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    tools: list[dict[str, Any]] | None = None
    sampling: SamplingParams = SamplingParams()
    constraint: Constraint | None = None
    seed: int | None = None


class Completion(msgspec.Struct, kw_only=True):
    """What came back for one request."""

    request_id: str
    text: str
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None


def one_line(text: object, limit: int = 240) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + "..."


def parse_tool_calls(
    fmt: ToolCallFormat, text: str, finish_reason: str, max_tokens: int
) -> tuple[list[ToolCall], str | None]:
    """The tool calls written in a completion's text, or ``([], one-line reason)`` if unreadable."""
    try:
        _, parsed = fmt.parse(text)
    except ToolCallFormatError as exc:
        if finish_reason == "length":
            return [], f"hit max_tokens ({max_tokens}) before the turn ended: {exc}"
        return [], str(exc)
    return [ToolCall(name=c.name, arguments=c.arguments) for c in parsed], None


class Backend(abc.ABC):
    """An inference engine serving many requests at once.

    ``generate`` takes every pending request together so the engine can batch them
    (continuous batching on vLLM, parallel sequences on llama.cpp) and returns completions
    in request order.
    """

    name: str = "backend"
    model: str = ""
    #: decisions the backend made that a user should see in the run log (threads, template, format)
    notes: tuple[str, ...] = ()

    @abc.abstractmethod
    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Complete every request; the result is in the order of ``requests``."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's resources."""
