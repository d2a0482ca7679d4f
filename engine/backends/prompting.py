"""Agent prompts for any chat template: probe what a template renders, and let writ write the rest.

A model's own jinja chat template may ignore the ``tools`` it is given (plain ChatML), drop or
blank assistant turns that carry ``tool_calls``, refuse ``role: "tool"`` messages, or have no
system role at all. ``probe_template`` finds out by rendering small probe conversations;
``ToolPrompt`` renders through the template and, for each part it does not render, writes that
part itself: the tool list and the call syntax (an example written by the format itself) go into
the system text, past calls become assistant text exactly as the agent-turn grammar makes the
model write them, tool results become ``<tool_response>`` blocks in a user turn, and the system
text moves into the first user turn. So the prompt asks for the very syntax the grammar accepts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import msgspec

from engine.backends.chat_template import ChatTemplate
from grammars.formats import FORMATS, ToolCallFormat, ToolCallFormatError, detect_format, get_format

__all__ = [
    "NO_FORMAT_NOTE",
    "NO_TEMPLATE_NOTE",
    "TemplateSupport",
    "ToolPrompt",
    "agent_messages",
    "calls_as_text",
    "choose_format",
    "example_call",
    "probe_template",
    "render_agent_prompt",
    "tool_section",
]

NO_FORMAT_NOTE = "the chat template shows no tool-call format; using hermes <tool_call> blocks, rendered by writ"
NO_TEMPLATE_NOTE = "the model has no chat template; using hermes <tool_call> blocks"

# -- probing ------------------------------------------------------------------------------------

_MARK = "q7zk"
_P_SYSTEM = f"Probe system text {_MARK}."
_P_USER = f"Probe user text {_MARK}."
_P_USER2 = f"Probe second user text {_MARK}."
_P_TOOL_NAME = f"writ_probe_lookup_{_MARK}"
_P_TOOL_DESC = f"Looks up a probe record {_MARK}."
_P_ARG_VALUE = f"probe-value-{_MARK}"
_P_ARGS = {"probe_key": _P_ARG_VALUE}
_P_RESULT = f"probe result text {_MARK}"
_P_TOOL = {
    "type": "function",
    "function": {
        "name": _P_TOOL_NAME,
        "description": _P_TOOL_DESC,
        "parameters": {
            "type": "object",
            "properties": {"probe_key": {"type": "string", "description": "The key."}},
            "required": ["probe_key"],
        },
    },
}
_P_CALL = {
    "id": "call_probe1",
    "type": "function",
    "function": {"name": _P_TOOL_NAME, "arguments": json.dumps(_P_ARGS)},
}


class TemplateSupport(msgspec.Struct, kw_only=True, frozen=True):
    """What a chat template renders by itself (found by ``probe_template``)."""

    #: renders the tool list it is given (a tool's name and description appear)
    tools: bool
    #: renders a system message's text (a template that raises on one counts as no)
    system: bool
    #: renders an assistant message's tool call (its name and an argument value appear)
    tool_calls: bool
    #: renders a ``role: "tool"`` message's content
    tool_results: bool
    #: the tool-call format read off the template source, or None when unclear
    format: str | None = None
    #: the format whose ``render_call`` text the template writes verbatim for a past call, if any
    call_format: str | None = None

    def native_tools(self, fmt: ToolCallFormat) -> bool:
        """Whether the template's own tool list (and its call instructions) serves ``fmt``."""
        return self.tools and self.format == fmt.name

    def native_tool_calls(self, fmt: ToolCallFormat) -> bool:
        """Whether the template writes past calls exactly as ``fmt`` (and the grammar) does."""
        return self.tool_calls and self.call_format == fmt.name

    def notes(self, fmt: ToolCallFormat | str | None = None) -> list[str]:
        """One line per part writ writes itself, for the run log (``fmt``: the format in use)."""
        fmt = get_format(fmt) if fmt is not None else FORMATS.get(self.format or "hermes", FORMATS["hermes"])
        out: list[str] = []
        name = fmt.name
        if not self.native_tools(fmt):
            why = "does not render tools" if not self.tools else f"asks for {self.format or 'another'} tool calls"
            out.append(f"the chat template {why}; writ writes the tools and {name} call syntax into the system text")
        if not self.native_tool_calls(fmt):
            why = "does not render assistant tool calls" if not self.tool_calls else f"writes past calls unlike {name}"
            out.append(f"the chat template {why}; writ writes past calls as assistant text in {name} syntax")
        if not self.tool_results:
            out.append("the chat template does not render tool messages; writ sends tool results as user turns")
        if not self.system:
            out.append("the chat template has no system role; writ moves the system text into the first user turn")
        return out


def _try_render(template: ChatTemplate, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    """The rendered text, or "" when the template raises (any error counts as not supported)."""
    try:
        return template.render(messages, tools)
    except Exception:
        return ""


def _probe(template: ChatTemplate) -> TemplateSupport:
    system = _P_SYSTEM in _try_render(template, [{"role": "system", "content": _P_SYSTEM}, _user(_P_USER)], None)
    head = ([{"role": "system", "content": _P_SYSTEM}] if system else []) + [_user(_P_USER)]
    with_tools = _try_render(template, head, [_P_TOOL])
    without = _try_render(template, head, None)
    tools = _P_TOOL_NAME in with_tools and _P_TOOL_DESC in with_tools and _P_TOOL_NAME not in without
    native_call = {"role": "assistant", "content": "", "tool_calls": [_P_CALL]}
    called = _try_render(template, [*head, native_call, _user(_P_USER2)], None)
    tool_calls = _P_TOOL_NAME in called and _P_ARG_VALUE in called
    call_format = next((f.name for f in FORMATS.values() if f.render_call(_P_TOOL_NAME, _P_ARGS) in called), None)
    result = {"role": "tool", "tool_call_id": "call_probe1", "name": _P_TOOL_NAME, "content": _P_RESULT}
    text_call = {"role": "assistant", "content": FORMATS["hermes"].render_call(_P_TOOL_NAME, _P_ARGS)}
    tool_results = all(
        _P_RESULT in _try_render(template, [*head, turn, result], None)
        for turn in ([native_call, text_call] if tool_calls else [text_call])
    )
    try:
        detected: str | None = detect_format(template.source).name
    except ToolCallFormatError:
        detected = None
    return TemplateSupport(
        tools=tools,
        system=system,
        tool_calls=tool_calls,
        tool_results=tool_results,
        format=detected,
        call_format=call_format,
    )


_SUPPORT: dict[tuple[str, str, str], TemplateSupport] = {}
_LOCK = threading.Lock()


def probe_template(template: ChatTemplate) -> TemplateSupport:
    """What ``template`` renders by itself; cached per template source (and BOS/EOS strings)."""
    key = (template.source, template.bos_token, template.eos_token)
    with _LOCK:
        hit = _SUPPORT.get(key)
    if hit is not None:
        return hit
    support = _probe(template)
    with _LOCK:
        return _SUPPORT.setdefault(key, support)


def choose_format(configured: str | None, template_source: str | None) -> tuple[ToolCallFormat, str | None]:
    """The configured format, else the template's, else Hermes with a note for the run log.

    Only an unknown configured name raises (``ToolCallFormatError``, one line).
    """
    if configured:
        return get_format(configured), None
    try:
        return detect_format(template_source), None
    except ToolCallFormatError:
        return FORMATS["hermes"], NO_FORMAT_NOTE if template_source else NO_TEMPLATE_NOTE


# -- writing what the template does not ------------------------------------------------------------


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function", tool)
    return fn if isinstance(fn, dict) else {}


def _example_value(schema: Any) -> tuple[bool, Any]:
    """``(ok, value)``: a value any bounded schema of this simple shape accepts."""
    if not isinstance(schema, dict):
        return False, None
    if "const" in schema:
        return True, schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return True, schema["enum"][0]
    if any(k in schema for k in ("pattern", "format", "minLength", "minimum", "exclusiveMinimum", "anyOf", "oneOf")):
        return False, None
    kind = schema.get("type")
    if kind == "string":
        return True, "..."
    if kind in ("integer", "number"):
        return True, 1
    if kind == "boolean":
        return True, True
    if kind == "array" and not schema.get("minItems"):
        return True, []
    if kind == "object":
        return _example_args(schema)
    return False, None


def _example_args(params: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    props = params.get("properties") or {}
    out: dict[str, Any] = {}
    for name in params.get("required") or []:
        ok, value = _example_value(props.get(name))
        if not ok:
            return False, {}
        out[name] = value
    return True, out


def example_call(tools: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """``(name, arguments)`` of an example call: the tool with the fewest required arguments (at least
    one where possible) that are simple enough to fill with placeholders; the first such one on ties."""
    best: tuple[int, str, dict[str, Any]] | None = None
    for tool in tools:
        fn = _function(tool)
        ok, args = _example_args(fn.get("parameters") or {})
        rank = len(args) if args else 1_000  # a call without arguments shows the syntax least well
        if ok and (best is None or rank < best[0]):
            best = (rank, fn["name"], args)
    if best is not None:
        return best[1], best[2]
    return _function(tools[0])["name"], {}


def tool_section(tools: Sequence[dict[str, Any]], fmt: ToolCallFormat, *, results_in_user_turns: bool) -> str:
    """The tool list and the call syntax of ``fmt``, in writ's words, for the system text."""
    lines = [
        "# Tools",
        "",
        "You can use the tools below. Each is given with its name, what it does, and its parameters as a JSON schema.",
    ]
    for tool in tools:
        fn = _function(tool)
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        lines += ["", f"## {fn['name']}"]
        if fn.get("description"):
            lines.append(str(fn["description"]).strip())
        lines.append("Parameters: " + json.dumps(params, ensure_ascii=False))
    name, args = example_call(tools)
    lines += [
        "",
        "# Calling a tool",
        "",
        "To call a tool, make the call your whole reply, written exactly like this example "
        "(with the tool's name and your own argument values):",
        fmt.render_call(name, args),
        f'The arguments are one JSON object under "{fmt.args_key}". Make at most one call per reply. '
        "To talk to the user instead, reply with plain text and no call.",
    ]
    if results_in_user_turns:
        lines.append("The tool's result comes back in the next user turn, inside <tool_response></tool_response> tags.")
    else:
        lines.append("The tool's result comes back in the next turn.")
    return "\n".join(lines)


def calls_as_text(fmt: ToolCallFormat, content: str | None, calls: Sequence[dict[str, Any]]) -> str:
    """An assistant turn's content and tool calls as the text the model writes (``fmt.render_call``)."""
    parts = [content.strip()] if isinstance(content, str) and content.strip() else []
    for call in calls:
        fn = _function(call)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass  # written as it came
        parts.append(fmt.render_call(str(fn.get("name", "")), args))
    return "\n".join(parts)


def _tool_response(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return f"<tool_response>\n{text}\n</tool_response>"


def agent_messages(
    support: TemplateSupport,
    fmt: ToolCallFormat,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """``(messages, tools)`` to hand the template: every part it cannot render rewritten as text."""
    native_tools = support.native_tools(fmt)
    native_calls = support.native_tool_calls(fmt)
    rest = list(messages)
    system = None
    if rest and rest[0].get("role") == "system":
        system = str(rest.pop(0).get("content") or "")
    if tools and not native_tools:
        section = tool_section(tools, fmt, results_in_user_turns=not support.tool_results)
        system = f"{system}\n\n{section}" if system else section
    out: list[dict[str, Any]] = []
    merge = False  # whether the last user turn in ``out`` carries rewritten tool results
    for message in rest:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls") and not native_calls:
            text = calls_as_text(fmt, message.get("content"), message["tool_calls"])
            out.append({"role": "assistant", "content": text})
        elif role == "tool" and not support.tool_results:
            block = _tool_response(message)
            if merge:
                out[-1] = {**out[-1], "content": f"{out[-1]['content']}\n{block}"}
            else:
                out.append(_user(block))
            merge = True
            continue
        elif role == "user" and merge:
            out[-1] = {**out[-1], "content": f"{out[-1]['content']}\n\n{message.get('content') or ''}"}
        else:
            out.append(message)
        merge = False
    if system is not None:
        if support.system:
            out.insert(0, {"role": "system", "content": system})
        elif out and out[0].get("role") == "user":
            out[0] = {**out[0], "content": f"{system}\n\n{out[0].get('content') or ''}"}
        else:
            out.insert(0, _user(system))
    return out, (list(tools) if tools and native_tools else None)


def render_agent_prompt(
    template: ChatTemplate,
    support: TemplateSupport,
    fmt: ToolCallFormat,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text: ``template`` renders what it can, writ writes the rest (see ``agent_messages``)."""
    out, native = agent_messages(support, fmt, messages, tools)
    return template.render(out, native, add_generation_prompt=add_generation_prompt)


class ToolPrompt:
    """One model's prompt renderer: its template, its tool-call format, and what writ adds."""

    def __init__(self, template: ChatTemplate | None, fmt: ToolCallFormat | str, *, format_note: str | None = None):
        self.template = template
        self.fmt = get_format(fmt)
        self.support = probe_template(template) if template is not None else None
        self._format_note = format_note

    @classmethod
    def for_model(
        cls,
        template_source: str | None,
        configured_format: str | None = None,
        *,
        bos_token: str = "",
        eos_token: str = "",
    ) -> ToolPrompt:
        """The renderer for a template source (None: no template) and an optional configured format."""
        fmt, note = choose_format(configured_format, template_source)
        template = ChatTemplate(template_source, bos_token=bos_token, eos_token=eos_token) if template_source else None
        return cls(template, fmt, format_note=note)

    @property
    def notes(self) -> list[str]:
        """Lines for the run log: how the format was chosen and which parts writ renders itself."""
        head = [self._format_note] if self._format_note else []
        return head + (self.support.notes(self.fmt) if self.support is not None else [])

    def render(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        *,
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt text for ``messages`` offering ``tools``; ``ValueError`` without a template."""
        if self.template is None or self.support is None:
            raise ValueError("the model has no chat template; send a prompt or set chat_template")
        return render_agent_prompt(
            self.template, self.support, self.fmt, messages, tools, add_generation_prompt=add_generation_prompt
        )
