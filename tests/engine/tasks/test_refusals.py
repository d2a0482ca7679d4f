"""Refusal tasks: the policy forbids the request, so the gold outcome is no write.

Gold replay leaves the DB as it was; tau2-bench's evaluator (an equivalent below, over the task as
exported and parsed by the strict copies of tau2's models) scores the no-write conversation 1.0
and one that performs the forbidden write 0; writ's verdict agrees with it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.run.verify import CallRecord, verify
from engine.tasks.config import TasksConfig
from engine.tasks.export_tau2 import to_tau2
from engine.tasks.model import Task
from engine.tasks.synthesis import synthesize
from envs import BaseDB, get_domain
from envs.kernel import tau2_db_hash
from tests.engine.tasks.test_tasks import _Tau2Task


@pytest.fixture(scope="module")
def refusals(tau2_bases: dict[str, BaseDB]) -> dict[str, tuple[list[Task], Any]]:
    out = {}
    for domain in ("airline", "retail"):
        tasks, report = synthesize(domain, tau2_bases[domain], 100, seed=21)
        out[domain] = ([t for t in tasks if t.w == 0], report)
    return out


def tau2_reward(task: Task, base: BaseDB, final_state: Any, messages: list[dict[str, Any]]) -> float:
    """tau2-bench's reward for a conversation: the DB check (final DB equals the DB the task's
    reference actions give) times the COMMUNICATE check, as its ``reward_basis`` asks."""
    parsed = _Tau2Task.model_validate(json.loads(json.dumps(to_tau2(task))))
    criteria = parsed.evaluation_criteria
    gold = base.new_state()
    for action in criteria.actions or []:
        get_domain(task.domain).call(gold, action.name, action.arguments)
    reward = 1.0
    if "DB" in criteria.reward_basis:
        reward *= float(tau2_db_hash(gold) == tau2_db_hash(final_state))
    if "COMMUNICATE" in criteria.reward_basis:
        said = [m["content"].lower().replace(",", "") for m in messages if m["role"] == "assistant" and m["content"]]
        reward *= float(all(any(info.lower() in s for s in said) for info in criteria.communicate_info or []))
    return reward


def test_refusals_have_their_own_accounting_and_share(refusals: dict[str, tuple[list[Task], Any]]) -> None:
    assert TasksConfig().refusal_share > 0
    for tasks, report in refusals.values():
        assert report.refusals == len(tasks) == round(100 * TasksConfig().refusal_share)
        for task in tasks:
            assert task.trajectory_type == "refusal" and task.actions == [] and task.outputs == []
            assert task.e == len(task.evidence) >= 1
            assert all(i.params.get("forbidden") for i in task.intents)
    kinds = {i.kind for tasks, _ in refusals.values() for t in tasks for i in t.intents}
    assert {"refuse_cancel", "refuse_other_user"} <= kinds


def test_gold_replay_leaves_the_db_unchanged(
    refusals: dict[str, tuple[list[Task], Any]], tau2_bases: dict[str, BaseDB]
) -> None:
    for domain, (tasks, _) in refusals.items():
        base = tau2_bases[domain]
        initial = base.new_state()
        assert tasks, f"no {domain} refusal tasks"
        for task in tasks:
            state = base.new_state()
            for action in to_tau2(task)["evaluation_criteria"]["actions"]:
                assert not get_domain(domain).call(state, action["name"], action["arguments"]).error
            assert tau2_db_hash(state) == tau2_db_hash(initial)
            assert state.hash_hex() == task.goal_hash == initial.hash_hex()


def _play(task: Task, base: BaseDB, forbidden_write: bool) -> tuple[Any, list[dict[str, Any]], Any]:
    """Reads, then (optionally) the forbidden write, then a closing message; the calls as the
    conversation records them."""
    from tests.engine.run.scripted import play_gold

    if forbidden_write:  # the same reads, then the write the customer asked for
        state = base.new_state()
        calls = []
        steps = [(r.name, r.arguments) for r in task.evidence]
        steps += [(i.params["forbidden"]["name"], i.params["forbidden"]["arguments"]) for i in task.intents]
        for name, args in steps:
            result = get_domain(task.domain).call(state, name, args)
            calls.append(CallRecord(name=name, arguments=args, output=result.output, error=result.error,
                                          write=get_domain(task.domain).tools[name].mutates))  # fmt: skip
        messages = [{"role": "assistant", "content": "Done, it is taken care of."}]
        return state, messages, calls
    conv, _ = play_gold(task, base)
    return conv.state, conv.messages, conv.calls


def test_tau2_scores_no_write_1_and_the_forbidden_write_0(
    refusals: dict[str, tuple[list[Task], Any]], tau2_bases: dict[str, BaseDB]
) -> None:
    for domain, (tasks, _) in refusals.items():
        base = tau2_bases[domain]
        assert tasks, f"no {domain} refusal tasks"
        for task in tasks:
            state, messages, calls = _play(task, base, forbidden_write=False)
            texts = [m["content"] for m in messages if m["role"] == "assistant" and m.get("content")]
            assert tau2_reward(task, base, state, messages) == 1.0
            assert verify(task, state.hash_hex(), calls, texts).passed
            state, messages, calls = _play(task, base, forbidden_write=True)
            assert not any(c.error for c in calls)  # the kernel lets the write through: only policy forbids it
            assert tau2_reward(task, base, state, messages) == 0.0
            verdict = verify(task, state.hash_hex(), calls, [messages[-1]["content"]])
            assert not verdict.passed and any(f.startswith("extra_write:") for f in verdict.failures)


def test_a_refusal_conversation_ends_on_the_users_stop(
    refusals: dict[str, tuple[list[Task], Any]], tau2_bases: dict[str, BaseDB]
) -> None:
    """The scripted oracle: reads, a refusal, the user's stop; no write."""
    from tests.engine.run.scripted import play_gold

    task = refusals["retail"][0][0]
    conv, verdict = play_gold(task, tau2_bases["retail"])
    assert conv.termination == "user_stop" and verdict.passed
    assert not any(c.write for c in conv.calls)
