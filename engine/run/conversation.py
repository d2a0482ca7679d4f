"""One simulated conversation: agent turns, user turns and tool calls against the kernel.

A ``Conversation`` is a small state machine. It says which role speaks next and builds that
role's request (the agent sees the policy, the tools and the whole exchange; the user simulator
sees its instruction and only the spoken messages, with roles swapped); it applies completions,
runs tool calls in-process on its own kernel state, and records why it stopped. A bad sample
(an agent turn that does not parse, is cut off at ``max_tokens`` or is empty; an empty user turn)
is not the end: the same role is asked again with a new seed, at most ``max_retries`` times.

Dead states (``engine.run.reach``): given the task's reachable hashes, every successful write is
checked. ``dead_state = "shadow"`` only notes the first dead turn (``dead_at``); ``"stop"`` ends the
conversation with ``dead_state``, or, while ``max_branches`` allows, rewinds state and messages to
just before the agent turn that made the dead write and samples that turn again on a new branch
(``branch_path``: the (step, branch) pairs whose seeds differ from an unbranched run's).

After a ``transfer_to_human_agents`` call the agent speaks once more (the message its policy asks
for) and the conversation ends there, with that message in it.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from typing import Any

import msgspec

from engine.backends.base import Completion, Constraint, Request, SamplingParams
from engine.records import TokenCounts
from engine.run.user_prompt import user_system
from engine.run.verify import CallRecord
from engine.tasks.model import Task
from envs import Domain, State

__all__ = ["GREETING", "SPOKEN_MARKUP", "STOP_TOKENS", "Conversation", "user_view"]

log = logging.getLogger("writ.run")

GREETING = "Hi! How can I help you today?"
STOP_TOKENS = {
    "###STOP###": "user_stop",
    "###TRANSFER###": "transfer",
    "###OUT-OF-SCOPE###": "out_of_scope",
}
# Markup that never belongs in a spoken message: a user turn is cut where one begins.
SPOKEN_MARKUP = ("<tool_call>", "</tool_call>", "<tool_response>", "<|", "[TOOL_CALLS]")
# A retried turn samples at least this hot, so a greedy role does not draw the same sample again.
RETRY_TEMPERATURE = 0.7

AGENT_PREAMBLE = (
    "You are a customer service agent. Help the customer according to the policy below. "
    "In each turn either write a message to the customer or make exactly one tool call. "
    "Do not make up information the tools do not give you.\n\n# Policy\n\n"
)


class Conversation:
    """The live state of one conversation between the agent, the user simulator and the kernel."""

    def __init__(
        self,
        conversation_id: str,
        task: Task,
        attempt: int,
        seed: int,
        domain: Domain,
        state: State,
        policy: str,
        tools: list[dict[str, Any]],
        constraint: Constraint | None,
        agent_sampling: SamplingParams,
        user_sampling: SamplingParams,
        max_steps: int,
        max_errors: int,
        max_context_tokens: int,
        max_retries: int = 2,
        reachable: frozenset[int] | None = None,
        dead_state: str = "off",
        max_branches: int = 0,
        branch_path: list[tuple[int, int]] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.task = task
        self.attempt = attempt
        self.seed = seed
        self.domain = domain
        self.state = state
        self.tools = tools
        self.constraint = constraint
        self.agent_sampling = agent_sampling
        self.user_sampling = user_sampling
        self.max_steps = max_steps
        self.max_errors = max_errors
        self.max_context_tokens = max_context_tokens
        self.max_retries = max_retries
        self.retry = 0  # how many times the current turn was sampled again
        self.retried_turns = 0  # retries over the whole conversation
        self.kernel_fault: str | None = None
        self._spoken = {"agent": False, "user": False}  # whether the role had a turn (cache stats)
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": AGENT_PREAMBLE + policy},
            {"role": "assistant", "content": GREETING},
        ]
        self.user_system = user_system(task.instruction)
        self.transferred = False  # the agent called transfer_to_human_agents: one more agent message
        self.calls: list[CallRecord] = []
        self.next_role = "user"
        self.termination: str | None = None
        self.errors_in_a_row = 0
        self.n_calls = 0
        self.tokens: dict[str, int] = dict.fromkeys(TokenCounts.__struct_fields__, 0)
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.reachable = reachable if dead_state != "off" else None
        self.dead_state = dead_state
        self.max_branches = max_branches
        self.branch_path: list[tuple[int, int]] = list(branch_path or [])
        self.dead_at: int | None = None  # the step of the first agent turn that made a dead write
        self.abandoned: dict[str, int] = dict.fromkeys(TokenCounts.__struct_fields__, 0)
        self._checkpoint: tuple[Any, ...] | None = None

    # -- requests ------------------------------------------------------------------------------
    def _seed(self) -> int:
        """A per-turn seed: the same conversation, step and retry always sample the same way."""
        step = len(self.messages)
        retry = f":r{self.retry}" if self.retry else ""
        branch = "".join(f":b{at}.{b}" for at, b in self.branch_path if at <= step)
        return zlib.crc32(f"{self.seed}:{self.conversation_id}:{step}{retry}{branch}".encode())

    def request(self) -> Request:
        """The request for whichever role speaks next."""
        step = len(self.messages)
        suffix = f".r{self.retry}" if self.retry else ""
        sampling = self._sampling()
        if self.retry and sampling.temperature < RETRY_TEMPERATURE:
            sampling = msgspec.structs.replace(sampling, temperature=RETRY_TEMPERATURE)
        if self.next_role == "agent":
            return Request(
                request_id=f"{self.conversation_id}/a{step}{suffix}",
                messages=self.messages,
                tools=self.tools,
                sampling=sampling,
                constraint=self.constraint,
                seed=self._seed(),
            )
        return Request(
            request_id=f"{self.conversation_id}/u{step}{suffix}",
            messages=user_view(self.user_system, self.messages),
            sampling=sampling,
            seed=self._seed(),
        )

    # -- completions ---------------------------------------------------------------------------
    def apply(self, completion: Completion) -> None:
        """Take the next role's completion and advance the conversation (or ask again)."""
        role = self.next_role
        if role == "agent" and self.retry == 0 and self.reachable is not None:
            self._checkpoint = (
                self.state.snapshot(), len(self.messages), len(self.calls), self.n_calls,
                self.errors_in_a_row, dict(self.tokens), dict(self._spoken), self.retried_turns,
            )  # fmt: skip
        self._count(role, completion)
        if completion.error and _too_long(completion.error):
            self._finish("context_limit")
            return
        problem = self._bad_turn(role, completion)
        if problem is not None:
            if problem != "backend_error" and self.retry < self.max_retries:
                self.retry += 1
                self.retried_turns += 1
                return
            self._finish(problem)
            return
        self.retry = 0
        if role == "agent":
            self._apply_agent(completion)
            if self.termination is None and self._went_dead():
                return
        else:
            self._apply_user(_spoken(completion.text))
        if self.termination is None:
            if len(self.messages) >= self.max_steps:
                self._finish("transfer" if self.transferred else "max_turns")
            elif completion.prompt_tokens + self._sampling().max_tokens > self.max_context_tokens:
                self._finish("context_limit")

    def _count(self, role: str, completion: Completion) -> None:
        prefix = "agent" if role == "agent" else "user"
        self.tokens[f"{prefix}_prompt"] += completion.prompt_tokens
        self.tokens[f"{prefix}_cached"] += completion.cached_tokens
        self.tokens[f"{prefix}_completion"] += completion.completion_tokens
        if self._spoken[prefix]:  # a later turn: its prompt extends one already sent
            self.tokens[f"{prefix}_prompt_later"] += completion.prompt_tokens
            self.tokens[f"{prefix}_cached_later"] += completion.cached_tokens
        self._spoken[prefix] = True

    @staticmethod
    def _bad_turn(role: str, completion: Completion) -> str | None:
        """Why a completion cannot be used as this role's turn (a termination name), or None."""
        if completion.error:
            if completion.completion_tokens == 0 or role != "agent":
                return "backend_error"  # the engine failed; no sample to retry
            return "truncated_turn" if completion.finish_reason == "length" else "unparseable_turn"
        if role == "agent" and completion.tool_calls:
            return None
        text = completion.text if role == "agent" else _spoken(completion.text)
        if not text.strip():
            return "empty_turn"
        if role == "agent" and completion.finish_reason == "length":
            return "truncated_turn"
        return None

    def _sampling(self) -> SamplingParams:
        return self.agent_sampling if self.next_role == "agent" else self.user_sampling

    def _apply_user(self, text: str) -> None:
        text = text.strip()
        for token, reason in STOP_TOKENS.items():
            if token in text:
                self.messages.append({"role": "user", "content": text})
                self._finish(reason)
                return
        self.messages.append({"role": "user", "content": text})
        self.next_role = "agent"

    def _apply_agent(self, completion: Completion) -> None:
        content = completion.text if not completion.tool_calls else _content_before_calls(completion.text)
        if not completion.tool_calls:
            self.messages.append({"role": "assistant", "content": content.strip()})
            self.next_role = "user"
            if self.transferred:  # the message the policy asks for after the transfer call
                self._finish("transfer")
            return
        tool_calls = []
        results = []
        for call in completion.tool_calls:
            self.n_calls += 1
            call_id = f"call_{self.n_calls}"
            tool_calls.append(
                {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            )
            result = self.domain.call(self.state, call.name, call.arguments)
            fault = getattr(result, "fault", None)
            if fault is not None:  # a bug in a tool body, not a refusal: never training data
                log.error("kernel fault in %s: %s(%s): %s", self.conversation_id, call.name, call.arguments, fault)
                self.kernel_fault = f"{call.name}: {fault}"
            tool = self.domain.tools.get(call.name)
            self.calls.append(
                CallRecord(
                    name=call.name,
                    arguments=_recorded_arguments(call.arguments),
                    output=result.output,
                    error=result.error,
                    write=tool is not None and tool.mutates,
                )
            )
            results.append({"role": "tool", "tool_call_id": call_id, "name": call.name, "content": result.output})
            self.errors_in_a_row = self.errors_in_a_row + 1 if result.error else 0
        self.messages.append({"role": "assistant", "content": content.strip(), "tool_calls": tool_calls})
        self.messages.extend(results)
        if self.kernel_fault is not None:
            self._finish("kernel_error")
        elif self.transferred:
            self._finish("transfer")  # a call instead of the closing message: the conversation still ends
        elif any(c.name == "transfer_to_human_agents" for c in completion.tool_calls):
            self.transferred = True  # the agent speaks once more (the transfer message), then it ends
        elif self.errors_in_a_row >= self.max_errors:
            self._finish("max_errors")

    def _went_dead(self) -> bool:
        """After an agent turn: whether a write of it left the reachable set and the turn was
        rewound for a new branch or the conversation stopped (True), or it goes on (False)."""
        if self._checkpoint is None or self.state.hash() in self.reachable:  # type: ignore[operator]
            return False
        (snapshot, step, n_records, n_calls, errors, tokens, spoken, retried) = self._checkpoint
        self._checkpoint = None
        if self.dead_at is None:
            self.dead_at = step
        if self.dead_state != "stop":
            return False
        if len(self.branch_path) >= self.max_branches:
            self._finish("dead_state")
            return True
        # Rewind to just before this agent turn; the user simulator never saw it.
        for key, value in self.tokens.items():
            self.abandoned[key] += value - tokens[key]
        self.state = State.restore(self.state.base, snapshot)
        del self.messages[step:]
        del self.calls[n_records:]
        self.n_calls, self.errors_in_a_row, self.retried_turns = n_calls, errors, retried
        self.tokens, self._spoken = tokens, spoken
        self.branch_path.append((step, len(self.branch_path) + 1))
        self.dead_at = None
        self.next_role = "agent"
        return True

    def _finish(self, reason: str) -> None:
        self.termination = reason
        self.seconds = time.perf_counter() - self.started

    @property
    def done(self) -> bool:
        """Whether the conversation has ended."""
        return self.termination is not None

    def token_counts(self) -> TokenCounts:
        """Tokens spent so far, per role."""
        return TokenCounts(**self.tokens)


def _content_before_calls(text: str) -> str:
    """The free text a model wrote before its tool-call block (usually empty).

    Backends that parse calls server-side return only the message content, with no block in it.
    """
    for marker in ("<tool_call>", '{"name"'):
        at = text.find(marker)
        if at >= 0:
            return text[:at]
    return text


def _too_long(error: str) -> bool:
    error = error.lower()
    return "context" in error or "n_ctx" in error or "too long" in error


def _spoken(text: str) -> str:
    """A user turn's text up to the first markup that never belongs in speech (role tags, calls)."""
    cut = len(text)
    for marker in SPOKEN_MARKUP:
        at = text.find(marker)
        if 0 <= at < cut:
            cut = at
    return text[:cut].strip()


def user_view(user_system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The exchange as the user simulator sees it: its instruction, then spoken messages only,
    roles swapped (the agent's words are the "user" turns of the simulator's chat)."""
    view: list[dict[str, Any]] = [{"role": "system", "content": user_system}]
    for m in messages[1:]:
        if m["role"] == "assistant" and m.get("content") and not m.get("tool_calls"):
            view.append({"role": "user", "content": m["content"]})
        elif m["role"] == "user":
            view.append({"role": "assistant", "content": m["content"]})
    return view


def _recorded_arguments(text: str) -> dict[str, Any]:
    """A call's arguments as verification reads them; ``{"_raw": text}`` when they are not a
    storable JSON object (bad JSON, nesting past Python's recursion limit, lone surrogates)."""
    try:
        arguments = json.loads(text)
        if isinstance(arguments, dict):
            msgspec.json.encode(arguments)  # refuses lone surrogates, which results could not store
            return arguments
    except (ValueError, RecursionError, TypeError, UnicodeEncodeError, msgspec.EncodeError):
        pass
    return {"_raw": text}
