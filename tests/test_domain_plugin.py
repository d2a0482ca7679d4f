"""A domain that lives only in the test tree (``tests/plugins/library``) is a plug-in: registered by
``WRIT_DOMAINS`` alone, its tasks synthesize and validate through ``writ tasks`` and a ``writ run``
on the test model plays them, with no file of engine/ or envs/ naming it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.tasks.model import decode_task
from envs import get_domain
from envs.registry import ENV_VAR
from envs.registry import PACKAGES as PACKAGES_BY_NAME
from tests.engine.run.runs import cache as cache  # the module's WRIT_CACHE fixture
from tests.engine.run.runs import results_of, writ, write_config
from tests.test_project import PACKAGES, ROOT

PLUGIN = "library=tests.plugins.library"


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``writ`` children see the library domain through the environment only."""
    monkeypatch.setenv(ENV_VAR, PLUGIN)
    monkeypatch.setitem(PACKAGES_BY_NAME, "library", "tests.plugins.library")  # this process too, until the test ends


def test_nothing_outside_the_plugin_names_it() -> None:
    """No module of the project names the domain, its package, its schema or its tools."""
    trace = re.compile(r"""(["'])library\1|tests\.plugins|LibraryDB|borrow_book|return_book""")
    mentions = [
        str(p.relative_to(ROOT))
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if trace.search(p.read_text(encoding="utf-8"))
    ]
    assert mentions == []
    assert trace.search((ROOT / "tests" / "plugins" / "library" / "__init__.py").read_text())  # it would see one


def test_plugin_tasks_synthesize_and_validate(tmp_path: Path, cache: Path, plugin_env: None) -> None:
    out = tmp_path / "tasks.jsonl"
    proc = writ(["tasks", "-d", "library", "--n", "40", "--seed", "2", "--out", str(out)], cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tasks = [decode_task(line) for line in out.read_bytes().splitlines()]
    assert len(tasks) >= 10
    assert {t.domain for t in tasks} == {"library"}
    kinds = {i.kind for t in tasks for i in t.intents}
    assert {"borrow_oldest", "return_titled", "refuse_fines"} <= kinds
    # replay every task on the DB the CLI generated (its default: 500 users, seed 0)
    domain = get_domain("library")
    base = domain.from_struct(domain.generate_db(users=500, seed=0))
    initial = base.new_state().hash_hex()
    for task in tasks:
        state = base.new_state()
        for r in task.evidence:
            assert domain.call(state, r.name, r.arguments).ok, (task.task_id, r.name)
        for a in task.actions:
            result = domain.call(state, a.name, a.arguments, strict=True)
            assert result.ok, (task.task_id, a.name, result.text)
        assert state.hash_hex() == task.goal_hash, task.task_id
        assert (task.goal_hash == initial) == (task.trajectory_type == "refusal"), task.task_id
        assert "library customer service" in task.instruction
        assert "Book ids and publication years" in task.instruction


def test_plugin_domain_runs_on_the_test_model(tmp_path: Path, cache: Path, plugin_env: None) -> None:
    config = write_config(tmp_path, "library", domain="library", n=6, users=40)
    out = tmp_path / "run"
    proc = writ(["run", str(config), "--out", str(out), "--quiet"], cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tasks = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]
    results = results_of(out)
    assert tasks and len(results) == len(tasks)
    assert {r["domain"] for r in results} == {"library"}
    for r in results:
        assert r["termination"] not in ("backend_error", "kernel_error"), r["termination"]
        assert r["tokens"]["agent_completion"] > 0
        assert "Library desk policy" in r["messages"][0]["content"]  # the plug-in's own policy.md
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_a_bad_plugin_declaration_is_one_line(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "library")  # no '=package'
    proc = writ(["tasks", "-d", "library", "--n", "3", "--out", str(tmp_path / "t.jsonl")], cache)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "writ: error: unknown domain 'library'; choose one of: airline, retail"
        f" ({ENV_VAR}: 'library' is not name=package (e.g. telecom=acme.telecom))"
    ]
    monkeypatch.setenv(ENV_VAR, "library=tests.plugins.missing")
    proc = writ(["tasks", "-d", "library", "--n", "3", "--out", str(tmp_path / "t.jsonl")], cache)
    assert proc.returncode == 2
    assert "cannot import its package tests.plugins.missing" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
