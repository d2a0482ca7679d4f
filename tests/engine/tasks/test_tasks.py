"""Tests for the task core: records, rule helpers, config, behaviours, scripts, generation, CLI, export."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from engine.backends.base import Backend, Completion, Request
from engine.tasks.behaviors import guidance, sample_behavior
from engine.tasks.config import TasksConfig, TasksConfigError, load_tasks_config
from engine.tasks.export_tau2 import TaskFileError, export_file, read_tasks, to_tau2
from engine.tasks.model import (
    Action,
    Blueprint,
    Candidate,
    EvidenceRead,
    Intent,
    Selection,
    Task,
    UserFacts,
    decode_task,
    encode_task,
    trajectory_type,
)
from engine.tasks.recipe import Reject, unique_best
from engine.tasks.scripts import must_keep, phrase
from engine.tasks.synthesis import quotas, read_report, synthesize, write_tasks
from engine.tasks.validate import check_selection
from engine.tasks_cli import tasks_app
from envs import BaseDB, get_domain
from tests.conftest import need_optional

ROOT = Path(__file__).resolve().parents[3]


def _intent(reads: Sequence[tuple[str, dict[str, Any]]], **kw: Any) -> Intent:
    return Intent(
        kind=kw.pop("kind", "x"),
        rule="given",
        rule_text="",
        actions=kw.pop("actions", [Action(name="cancel_reservation", arguments={"reservation_id": "A"})]),
        reads=[EvidenceRead(name=n, arguments=a) for n, a in reads],
        facts=UserFacts(),
        **kw,
    )


# -- records and helpers -------------------------------------------------------------------------
def test_evidence_counts_distinct_reads_in_order() -> None:
    a = ("get_user_details", {"user_id": "u"})
    b = ("get_reservation_details", {"reservation_id": "R"})
    blueprint = Blueprint(
        domain="airline", user_id="u", intents=[_intent([a, b]), _intent([b, a, ("calculate", {"expression": "1"})])]
    )
    plan = blueprint.evidence()
    assert [r.name for r in plan] == ["get_user_details", "get_reservation_details", "calculate"]
    assert len(blueprint.actions()) == 2


def test_call_key_ignores_argument_order() -> None:
    one = EvidenceRead(name="s", arguments={"a": 1, "b": 2})
    two = EvidenceRead(name="s", arguments={"b": 2, "a": 1})
    assert one.key() == two.key() == 's{"a":1,"b":2}'


@pytest.mark.parametrize(
    ("w", "e", "kind"),
    [(1, 1, "normal"), (2, 5, "normal"), (2, 6, "read-heavy"), (3, 1, "write-intensive"), (4, 12, "write-intensive")],
)
def test_trajectory_type_thresholds(w: int, e: int, kind: str) -> None:
    assert trajectory_type(w, e) == kind


def test_unique_best_rejects_ties_and_empty() -> None:
    assert unique_best("r", "fare", "min", []) == Reject("no options: r")
    assert unique_best("r", "fare", "min", [("a", 3, 1), ("b", 3, 2)]) == Reject("tie: r")
    payload, selection = unique_best("r", "fare", "max", [("a", 3, 1), ("b", 5, 2), ("c", 4, 3)])
    assert payload == 2
    assert selection.winner == "b"
    assert [c.label for c in selection.candidates] == ["a", "b", "c"]
    assert check_selection(selection) is None


def test_check_selection_finds_ties_and_wrong_winners() -> None:
    cands = [Candidate(label="a", value=1), Candidate(label="b", value=1), Candidate(label="c", value=2)]
    tie = Selection(rule="r", metric="m", order="min", candidates=cands, winner="a")
    assert check_selection(tie) == "tie: r"
    wrong = Selection(rule="r", metric="m", order="max", candidates=cands, winner="a")
    assert check_selection(wrong) == "selection winner is not the best: r"


# -- config --------------------------------------------------------------------------------------
def test_quotas_sum_to_n_and_follow_weights() -> None:
    q = quotas({(1, 1): 1.0, (1, 2): 1.0, (2, 1): 2.0}, 10)
    assert sum(q.values()) == 10
    assert q[(2, 1)] == 5


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[tasks]\nmax_w = 0\n", "[tasks] max_w: Input should be greater than or equal to 1"),
        ("[tasks]\nbogus = 1\n", "[tasks] bogus: Extra inputs are not permitted"),
        ("[tasks]\nw_weights = {9 = 1.0}\n", "[tasks] w_weights key 9 is outside 1..4"),
        ("[tasks]\nw_weights = {x = 1.0}\n", "[tasks] w_weights: keys must be integers"),
        ("[tasks]\ne_weights = {3 = -1.0}\n", "[tasks] e_weights[3] is negative"),
        ("[tasks\n", "is not valid TOML"),
    ],
)
def test_bad_config_gives_one_line_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(TasksConfigError) as info:
        load_tasks_config(path)
    message = str(info.value)
    assert error in message
    assert "\n" not in message


def test_default_config_file_loads() -> None:
    cfg = load_tasks_config(ROOT / "configs" / "tasks_default.toml")
    assert cfg.max_w == 4 and cfg.max_e == 12
    assert len(cfg.bin_weights()) == 48


# -- behaviours and scripts --------------------------------------------------------------------------
def test_behavior_is_seeded_and_out_of_order_needs_independent_intents() -> None:
    dependent = Blueprint(
        domain="airline",
        user_id="u",
        intents=[_intent([], target="A"), _intent([], target="B", depends_on=[0])],
    )
    independent = Blueprint(domain="airline", user_id="u", intents=[_intent([], target="A"), _intent([], target="B")])
    assert sample_behavior(7, independent) == sample_behavior(7, independent)
    assert not any(sample_behavior(s, dependent).out_of_order for s in range(200))
    assert any(sample_behavior(s, independent).out_of_order for s in range(200))
    kinds = {(b.disclosure, b.tone) for b in (sample_behavior(s, independent) for s in range(200))}
    assert len(kinds) > 10
    assert all(line for line in guidance(sample_behavior(3, independent)))


def test_must_keep_lists_ids_dates_and_amounts() -> None:
    text = "Your user id is mia_li_3668. Cancel reservation ZFA04Y on 2024-05-20; refund 1084."
    assert must_keep(text) == ["mia_li_3668", "ZFA04Y", "2024-05-20", "1084"]


class _EchoBackend(Backend):
    """A stand-in that returns a fixed rewrite of each prompt (tests the acceptance rule only)."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for r in requests:
            text = r.messages[-1]["content"].replace("You are a customer", "As a customer, you are")
            if self.drop:
                text = text.split("\n")[0]
            out.append(Completion(request_id=r.request_id, text=text))
        return out


# -- generation on tau2's DB -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def airline_tasks(tau2_bases: dict[str, BaseDB]) -> list[Task]:
    tasks, report = synthesize("airline", tau2_bases["airline"], 60, 11)
    assert report.accepted == 60
    return tasks


def test_phrase_keeps_template_when_facts_are_dropped(airline_tasks: list[Task]) -> None:
    sample = airline_tasks[:5]
    reworded, kept = asyncio.run(phrase(sample, _EchoBackend(drop=False)))
    assert kept == 0
    assert all(t.instruction.startswith("As a customer") for t in reworded)
    reworded, kept = asyncio.run(phrase(sample, _EchoBackend(drop=True)))
    assert kept == 5
    assert [t.instruction for t in reworded] == [t.instruction for t in sample]


def test_generate_phrases_through_a_backend(tau2_bases: dict[str, BaseDB]) -> None:
    plain, _ = synthesize("airline", tau2_bases["airline"], 4, 1)
    tasks, report = synthesize("airline", tau2_bases["airline"], 4, 1, backend=_EchoBackend(drop=False))
    assert report.phrased == 4
    assert [t.instruction for t in tasks] == [
        t.instruction.replace("You are a customer", "As a customer, you are") for t in plain
    ]


def test_phrase_with_a_real_llamacpp_model(airline_tasks: list[Task], tiny_models: dict[str, Path]) -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        need_optional("llama-cpp-python")
    from engine.backends import make_backend

    backend = make_backend(
        {"backend": "llamacpp", "model": str(tiny_models["gguf"]), "n_parallel": 2, "n_ctx": 8192, "seed": 0}
    )
    try:
        sample = airline_tasks[:2]
        reworded, kept = asyncio.run(phrase(sample, backend, max_tokens=8))
    finally:
        asyncio.run(backend.close())
    # random weights cannot keep every id: the template must survive untouched
    assert kept == 2
    assert [t.instruction for t in reworded] == [t.instruction for t in sample]


def test_same_seed_same_bytes_and_round_trip(tau2_bases: dict[str, BaseDB], tmp_path: Path) -> None:
    base = tau2_bases["airline"]
    one, report = synthesize("airline", base, 30, 5)
    two, _ = synthesize("airline", base, 30, 5)
    write_tasks(tmp_path / "a.jsonl", one, report)
    write_tasks(tmp_path / "b.jsonl", two, report)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert read_tasks(tmp_path / "a.jsonl") == one
    assert decode_task(encode_task(one[0])) == one[0]
    assert read_report(tmp_path / "a.jsonl") == report
    three, _ = synthesize("airline", base, 30, 6)
    assert [t.actions for t in three] != [t.actions for t in one]


_GEN = """
import sys
from engine.tasks.synthesis import synthesize, write_tasks
from envs import get_domain
base = get_domain("airline").load(sys.argv[1])
tasks, report = synthesize("airline", base, 25, 9)
write_tasks(sys.argv[2], tasks, report)
"""


def test_same_seed_same_bytes_across_processes(tau2_dir: Path, tmp_path: Path) -> None:
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"t{hash_seed}.jsonl"
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        subprocess.run(
            [sys.executable, "-c", _GEN, str(tau2_dir / "airline" / "db.json"), str(out)],
            check=True,
            cwd=ROOT,
            env=env,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0].count(b"\n") == 25


def test_bad_task_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": 1}\n')
    with pytest.raises(TaskFileError) as info:
        read_tasks(path)
    assert str(info.value).startswith(f"{path}:1: not a task: ")
    assert "\n" not in str(info.value)


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_generate_stats_export(tau2_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "t.jsonl"
    db = tau2_dir / "airline" / "db.json"
    args = ["--domain", "airline", "--n", "20", "--seed", "3", "--out", str(out), "--db", str(db)]
    result = runner.invoke(tasks_app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 20 airline tasks" in result.output
    first = out.read_bytes()
    assert runner.invoke(tasks_app, args).exit_code == 0
    assert out.read_bytes() == first
    png = tmp_path / "h.png"
    result = runner.invoke(tasks_app, ["stats", str(out), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "W \\ E" in result.output and "rejection reasons:" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exported = tmp_path / "tau2.json"
    result = runner.invoke(tasks_app, ["export-tau2", str(out), "--out", str(exported)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(exported.read_text())) == 20


def test_cli_without_domain_is_a_usage_error() -> None:
    result = CliRunner().invoke(tasks_app, ["--n", "3"])
    assert result.exit_code != 0
    assert str(result.exception) == ("writ tasks needs --domain and --out (or a subcommand: stats, export-tau2)")


# -- tau2 export, checked against the fields of tau2-bench's src/tau2/data_model/tasks.py ---------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Instructions(_Strict):
    domain: str
    reason_for_call: str
    known_info: str | None = None
    unknown_info: str | None = None
    task_instructions: str


class _Scenario(_Strict):
    persona: str | None = None
    instructions: _Instructions | str


class _Description(_Strict):
    purpose: str | None = None
    relevant_policies: str | None = None
    notes: str | None = None


class _Action(_Strict):
    action_id: str
    requestor: Literal["user", "assistant"] = "assistant"
    name: str
    arguments: dict
    info: str | None = None
    compare_args: list[str] | None = None


class _Criteria(_Strict):
    actions: list[_Action] | None = None
    env_assertions: list[dict] | None = None
    communicate_info: list[str] | None = None
    nl_assertions: list[str] | None = None
    reward_basis: list[Literal["DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE"]]


class _Tau2Task(_Strict):
    id: str
    description: _Description | None = None
    user_scenario: _Scenario
    ticket: str | None = None
    initial_state: dict | None = None
    evaluation_criteria: _Criteria | None = None
    issues: list[dict] | None = None
    required_documents: list[str] | None = None
    user_tools: list[str] | None = None


def test_export_matches_tau2_task_fields(airline_tasks: list[Task], tau2_bases: dict[str, BaseDB]) -> None:
    base = tau2_bases["airline"]
    for task in airline_tasks:
        obj = json.loads(json.dumps(to_tau2(task)))
        parsed = _Tau2Task.model_validate(obj)
        actions = parsed.evaluation_criteria.actions
        assert len({a.action_id for a in actions}) == len(actions)
        # only the gold writes are actions (tau2 demands actions verbatim under ACTION) ...
        assert [(a.name, a.arguments) for a in actions] == [(a.name, a.arguments) for a in task.actions]
        assert len(actions) == task.w
        # ... the evidence reads are information in the notes
        assert all(e.name in parsed.description.notes for e in task.evidence)
        # replaying the reference trajectory gives the goal state, as tau2's evaluator does
        state = base.new_state()
        for a in actions:
            assert not get_domain("airline").call(state, a.name, a.arguments).error
        assert state.hash_hex() == task.goal_hash


def test_export_of_generated_db_tasks_is_refused_or_carries_its_db(
    tmp_path: Path, tau2_dir: Path, tau2_bases: dict[str, BaseDB]
) -> None:
    """Tasks made on a generated DB: refused without it; with it, the DB and a note go beside the
    tasks, and the tasks replay to their goals on that DB, while on tau2's own DB they would fail."""
    dom = get_domain("airline")
    db_path = tmp_path / "gen.json"
    db_path.write_bytes(msgspec.json.encode(dom.generate_db(users=60, seed=3)))
    base = dom.load(db_path)
    tasks, _ = synthesize("airline", base, 6, 5)
    assert tasks and {t.db_fingerprint for t in tasks} != {dom.reference_db_hash}
    out = tmp_path / "tau2.json"
    with pytest.raises(TaskFileError, match=r"not tau2-bench's own airline DB, .*pass --db") as info:
        export_file(tasks, out)
    assert "\n" not in str(info.value) and not out.exists()
    with pytest.raises(TaskFileError, match="fingerprint"):
        export_file(tasks, out, db=tau2_dir / "airline" / "db.json")
    assert not out.exists()

    assert export_file(tasks, out, db=db_path) == len(tasks)
    written_db = tmp_path / "tau2.db.json"
    assert written_db.read_bytes() == db_path.read_bytes()
    assert "data/tau2/domains/airline/db.json" in (tmp_path / "tau2.README.txt").read_text()
    exported = [_Tau2Task.model_validate(o) for o in json.loads(out.read_text())]
    on_own_db = dom.load(written_db)
    failures_on_tau2_db = 0
    for task, parsed in zip(tasks, exported, strict=True):
        state = on_own_db.new_state()
        for a in parsed.evaluation_criteria.actions:
            assert dom.call(state, a.name, a.arguments).ok
        assert state.hash_hex() == task.goal_hash
        shipped = tau2_bases["airline"].new_state()
        failures_on_tau2_db += any(
            dom.call(shipped, a.name, a.arguments).error for a in parsed.evaluation_criteria.actions
        )
    assert failures_on_tau2_db > 0  # why the export refuses without the DB


def test_default_config_is_valid() -> None:
    assert TasksConfig().bin_weights()[(1, 1)] == 1.0
