"""The user simulator's side of a conversation: its prompt, its default sampling, what it sees,
the turn limit a run gives a task, and the agent's message after a transfer."""

from __future__ import annotations

import json

import pytest

from engine.backends.base import Completion, SamplingParams, ToolCall
from engine.run.config import parse_run_config
from engine.run.conversation import Conversation, user_view
from engine.tasks.model import Task
from engine.tasks.synthesis import synthesize
from envs import BaseDB, get_domain

AGENT = {"backend": "llamacpp", "model": "m.gguf"}


@pytest.fixture(scope="module")
def airline_tasks(tau2_bases: dict[str, BaseDB]) -> list[Task]:
    return synthesize("airline", tau2_bases["airline"], 40, seed=2)[0]


def _conversation(task: Task, base: BaseDB, max_steps: int = 60) -> Conversation:
    sampling = SamplingParams()
    return Conversation(
        conversation_id="c#0", task=task, attempt=0, seed=0, domain=get_domain(task.domain), state=base.new_state(),
        policy="(policy)", tools=get_domain(task.domain).openai_tools(), constraint=None, agent_sampling=sampling,
        user_sampling=sampling, max_steps=max_steps, max_errors=4, max_context_tokens=1 << 30,
    )  # fmt: skip


def test_user_prompt_holds_tau2_principles_and_every_stop_token(
    airline_tasks: list[Task], tau2_bases: dict[str, BaseDB]
) -> None:
    prompt = _conversation(airline_tasks[0], tau2_bases["airline"]).user_system
    lowered = prompt.lower()
    for token in ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"):
        assert token in prompt
    assert "never invent" in lowered  # no made-up facts
    assert "you do not know" in lowered or "say you do not know" in lowered  # unknown stays unknown
    assert "own words" in lowered  # paraphrase, do not recite
    assert "a little at a time" in lowered  # progressive disclosure
    assert "never the agent" in lowered and "repeat the agent" in lowered  # no echo of the greeting
    assert airline_tasks[0].instruction in prompt


def test_user_scenario_says_what_the_user_knows_wants_and_does_not_know(airline_tasks: list[Task]) -> None:
    for task in airline_tasks:
        text = task.instruction
        known, wants, unknown = (text.index(h) for h in ("What you know:", "What you want", "What you do not know:"))
        assert known < wants < unknown
        for fact in task.facts.known:
            assert fact in text[known:wants]


def test_default_user_temperature_is_greedy_like_tau2() -> None:
    config = parse_run_config({"agent": AGENT})
    assert config.user_sampling.temperature == 0.0


def test_default_turn_limit_scales_with_the_task(airline_tasks: list[Task]) -> None:
    from engine.tasks.turns import turn_limit

    config = parse_run_config({"agent": AGENT})
    assert config.limits.max_steps is None  # unset: each task gets turn_limit(task)
    assert parse_run_config({"agent": AGENT, "limits": {"max_steps": 30}}).limits.max_steps == 30
    for task in airline_tasks:
        gold = 2 + 2 * (task.w + task.e)  # system, greeting, and a call + result per gold call
        assert turn_limit(task) >= gold + 2 * task.w + 2 * len(task.intents)
    big = max(airline_tasks, key=lambda t: t.w + t.e)
    assert turn_limit(big) > 40 or big.w + big.e < 14


def test_user_never_sees_tool_traffic(airline_tasks: list[Task], tau2_bases: dict[str, BaseDB]) -> None:
    base = tau2_bases["airline"]
    task = airline_tasks[0]
    conv = _conversation(task, base)
    conv.apply(Completion(request_id="u", text="Hi, I need help."))
    read = task.evidence[0]
    call = ToolCall(name=read.name, arguments=json.dumps(read.arguments))
    conv.apply(Completion(request_id="a", text="Let me look.", tool_calls=[call]))
    conv.apply(Completion(request_id="a", text="I found your booking."))
    view = conv.request().messages
    assert [m["role"] for m in view] == ["system", "user", "assistant", "user"]
    assert not any("tool_calls" in m or m["role"] == "tool" for m in view)
    tool_output = conv.messages[-2]["content"]
    assert all(tool_output not in m["content"] for m in view[1:])
    assert view == user_view(conv.user_system, conv.messages)


def test_the_message_after_a_transfer_is_part_of_the_conversation(
    airline_tasks: list[Task], tau2_bases: dict[str, BaseDB]
) -> None:
    conv = _conversation(airline_tasks[0], tau2_bases["airline"])
    conv.apply(Completion(request_id="u", text="I want a human."))
    call = ToolCall(name="transfer_to_human_agents", arguments=json.dumps({"summary": "wants a human"}))
    conv.apply(Completion(request_id="a", text="", tool_calls=[call]))
    assert not conv.done and conv.next_role == "agent"
    said = "You are being transferred to a human agent. Please hold on."
    conv.apply(Completion(request_id="a", text=said))
    assert conv.termination == "transfer"
    assert conv.messages[-1] == {"role": "assistant", "content": said}
    assert [m["role"] for m in conv.messages[-3:]] == ["assistant", "tool", "assistant"]
