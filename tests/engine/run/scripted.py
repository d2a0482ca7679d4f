"""Scripted roles for conversation tests: a gold agent and a user that follows its instruction.

These drive ``engine.run.conversation.Conversation`` directly with hand-made ``Completion`` objects:
no model and no backend, so a hundred conversations take a fraction of a second. They are test
helpers only (never a backend a run could select).

The gold agent makes each distinct evidence read of the task once (one tool call per turn), asks
the user to confirm before an intent's writes, makes them, then tells the user the intent's
required outputs; for a refusal intent it makes the reads and declines. The user opens with its
wants, confirms when asked and writes ``###STOP###`` when the agent asks whether there is anything
else.
"""

from __future__ import annotations

import json
from typing import Any

from engine.backends.base import Completion, SamplingParams, ToolCall
from engine.run.config import parse_run_config
from engine.run.conversation import Conversation
from engine.run.verify import Verdict, verify
from engine.tasks.model import Task
from envs import BaseDB, get_domain

CONFIRM = "Shall I go ahead?"
ANYTHING_ELSE = "Is there anything else I can help you with?"


def gold_agent_script(task: Task) -> list[Any]:
    """The gold agent's turns, in order: ``(name, arguments)`` for a tool call, ``str`` for a message."""
    turns: list[Any] = []
    done: set[str] = set()
    for n, intent in enumerate(task.intents):
        for r in intent.reads:
            if r.key() not in done:
                done.add(r.key())
                turns.append((r.name, r.arguments))
        last = n == len(task.intents) - 1
        closing = ANYTHING_ELSE if last else "Let us go on with your next request."
        if not intent.actions:
            turns.append(f"I am sorry, our policy does not allow that request. {closing}")
            continue
        turns.append(f"I can do that for you: {intent.kind.replace('_', ' ')}. {CONFIRM}")
        turns += [(a.name, a.arguments) for a in intent.actions]
        said = ", ".join(intent.outputs)
        turns.append(f"Done. {('The amounts: ' + said + '. ') if said else ''}{closing}")
    return turns


def scripted_user(task: Task, agent_said: str) -> str:
    """The user's reply to the agent's last message, following the task's instruction."""
    if agent_said.endswith(ANYTHING_ELSE) or "anything else" in agent_said.lower():
        return "No, that is all. ###STOP###"
    if CONFIRM in agent_said:
        return "Yes, please go ahead."
    if agent_said.startswith("Let us go on"):
        return "Sure."
    return "Hello. " + " ".join(task.facts.known + task.facts.wants)


def default_limit(task: Task) -> int:
    """The turn limit a run with the default config gives ``task``."""
    configured = parse_run_config({"agent": {"backend": "llamacpp"}}).limits.max_steps
    if configured is not None:
        return configured
    from engine.tasks.turns import turn_limit

    return turn_limit(task)


def play_gold(task: Task, base: BaseDB, max_steps: int | None = None) -> tuple[Conversation, Verdict]:
    """One conversation of ``task`` with the gold agent and the scripted user; and its verdict."""
    domain = get_domain(task.domain)
    sampling = SamplingParams()
    conv = Conversation(
        conversation_id=f"{task.task_id}#0", task=task, attempt=0, seed=0, domain=domain,
        state=base.new_state(), policy="(policy)", tools=domain.openai_tools(), constraint=None,
        agent_sampling=sampling, user_sampling=sampling, max_steps=max_steps or default_limit(task),
        max_errors=4, max_context_tokens=1 << 30,
    )  # fmt: skip
    script = iter(gold_agent_script(task))
    while not conv.done:
        request = conv.request()
        if conv.next_role == "agent":
            turn = next(script, ANYTHING_ELSE)
            if isinstance(turn, str):
                completion = Completion(request_id=request.request_id, text=turn)
            else:
                call = ToolCall(name=turn[0], arguments=json.dumps(turn[1]))
                completion = Completion(request_id=request.request_id, text="", tool_calls=[call])
        else:
            heard = [m["content"] for m in request.messages if m["role"] == "user"]
            completion = Completion(request_id=request.request_id, text=scripted_user(task, heard[-1]))
        conv.apply(completion)
    texts = [m["content"] for m in conv.messages if m["role"] == "assistant" and m.get("content")]
    return conv, verify(task, conv.state.hash_hex(), conv.calls, texts)
