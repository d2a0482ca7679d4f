"""Render chat messages and tool schemas into a prompt with a model's own jinja chat template.

It follows the conventions of Hugging Face chat templates (sandboxed jinja, ``tojson`` without
ASCII escaping, ``raise_exception``, ``strftime_now``); it does not tokenize.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from engine.backends.base import BackendConfigError

__all__ = ["ChatTemplate", "openai_messages_for_template"]


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise ValueError(message)


@lru_cache(maxsize=32)
def _compile(source: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise BackendConfigError(f"chat template does not compile: {exc.message}") from None


def openai_messages_for_template(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as templates expect them: tool-call ``arguments`` as objects, not JSON text."""
    out: list[dict[str, Any]] = []
    for message in messages:
        calls = message.get("tool_calls")
        if not calls:
            out.append(message)
            continue
        fixed = []
        for call in calls:
            fn = dict(call.get("function", call))
            if isinstance(fn.get("arguments"), str):
                try:
                    fn["arguments"] = json.loads(fn["arguments"])
                except ValueError:
                    pass  # leave text the template can still print
            fixed.append({**call, "function": fn} if "function" in call else fn)
        out.append({**message, "tool_calls": fixed})
    return out


class ChatTemplate:
    """One model's chat template with its BOS and EOS strings."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._template = _compile(source)

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt text for ``messages`` (OpenAI format) offering ``tools``."""
        return str(
            self._template.render(
                messages=openai_messages_for_template(messages),
                tools=tools or None,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        )
