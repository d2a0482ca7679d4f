"""Records a run writes: one ``ConversationResult`` per finished conversation, SFT trajectories.

``results.jsonl`` in a run directory holds every finished conversation (passed or not), one
fsynced JSON line each, and is the run's source of truth; ``trajectories.jsonl`` holds the
passing ones as SFT records (see ``engine.export``). Messages are OpenAI chat messages: tool calls
carry ``arguments`` as a JSON string (see ``engine.export`` for why).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "NATURAL_ENDS",
    "TERMINATIONS",
    "ConversationResult",
    "RewardParts",
    "TokenCounts",
    "decode_result",
    "encode_result",
]

TERMINATIONS = (
    "user_stop",  # the user simulator wrote ###STOP###
    "transfer",  # the agent transferred to a human (tool call) or the user wrote ###TRANSFER###
    "out_of_scope",  # the user wrote ###OUT-OF-SCOPE###
    "max_turns",  # the turn limit was reached
    "max_errors",  # too many tool errors in a row
    "context_limit",  # the conversation no longer fits the model's context
    "backend_error",  # the backend failed on this conversation
    "unparseable_turn",  # an agent turn was neither plain text nor a tool call writ could parse
    "truncated_turn",  # an agent turn hit agent_sampling.max_tokens before it ended
    "empty_turn",  # an agent turn had no text and no tool call
    "kernel_error",  # a tool body raised an unexpected exception (a bug in the environment, not the agent)
    "dead_state",  # a write left every state the gold writes can reach (dead_state.mode = "stop")
)

NATURAL_ENDS = frozenset({"user_stop", "transfer", "out_of_scope"})
"""Terminations that end a conversation on its own terms; only these can pass verification."""


class RewardParts(msgspec.Struct, kw_only=True, frozen=True):
    """Each verification check (1.0 pass, 0.0 fail) and their product ``total``."""

    goal_state: float
    outputs: float
    evidence: float
    total: float
    grounded: float = 1.0  # every fact the agent stated appeared before (engine.run.grounding); not in total


class TokenCounts(msgspec.Struct, kw_only=True, frozen=True):
    """Tokens the conversation cost, per role."""

    agent_prompt: int = 0
    agent_cached: int = 0
    agent_completion: int = 0
    user_prompt: int = 0
    user_cached: int = 0
    user_completion: int = 0
    # The same counts over each role's later turns only (all but its first request), where a
    # working prefix cache serves most of the prompt.
    agent_prompt_later: int = 0
    agent_cached_later: int = 0
    user_prompt_later: int = 0
    user_cached_later: int = 0


class ConversationResult(msgspec.Struct, kw_only=True, frozen=True):
    """One finished conversation: what was said, how it ended, and how it was verified."""

    conversation_id: str
    task_id: str
    attempt: int
    domain: str
    trajectory_type: str
    w: int
    e: int
    behavior: dict[str, Any]
    passed: bool
    reward: RewardParts
    failures: list[str]
    termination: str
    turns: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tokens: TokenCounts
    backend: str
    agent_model: str
    user_model: str
    seed: int
    final_hash: str
    seconds: float = 0.0
    retried_turns: int = 0  # turns sampled again after an unusable sample (see limits.max_retries)
    # Yield policies (engine.run.reach, engine.run.grounding): the step of the first agent turn
    # whose write left the gold-reachable states (None: never), the branches taken as (step,
    # branch) pairs, tokens spent on abandoned branches, and agent statements not grounded earlier.
    dead_at: int | None = None
    branch_path: list[tuple[int, int]] = msgspec.field(default_factory=list)
    abandoned_tokens: TokenCounts = msgspec.field(default_factory=TokenCounts)
    ungrounded: list[str] = msgspec.field(default_factory=list)
    # which policy and tool texts the agent saw: writ's or tau2's (engine.run.tau2_texts.texts_record)
    texts: dict[str, Any] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ConversationResult)


def encode_result(result: ConversationResult) -> bytes:
    """One result as a JSON line (no newline)."""
    return _encoder.encode(result)


def decode_result(line: bytes | str) -> ConversationResult:
    """Parse one results.jsonl line."""
    return _decoder.decode(line)
