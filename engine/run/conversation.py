"""One simulated conversation: agent turns, user turns and tool calls against the kernel.

A ``Conversation`` is a small state machine. It says which role speaks next and builds that
role's request (the agent sees the policy, the tools and the whole exchange; the user simulator
sees its instruction and only the spoken messages, with roles swapped); it applies completions,
runs tool calls in-process on its own kernel state, and records why it stopped.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

from engine.backends.base import Completion, Constraint, Request, SamplingParams
from engine.run.records import TokenCounts
from engine.run.verify import CallRecord
from engine.tasks.model import Task
from envs import Domain, State

__all__ = ["GREETING", "STOP_TOKENS", "Conversation"]

GREETING = "Hi! How can I help you today?"
STOP_TOKENS = {
    "###STOP###": "user_stop",
    "###TRANSFER###": "transfer",
    "###OUT-OF-SCOPE###": "out_of_scope",
}

AGENT_PREAMBLE = (
    "You are a customer service agent. Help the customer according to the policy below. "
    "In each turn either write a message to the customer or make exactly one tool call. "
    "Do not make up information the tools do not give you.\n\n# Policy\n\n"
)
USER_PREAMBLE = (
    "You are playing a customer talking to a customer service agent. Stay in character and "
    "follow the instruction below; never say you are an AI. Write only what the customer says, "
    "one message at a time. When everything you wanted is done, or cannot be done, write "
    "###STOP### on its own. If you are transferred to a human agent, write ###TRANSFER###.\n\n"
    "# Instruction\n\n"
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
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": AGENT_PREAMBLE + policy},
            {"role": "assistant", "content": GREETING},
        ]
        self.user_system = USER_PREAMBLE + task.instruction
        self.calls: list[CallRecord] = []
        self.next_role = "user"
        self.termination: str | None = None
        self.errors_in_a_row = 0
        self.n_calls = 0
        self.tokens: dict[str, int] = dict.fromkeys(TokenCounts.__struct_fields__, 0)
        self.started = time.perf_counter()
        self.seconds = 0.0

    # -- requests ------------------------------------------------------------------------------
    def _seed(self) -> int:
        """A per-turn seed: the same conversation and step always sample the same way."""
        return zlib.crc32(f"{self.seed}:{self.conversation_id}:{len(self.messages)}".encode())

    def request(self) -> Request:
        """The request for whichever role speaks next."""
        step = len(self.messages)
        if self.next_role == "agent":
            return Request(
                request_id=f"{self.conversation_id}/a{step}",
                messages=self.messages,
                tools=self.tools,
                sampling=self.agent_sampling,
                constraint=self.constraint,
                seed=self._seed(),
            )
        return Request(
            request_id=f"{self.conversation_id}/u{step}",
            messages=self._user_view(),
            sampling=self.user_sampling,
            seed=self._seed(),
        )

    def _user_view(self) -> list[dict[str, Any]]:
        """The exchange as the user simulator sees it: spoken messages only, roles swapped."""
        view: list[dict[str, Any]] = [{"role": "system", "content": self.user_system}]
        for m in self.messages[1:]:
            if m["role"] == "assistant" and m.get("content") and not m.get("tool_calls"):
                view.append({"role": "user", "content": m["content"]})
            elif m["role"] == "user":
                view.append({"role": "assistant", "content": m["content"]})
        return view

    # -- completions ---------------------------------------------------------------------------
    def apply(self, completion: Completion) -> None:
        """Take the next role's completion and advance the conversation."""
        role = self.next_role
        prefix = "agent" if role == "agent" else "user"
        self.tokens[f"{prefix}_prompt"] += completion.prompt_tokens
        self.tokens[f"{prefix}_cached"] += completion.cached_tokens
        self.tokens[f"{prefix}_completion"] += completion.completion_tokens
        if completion.error:
            error = completion.error.lower()
            too_long = "context" in error or "n_ctx" in error or "too long" in error
            self._finish("context_limit" if too_long else "backend_error")
            return
        if role == "agent":
            self._apply_agent(completion)
        else:
            self._apply_user(completion.text)
        if self.termination is None:
            if len(self.messages) >= self.max_steps:
                self._finish("max_turns")
            elif completion.prompt_tokens + self._sampling().max_tokens > self.max_context_tokens:
                self._finish("context_limit")

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
            tool = self.domain.tools.get(call.name)
            try:
                arguments = json.loads(call.arguments)
            except ValueError:
                arguments = {"_raw": call.arguments}
            self.calls.append(
                CallRecord(
                    name=call.name,
                    arguments=arguments if isinstance(arguments, dict) else {"_raw": arguments},
                    output=result.output,
                    error=result.error,
                    write=tool is not None and tool.mutates,
                )
            )
            results.append({"role": "tool", "tool_call_id": call_id, "name": call.name, "content": result.output})
            self.errors_in_a_row = self.errors_in_a_row + 1 if result.error else 0
        self.messages.append({"role": "assistant", "content": content.strip(), "tool_calls": tool_calls})
        self.messages.extend(results)
        if any(c.name == "transfer_to_human_agents" for c in completion.tool_calls):
            self._finish("transfer")
        elif self.errors_in_a_row >= self.max_errors:
            self._finish("max_errors")

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
