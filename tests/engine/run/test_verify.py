"""Verification of scripted conversations: gold behaviour passes, each kind of mistake is named."""

from __future__ import annotations

import json
import random

import pytest

from engine.run.verify import CallRecord, verify
from engine.tasks.model import Action, Behavior, EvidenceRead, Intent, Task, UserFacts
from engine.tasks.synthesis import synthesize
from envs import BaseDB, State, get_domain

AIRLINE = get_domain("airline")


def _run(state: State, calls: list[tuple[str, dict]]) -> list[CallRecord]:
    records = []
    for name, args in calls:
        result = AIRLINE.call(state, name, args)
        records.append(
            CallRecord(name=name, arguments=args, output=result.output, error=result.error,
                       write=AIRLINE.tools[name].mutates)
        )  # fmt: skip
    return records


@pytest.fixture(scope="module")
def cancel_task(tau2_bases: dict[str, BaseDB]) -> tuple[BaseDB, Task, str, str]:
    """A hand-made task: cancel one of a user's reservations (two reads of evidence)."""
    base = tau2_bases["airline"]
    user = next(u for u in base.tables["users"].values() if len(u.reservations) >= 2)
    target, other = user.reservations[0], user.reservations[1]
    reads = [
        EvidenceRead(name="get_user_details", arguments={"user_id": user.user_id}),
        EvidenceRead(name="get_reservation_details", arguments={"reservation_id": target}),
    ]
    action = Action(name="cancel_reservation", arguments={"reservation_id": target})
    goal = base.new_state()
    assert not AIRLINE.call(goal, action.name, action.arguments).error
    intent = Intent(kind="cancel_reservation", rule="given", rule_text="cancel it", actions=[action],
                    reads=reads, facts=UserFacts(), target=target, outputs=[])  # fmt: skip
    task = Task(
        task_id="t1", domain="airline", seed=0, w=1, e=2, trajectory_type="normal",
        user_id=user.user_id, intents=[intent], actions=[action], evidence=reads, facts=UserFacts(),
        behavior=Behavior(disclosure="all", tone="calm", verbosity="short"), instruction="",
        outputs=[], db_fingerprint="", goal_hash=goal.hash_hex(),
    )  # fmt: skip
    return base, task, target, other


def _reads(task: Task) -> list[tuple[str, dict]]:
    return [(r.name, r.arguments) for r in task.evidence]


def test_gold_conversation_passes(cancel_task: tuple) -> None:
    base, task, target, _ = cancel_task
    state = base.new_state()
    calls = _run(state, [*_reads(task), ("cancel_reservation", {"reservation_id": target})])
    verdict = verify(task, state.hash_hex(), calls, ["Your reservation is cancelled."])
    assert verdict.passed and verdict.failures == []
    assert verdict.reward.total == 1.0


@pytest.mark.parametrize(
    ("script", "failure"),
    [
        ("wrong_argument", "wrong_argument:cancel_reservation"),
        ("missing_write", "missing_write:cancel_reservation"),
        ("extra_write", "extra_write:cancel_reservation"),
        ("write_before_evidence", "evidence_not_read:cancel_reservation"),
    ],
)
def test_each_mistake_fails_with_its_reason(cancel_task: tuple, script: str, failure: str) -> None:
    base, task, target, other = cancel_task
    cancel, cancel_other = ("cancel_reservation", {"reservation_id": target}), (
        "cancel_reservation", {"reservation_id": other})  # fmt: skip
    scripts = {
        "wrong_argument": [*_reads(task), cancel_other],
        "missing_write": _reads(task),
        "extra_write": [*_reads(task), cancel, cancel_other],
        "write_before_evidence": [cancel, *_reads(task)],
    }
    state = base.new_state()
    calls = _run(state, scripts[script])
    verdict = verify(task, state.hash_hex(), calls, [])
    assert not verdict.passed
    assert verdict.failures == [failure]
    if script == "write_before_evidence":
        assert verdict.reward.goal_state == 1.0 and verdict.reward.evidence == 0.0
    else:
        assert verdict.reward.goal_state == 0.0


def test_missing_output_fails(cancel_task: tuple) -> None:
    base, task, target, _ = cancel_task
    import msgspec

    needs_amount = msgspec.structs.replace(task, outputs=["1234.50"])
    state = base.new_state()
    calls = _run(state, [*_reads(task), ("cancel_reservation", {"reservation_id": target})])
    assert verify(needs_amount, state.hash_hex(), calls, ["Done."]).failures == ["missing_output"]
    # tau2-bench's COMMUNICATE rule: one agent message holds it, in lower case with commas removed
    assert verify(needs_amount, state.hash_hex(), calls, ["You get $1,234.50 back."]).passed
    assert not verify(needs_amount, state.hash_hex(), calls, ["You get 1234", ".50 back."]).passed


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_generated_tasks_pass_when_played_by_the_book(domain: str, tau2_bases: dict[str, BaseDB]) -> None:
    """An oracle that makes each intent's reads, then its writes, passes every generated task."""
    dom = get_domain(domain)
    base = tau2_bases[domain]
    tasks, _ = synthesize(domain, base, 40, seed=11)
    assert len(tasks) == 40
    rng = random.Random(0)
    for task in tasks:
        state = base.new_state()
        calls = []
        for intent in task.intents:
            for step in [*intent.reads, *intent.actions]:
                result = dom.call(state, step.name, step.arguments)
                calls.append(CallRecord(name=step.name, arguments=step.arguments, output=result.output,
                                        error=result.error, write=dom.tools[step.name].mutates))  # fmt: skip
        texts = [" ".join(task.outputs) + " " + str(rng.random())]
        verdict = verify(task, state.hash_hex(), calls, texts)
        assert verdict.passed, (task.task_id, verdict.failures, json.dumps(task.outputs))


def test_equivalent_reads_count_as_evidence() -> None:
    """The same record reached by another argument form or another tool satisfies a planned read."""
    from engine.run.evidence import Evidence
    from engine.tasks.recipe import get_spec

    done = Evidence(
        [
            CallRecord(name="find_user_id_by_email", arguments={"email": "A@x.com"}, output="a_1", error=False,
                       write=False),
            CallRecord(name="get_order_details", arguments={"order_id": " #W0000001"}, output="{}", error=False,
                       write=False),
            CallRecord(name="search_direct_flight", arguments={"date": "2024-05-20", "origin": "jfk",
                       "destination": "LAX"}, output="[]", error=False, write=False),
            CallRecord(name="get_product_details", arguments={"product_id": "P1"},
                       output='{"variants": {"1111": {"item_id": "1111"}}}', error=False, write=False),
        ],
        get_spec("retail").reads,
    )  # fmt: skip
    assert done.covers("find_user_id_by_name_zip", {"first_name": "A", "last_name": "B", "zip": "1"})
    assert done.covers("get_order_details", {"order_id": "#W0000001"})
    assert done.covers("get_order_details", {"order_id": "w0000001"})  # retail's canonical id has its '#'
    assert done.covers("search_direct_flight", {"origin": "JFK", "destination": "LAX", "date": "2024-05-20"})
    assert done.covers("get_item_details", {"item_id": "1111"})
    assert not done.covers("get_item_details", {"item_id": "2222"})
    assert not done.covers("get_order_details", {"order_id": "#W0000002"})
    assert not done.covers("get_user_details", {"user_id": "a_1"})  # a lookup is not the profile
