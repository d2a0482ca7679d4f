"""Why a conversation was dropped: one cause per failed ``ConversationResult``, with what to change.

``diagnose`` reads a finished conversation (its termination, verification failures and reward
parts, and the messages themselves) and names the ONE cause that best explains why it did not
pass; ``CAUSES`` maps each cause to a one-line advice for the run config or the models, and
``summarize_causes`` tallies a run's dropped conversations into the table ``writ stats`` prints.

The checks run in this priority order; the first that holds is the cause:

1. ``backend_error``, ``kernel_error``: the backend or a tool body failed (not the models' doing).
2. ``agent_format``, ``agent_truncated``: the agent's turn could not be used.
3. ``user_off_script`` (clear signs): the goal was reached but the user never wrote ###STOP###;
   the user ended with ###OUT-OF-SCOPE### or ###TRANSFER### unasked; the user echoed the agent,
   spoke as the agent or said nothing; the user stopped before the agent's second turn while
   the task still needed a write.
4. ``context_limit``; ``agent_no_tools`` (no tool call at all though the task needs writes);
   ``turn_limit``; ``tool_errors``.
5. ``user_off_script`` (weaker sign): the user wrote ###STOP### in answer to the agent's question
   (not "anything else?") before any write succeeded while the task needed one.
6. ``wrong_write``, ``missing_write``, ``evidence_not_read``, ``missing_output``: the verification
   checks of a conversation that ended naturally.
7. ``ungrounded``: the grounding filter dropped it (``filters.grounding = "drop"``).

A ``dead_state`` stop counts as ``wrong_write``. ``other`` is left for a dropped conversation none
of these explain (e.g. a termination name newer than this module).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import Any

from engine.records import ConversationResult
from envs import DOMAINS, get_domain

__all__ = ["CAUSES", "EXCERPT_CHARS", "diagnose", "explain", "summarize_causes"]

CAUSES: dict[str, str] = {
    "backend_error": "the backend failed: check the server or model logs, memory and backend settings",
    "kernel_error": "a tool body raised (an environment bug, not the agent's fault): report it with the call",
    "agent_format": "the agent's turns do not parse as text or a tool call: use a stronger agent model or check "
    "the backend's tool_format matches its chat template",
    "agent_truncated": "agent turns hit the token cap: raise agent_sampling.max_tokens",
    "user_off_script": "the user simulator left its script: use a stronger user model or lower "
    "user_sampling.temperature",
    "context_limit": "the conversation outgrew the context: raise n_ctx (backend) and limits.max_context_tokens",
    "agent_no_tools": "the agent never called a tool: use a stronger agent model and check the tool list reaches "
    "its prompt (chat template, tool_format)",
    "turn_limit": "the conversation ran out of turns: raise limits.max_steps",
    "tool_errors": "too many failed tool calls in a row: use a stronger agent model or raise limits.max_errors",
    "wrong_write": "the agent wrote, but with the wrong tool or arguments: use a stronger agent model or "
    "lower agent_sampling.temperature",
    "missing_write": "the agent never made a needed write: use a stronger agent model",
    "evidence_not_read": "the agent wrote before reading what the write depends on: use a stronger agent model",
    "missing_output": "the agent did not tell the user a required value (e.g. an amount): use a stronger agent model",
    "ungrounded": "the agent stated facts no tool output or user message gave (filters.grounding = drop): use a "
    "stronger agent model or set grounding = record",
    "other": "not classified: read the example conversation",
}
"""Every cause ``diagnose`` can return, in priority order (see the module docstring), with its advice."""

EXCERPT_CHARS = 100
"""The longest excerpt ``summarize_causes`` gives for an example."""

_GOAL_FAILURES = ("wrong_argument", "missing_write", "extra_write", "goal_state")
_TRANSFER_TOOL = "transfer_to_human_agents"
_STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
# Reads whose names say so; used only for a domain the environment kernel does not know.
_READ_PREFIXES = ("get_", "find_", "list_", "search_", "calculate", "think", "transfer_")
# Phrases of a customer service agent, not a customer: a user simulator that says them swapped roles.
_AGENT_PHRASES = ("how can i help you", "how may i help you", "how can i assist you", "how may i assist you")


@cache
def _write_tools(domain: str) -> frozenset[str] | None:
    """Names of the tools of ``domain`` that change the database, or None for an unknown domain."""
    if domain not in DOMAINS:
        return None
    return frozenset(name for name, tool in get_domain(domain).tools.items() if tool.mutates)


def _is_write(domain: str, name: str) -> bool:
    writes = _write_tools(domain)
    return name in writes if writes is not None else not name.startswith(_READ_PREFIXES)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _one_line(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _normal(text: str) -> str:
    for token in _STOP_TOKENS:
        text = text.replace(token, " ")
    return " ".join(text.lower().split())


class _View:
    """What ``diagnose`` needs from one conversation's messages."""

    def __init__(self, result: ConversationResult) -> None:
        self.result = result
        self.messages = result.messages
        outputs = {m.get("tool_call_id"): _text(m) for m in self.messages if m.get("role") == "tool"}
        self.calls: list[tuple[str, bool, str]] = []  # (name, error, output) of every agent tool call
        for m in self.messages:
            if m.get("role") != "assistant":
                continue
            for call in m.get("tool_calls") or []:
                function = call.get("function") or {}
                output = outputs.get(call.get("id"), "")
                self.calls.append((str(function.get("name", "")), output.startswith("Error:"), output))
        self.writes_ok = sum(not error and _is_write(result.domain, name) for name, error, _ in self.calls)
        self.writes_tried = sum(_is_write(result.domain, name) for name, _, _ in self.calls)

    def agent_texts(self) -> list[str]:
        """The agent's spoken messages (no tool calls), in order."""
        return [_text(m) for m in self.messages if m.get("role") == "assistant" and not m.get("tool_calls")]

    def last(self, role: str) -> str:
        for m in reversed(self.messages):
            if m.get("role") == role and _text(m).strip():
                return _text(m)
        return ""

    def failures(self) -> str:
        return ", ".join(self.result.failures)


def _user_off_script(view: _View) -> str | None:
    """The clear signs that the user simulator left its script, as an excerpt; None if none."""
    r = view.result
    if r.termination in ("max_turns", "context_limit") and r.reward.total == 1.0:
        return f"goal reached but the user never wrote ###STOP###: {view.last('user')}"
    if r.termination == "out_of_scope":
        return f"user ended out of scope: {view.last('user')}"
    if r.termination == "transfer" and not any(name == _TRANSFER_TOOL for name, _, _ in view.calls):
        return f"user wrote ###TRANSFER### though the agent did not transfer: {view.last('user')}"
    spoken: list[str] = []  # the agent's spoken messages so far, normalized
    agent_turns = 0
    for m in view.messages:
        role, text = m.get("role"), _text(m)
        if role == "assistant":
            if text.strip():
                spoken.append(_normal(text))
            agent_turns += 1
            continue
        if role != "user":
            continue
        said = _normal(text)
        if not said and "###" not in text:
            return "user said nothing"
        if said and any(said == a or (len(a) >= 20 and a in said) or (len(said) >= 30 and said in a) for a in spoken):
            return f"user echoed the agent: {text}"
        if any(phrase in said for phrase in _AGENT_PHRASES):
            return f"user spoke as the agent: {text}"
    # agent_turns counts the greeting: a stop after at most one real agent turn left it no chance to write
    if r.termination == "user_stop" and r.w > 0 and not view.writes_ok and agent_turns <= 2:
        return f"user stopped before the agent could act: {view.last('user')}"
    return None


def _stopped_on_question(view: _View) -> str | None:
    """The user wrote ###STOP### in answer to the agent's question, before a needed write succeeded."""
    r = view.result
    if r.termination != "user_stop" or r.w == 0 or view.writes_ok:
        return None
    spoken = view.agent_texts()
    question = spoken[-1].strip() if spoken else ""
    if question.endswith("?") and "anything else" not in question.lower():
        return f"user stopped on the agent's question: {question}"
    return None


def _goal_failed(r: ConversationResult) -> bool:
    return r.reward.goal_state < 1.0 or any(f.startswith(_GOAL_FAILURES) for f in r.failures)


def explain(result: ConversationResult) -> tuple[str, str] | None:
    """``(cause, excerpt)`` of a dropped conversation, None for a passed one.

    The excerpt is the most telling text (a user message, the last agent message, a tool error or
    the failure strings) as it was, neither put on one line nor cut.
    """
    if result.passed:
        return None
    r, view = result, _View(result)
    t = r.termination
    if t in ("backend_error", "kernel_error"):
        errors = [output for _, error, output in view.calls if error]
        if t == "kernel_error" and errors:
            return t, errors[-1]
        return t, f"after {r.turns} turns, last agent message: {view.last('assistant')}"
    if t in ("unparseable_turn", "empty_turn"):
        return "agent_format", view.last("assistant") or f"{t} after {r.turns} turns"
    if t == "truncated_turn":
        return "agent_truncated", view.last("assistant") or f"truncated after {r.turns} turns"
    off_script = _user_off_script(view)
    if off_script is not None:
        return "user_off_script", off_script
    if t == "context_limit":
        return "context_limit", f"{r.turns} turns: {view.last('assistant')}"
    if not view.calls and r.w > 0:
        return "agent_no_tools", f"last agent message: {view.last('assistant')}"
    if t == "max_turns":
        return "turn_limit", f"{r.turns} turns: {view.last('assistant')}"
    if t == "max_errors":
        errors = [f"{name}: {output}" for name, error, output in view.calls if error]
        return "tool_errors", errors[-1] if errors else view.failures()
    if t == "dead_state":  # a write left the states the gold writes can reach (dead_state.mode = stop)
        return "wrong_write", view.failures() or f"dead state after {r.turns} turns"
    stopped = _stopped_on_question(view)
    if stopped is not None:
        return "user_off_script", stopped
    if _goal_failed(r):
        cause = "wrong_write" if view.writes_ok else "missing_write"
        return cause, view.failures() or f"{view.writes_tried} write calls, none succeeded"
    if r.reward.evidence < 1.0 or any(f.startswith("evidence_not_read") for f in r.failures):
        return "evidence_not_read", view.failures()
    if r.reward.outputs < 1.0 or "missing_output" in r.failures:
        return "missing_output", f"missing_output; last agent message: {view.last('assistant')}"
    if "ungrounded" in r.failures:
        return "ungrounded", ", ".join(r.ungrounded)
    return "other", f"{t}: {view.failures() or view.last('assistant')}"


def diagnose(result: ConversationResult) -> str | None:
    """The one cause (a key of ``CAUSES``) why ``result`` was dropped; None when it passed."""
    explained = explain(result)
    return explained[0] if explained else None


def summarize_causes(results: Sequence[ConversationResult]) -> list[dict[str, Any]]:
    """The dropped conversations of ``results`` by cause, commonest first (ties in ``CAUSES`` order).

    Each row: ``cause``, ``count``, ``share`` (of the dropped conversations), ``advice`` and
    ``example`` (``{"conversation_id", "excerpt"}`` of the first such conversation, the excerpt
    on one line and at most ``EXCERPT_CHARS`` characters).
    """
    counts: Counter[str] = Counter()
    examples: dict[str, dict[str, str]] = {}
    for result in results:
        explained = explain(result)
        if explained is None:
            continue
        cause, excerpt = explained
        counts[cause] += 1
        examples.setdefault(cause, {"conversation_id": result.conversation_id, "excerpt": _one_line(excerpt)})
    dropped = sum(counts.values())
    order = list(CAUSES)
    return [
        {
            "cause": cause,
            "count": n,
            "share": n / dropped,
            "advice": CAUSES[cause],
            "example": examples[cause],
        }
        for cause, n in sorted(counts.items(), key=lambda kv: (-kv[1], order.index(kv[0])))
    ]
