"""Yield policies: reachable hashes, dead-state stop and shadow, branch-and-resample, grounding,
quota-driven runs (met in-process with scripted roles; budget-ended and resumed after SIGKILL with
``writ run`` on the test model)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from pathlib import Path

import msgspec
import pytest
import typer
from typer.testing import CliRunner

from bench.scripted import Scripted, Tokens, play, wrong_writes
from engine.run.config import RunConfigError, parse_run_config
from engine.run.grounding import ungrounded
from engine.run.quota import run_quota
from engine.run.reach import reachable_hashes
from engine.run.runner import plan_run
from engine.stats import stats
from engine.tasks.model import Action, Task
from engine.tasks.synthesis import synthesize
from envs import BaseDB, get_domain
from tests.engine.run.runs import cache, results_of, signature, start_writ, writ  # noqa: F401
from tests.engine.run.scripted_backend import ScriptedBackend


def _stats_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(stats)
    return app


WORDS = Tokens(lambda text: len(text.split()))


@pytest.fixture(scope="module")
def worlds() -> dict[str, tuple[BaseDB, list[Task]]]:
    """Per domain: a generated DB (seed 0) and 100 synthesized tasks (seed 1)."""
    out = {}
    for name in ("airline", "retail"):
        domain = get_domain(name)
        base = domain.from_struct(domain.generate_db(users=200, seed=0))
        tasks, _ = synthesize(name, base, 100, 1)
        out[name] = (base, tasks)
    return out


def _final_hashes(name: str, base: BaseDB, actions: list[Action]) -> set[int]:
    """The state hash after applying all of ``actions`` in each order where every call succeeds."""
    domain = get_domain(name)
    finals = set()
    for order in itertools.permutations(actions):
        state = base.new_state()
        if all(not domain.call(state, a.name, a.arguments).error for a in order):
            finals.add(state.hash())
    return finals


@pytest.mark.parametrize("w", [1, 2, 3, 4])
def test_reachable_set_holds_every_order_and_order_independent_writes_reach_one_hash(
    worlds: dict[str, tuple[BaseDB, list[Task]]], w: int
) -> None:
    checked = 0
    for name, (base, tasks) in worlds.items():
        for task in [t for t in tasks if t.w == w][:5]:
            reach = reachable_hashes(get_domain(name), base, task.actions)
            finals = _final_hashes(name, base, task.actions)
            assert int(task.goal_hash, 16) in reach
            assert finals <= reach
            assert len(reach) <= 2**w + 1 or len(finals) > 1
            if len(finals) == 1:
                assert finals == {int(task.goal_hash, 16)}
            checked += 1
    assert checked > 0


def test_order_dependent_writes_reach_both_final_hashes(worlds: dict[str, tuple[BaseDB, list[Task]]]) -> None:
    base, tasks = worlds["retail"]
    task = next(t for t in tasks if any(a.name == "modify_user_address" for a in t.actions))
    first = next(a for a in task.actions if a.name == "modify_user_address")
    second = Action(name=first.name, arguments={**first.arguments, "address1": "1 Other Street"})
    reach = reachable_hashes(get_domain("retail"), base, [first, second])
    finals = _final_hashes("retail", base, [first, second])
    assert len(finals) == 2  # the last write wins: the two orders end in different states
    assert finals <= reach
    # the last write wins, so each order ends where its last write alone would: base, A, B
    assert len(reach) == 3


def _dead_case(worlds: dict[str, tuple[BaseDB, list[Task]]]) -> tuple[str, BaseDB, Task, Scripted]:
    """An airline task whose first write has a wrong variant, scripted to always make it."""
    base, tasks = worlds["airline"]
    domain = get_domain("airline")
    for task in tasks:
        wrong = wrong_writes(domain, base, task, tasks)
        if wrong.get(0):
            return "airline", base, task, Scripted(task, wrong, p=1.0, q=0.0, tokens=WORDS)
    raise AssertionError("no task with a wrong write")


def test_a_non_gold_write_stops_the_conversation_with_dead_state(worlds: dict[str, tuple[BaseDB, list[Task]]]) -> None:
    name, base, task, script = _dead_case(worlds)
    domain = get_domain(name)
    stopped = play(domain, base, task, script, dead_state="stop")
    assert stopped.termination == "dead_state" and not stopped.passed
    assert stopped.dead_at is not None
    wrong_write = stopped.messages[-2]["tool_calls"][0]["function"]  # the last turn: the dead write
    assert wrong_write["name"] == task.actions[0].name
    assert json.loads(wrong_write["arguments"]) != task.actions[0].arguments
    shadow = play(domain, base, task, script, dead_state="shadow")
    assert shadow.dead_at == stopped.dead_at and shadow.termination == "max_turns"  # p = 1: it never gets it right
    assert shadow.turns > stopped.turns
    off = play(domain, base, task, script)
    assert off.dead_at is None and off.messages == shadow.messages


def test_a_branched_record_equals_the_unbranched_run_with_the_winning_seeds(
    worlds: dict[str, tuple[BaseDB, list[Task]]],
) -> None:
    base, tasks = worlds["airline"]
    domain = get_domain("airline")
    for task, seed in itertools.product(tasks[:40], range(4)):
        script = Scripted(task, wrong_writes(domain, base, task, tasks), p=0.5, q=0.1, tokens=WORDS)
        branched = play(domain, base, task, script, seed=seed, dead_state="stop", branches=4)
        if branched.passed and branched.branch_path:
            break
    else:
        raise AssertionError("no branched conversation passed")
    assert branched.abandoned_tokens.agent_completion > 0
    replay = play(domain, base, task, script, seed=seed, branch_path=[tuple(b) for b in branched.branch_path])
    assert replay.abandoned_tokens.agent_completion == 0
    strip = {"seconds": 0.0, "abandoned_tokens": replay.abandoned_tokens}
    assert msgspec.structs.replace(branched, **strip) == msgspec.structs.replace(replay, **strip)
    # the user simulator never saw an abandoned branch: no dead write is left in the kept record
    reach = reachable_hashes(domain, base, task.actions)
    state = base.new_state()
    for m in branched.messages:
        for call in m.get("tool_calls") or ():
            domain.call(state, call["function"]["name"], call["function"]["arguments"])
            assert state.hash() in reach


def test_grounding_flags_an_invented_amount_and_passes_every_gold_conversation(
    worlds: dict[str, tuple[BaseDB, list[Task]]],
) -> None:
    messages = [
        {"role": "system", "content": "Policy: a checked bag costs $50."},
        {"role": "user", "content": "Please cancel reservation 4WQ150 on May 20."},
        {"role": "tool", "content": '{"reservation_id": "4WQ150", "amount": 1234.5, "date": "2024-05-20"}'},
        {"role": "assistant", "content": "Reservation #4WQ150 of 2024-05-20 is cancelled: $1,234.50 back, bags $50."},
        {"role": "assistant", "content": "You also get a $75 voucher for flight HAT999."},
    ]
    assert ungrounded(messages) == ["HAT999", "$75"]
    base, tasks = worlds["retail"]
    task = tasks[0]
    script = Scripted(task, {}, 0.0, 0.0, WORDS)
    script.plan[-1] = ("say", f"{script.plan[-1][1]} You also get $987.65 back.")
    recorded = play(get_domain("retail"), base, task, script, grounding="record")
    assert recorded.passed and recorded.ungrounded == ["$987.65"] and recorded.reward.grounded == 0.0
    dropped = play(get_domain("retail"), base, task, script, grounding="drop")
    assert not dropped.passed and dropped.failures == ["ungrounded"] and dropped.reward.total == 1.0
    for name, (base, tasks) in worlds.items():
        domain = get_domain(name)
        for task in tasks:
            result = play(domain, base, task, Scripted(task, {}, 0.0, 0.0, WORDS))
            assert result.passed, (task.task_id, result.failures)
            assert result.ungrounded == [] and result.reward.grounded == 1.0, (task.task_id, result.ungrounded)


def test_a_bad_mix_is_one_line() -> None:
    base = {"agent": {"backend": "llamacpp", "model": "x"}}
    with pytest.raises(RunConfigError) as info:
        parse_run_config({**base, "target": {"kept": 4, "mix": {"normal": 0.5, "w2": 0.5}}}, "c.toml")
    assert str(info.value) == (
        "c.toml: target.mix: Value error, mix keys must all be trajectory types, all w<W> or all w<W>e<E> cells"
    )


def test_a_quota_run_stops_when_its_quotas_are_met(tmp_path: Path) -> None:
    config = parse_run_config({
        "domain": "retail", "seed": 1, "max_live": 3, "db": {"users": 80, "seed": 1}, "tasks": {"n": 6, "seed": 2},
        "agent": {"backend": "openai", "model": "scripted", "base_url": "http://127.0.0.1:9/v1"},
        "limits": {"max_steps": 200}, "dead_state": {"mode": "stop", "branches": 2},
        "target": {"kept": 8, "mix": {"normal": 0.5, "read-heavy": 0.5}, "attempts_per_task": 2, "batch": 20},
    })  # fmt: skip
    plan = plan_run(config, tmp_path / "run")
    try:
        outcome = asyncio.run(run_quota(plan, ScriptedBackend(get_domain("retail"), plan.base, plan.tasks, p=0.3)))
    finally:
        plan.rundir.close()
    assert outcome.status == "met" and outcome.line.startswith("target met: kept 8 of 8 (normal ")
    kept = [r for r in plan.rundir.read_results() if r.passed]
    by_type = {t: sum(r.trajectory_type == t for r in kept) for t in ("normal", "read-heavy")}
    # Each quota is met; conversations already in flight (at most max_live - 1 = 2 per quota) may finish past it.
    assert all(4 <= n <= 4 + 2 for n in by_type.values()), by_type
    assert len(plan.tasks) > 6  # a second batch was synthesized: the first had too few read-heavy tasks
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["target"]["kept"] == 8
    shown = CliRunner().invoke(_stats_app(), [str(tmp_path / "run"), "--no-plots"])
    assert shown.exit_code == 0, shown.output
    assert "\ntarget: kept 8 of 8 (normal " in shown.output
    again = plan_run(config, tmp_path / "run")  # resuming a met target plays nothing
    try:
        outcome = asyncio.run(run_quota(again, ScriptedBackend(get_domain("retail"), again.base, again.tasks, 0.3)))
    finally:
        again.rundir.close()
    assert outcome.status == "met" and outcome.results == []


QUOTA = """
[target]
kept = 2
max_attempts = 5
attempts_per_task = 2
"""


def test_a_budget_ended_quota_run_says_so_and_resumes_after_sigkill_to_the_same_result(
    tmp_path: Path,
    cache: Path,  # noqa: F811
) -> None:
    from tests.engine.run.runs import write_config

    config = write_config(tmp_path, "quota", n=3, steps=4, live=1)
    config.write_text(config.read_text() + QUOTA)
    whole = writ(["run", str(config), "--out", str(tmp_path / "whole"), "--quiet"], cache)
    assert whole.returncode == 3, whole.stderr
    line = whole.stderr.strip().splitlines()[-1]
    assert line.startswith("writ run: target not met: the attempt budget (max_attempts = 5) is spent; kept 0 of 2")
    assert len(results_of(tmp_path / "whole")) == 5
    child = start_writ(["run", str(config), "--out", str(tmp_path / "killed"), "--quiet"], cache)
    results = tmp_path / "killed" / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (results.exists() and results.read_bytes().count(b"\n") >= 2):
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    resumed = writ(["run", str(config), "--out", str(tmp_path / "killed"), "--quiet"], cache)
    assert resumed.returncode == 3, resumed.stderr
    assert resumed.stderr.strip().splitlines()[-1] == line
    assert signature(tmp_path / "killed") == signature(tmp_path / "whole")
