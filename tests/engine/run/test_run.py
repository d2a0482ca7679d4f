"""`writ run` end to end on the tiny llama.cpp model: records, summary, resume after SIGKILL."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.records import TERMINATIONS
from engine.run.config import RunConfigError, load_run_config
from tests.engine.run.runs import CONFIG, results_of, signature, writ, writ_env, write_config
from tests.engine.run.runs import cache as cache  # the module's WRIT_CACHE fixture

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")


def test_run_completes_and_summary_matches_files(tmp_path: Path, cache: Path) -> None:
    config = write_config(tmp_path, "e2e", n=20)
    out = tmp_path / "run"
    proc = writ(["run", str(config), "--out", str(out), "--quiet"], cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = results_of(out)
    assert len(results) == 20
    assert len({r["conversation_id"] for r in results}) == 20
    tasks = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]
    assert {r["task_id"] for r in results} == {t["task_id"] for t in tasks}
    for r in results:
        assert r["messages"][0]["role"] == "system"
        assert r["termination"] in TERMINATIONS and r["termination"] not in ("backend_error", "kernel_error")
        assert r["tokens"]["agent_completion"] > 0
        assert r["passed"] == (r["reward"]["total"] == 1.0 and r["termination"] in
                               {"user_stop", "transfer", "out_of_scope"})  # fmt: skip
    kept = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(kept) == sum(r["passed"] for r in results)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["finished"] == 20 and manifest["passed"] == len(kept)
    assert f"{len(kept)} trajectories kept" in proc.stderr
    assert "all" in proc.stderr and "20" in proc.stderr
    if importlib.util.find_spec("datasets") is not None or os.environ.get("CI") == "true":
        assert f"{len(kept)} trajectories also in" in proc.stderr
        assert (out / "trajectories.parquet").is_file()

    again = writ(["run", str(config), "--out", str(out), "--quiet"], cache)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "20 of 20 conversations already finished" in again.stderr
    assert len(results_of(out)) == 20


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(
    tmp_path: Path, cache: Path
) -> None:
    config = write_config(tmp_path, "crash", domain="retail", n=12, steps=8)
    reference = tmp_path / "reference"
    proc = writ(["run", str(config), "--out", str(reference), "--quiet"], cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = signature(reference)
    assert len(expected) == 12

    out = tmp_path / "killed"
    rng = random.Random(20261124)
    kills = 0
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", str(config), "--out", str(out), "--quiet"],
            env=writ_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.3, 3.0))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(timeout=60)
        if (out / "manifest.json").exists() and json.loads((out / "manifest.json").read_text())["status"] == "complete":
            break
    assert kills >= 2, "the run finished before it could be killed twice"
    final = writ(["run", str(config), "--out", str(out), "--quiet"], cache)
    assert final.returncode == 0, final.stderr[-2000:]
    got = signature(out)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(got) == 12  # no duplicates, nothing lost
    assert got == expected


def test_bad_config_gets_one_line_error(tmp_path: Path, cache: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('domain = "bank"\n[agent]\nbackend = "llamacpp"\nmodel = "test:small"\n')
    with pytest.raises(RunConfigError, match=r"domain: .*unknown domain 'bank'; choose one of: airline, retail"):
        load_run_config(bad)
    proc = writ(["run", str(bad), "--out", str(tmp_path / "x")], cache)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("writ: error:")
    missing = tmp_path / "nobackend.toml"
    missing.write_text("[agent]\nmodel = 'x'\n")
    proc = writ(["run", str(missing), "--out", str(tmp_path / "y")], cache)
    assert proc.returncode == 2 and "agent" in proc.stderr and "backend" in proc.stderr


def test_phrase_rewords_instructions_with_the_model_or_keeps_the_template(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.run.config import load_run_config
    from engine.run.runner import plan_run
    from engine.tasks.scripts import must_keep

    monkeypatch.setenv("WRIT_CACHE", str(cache))
    config = write_config(tmp_path, "phrase", n=3)
    config.write_text(config.read_text().replace("[tasks]\n", "[tasks]\nphrase = true\n"))
    plan = plan_run(load_run_config(config), tmp_path / "run")
    plan.rundir.close()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["phrased"] + manifest["phrase_fallbacks"] == 3
    unphrased = tmp_path / "plain.toml"
    unphrased.write_text(CONFIG.format(domain="airline", n=3, steps=6, live=4, users=60))
    plain = plan_run(load_run_config(unphrased), tmp_path / "plain")
    plain.rundir.close()
    for task, template in zip(plan.tasks, plain.tasks, strict=True):
        assert task.task_id == template.task_id
        kept = task.instruction == template.instruction
        assert kept or all(token in task.instruction for token in must_keep(template.instruction))
    assert sum(t.instruction == p.instruction for t, p in zip(plan.tasks, plain.tasks, strict=True)) == (
        manifest["phrase_fallbacks"]
    )


def test_tasks_command_phrases_with_a_configured_model(tmp_path: Path, cache: Path) -> None:
    config = write_config(tmp_path, "model")
    out = tmp_path / "tasks.jsonl"
    args = ["tasks", "--domain", "retail", "--n", "3", "--seed", "2", "--out", str(out), "--phrase-with", str(config)]
    proc = writ(args, cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "instructions reworded by the model" in proc.stdout
    assert len(out.read_text().splitlines()) == 3
    again = tmp_path / "again.jsonl"
    assert writ([*args[:-3], str(again), *args[-2:]], cache).returncode == 0
    assert again.read_bytes() == out.read_bytes()  # same seed, same model: same bytes
    bad = tmp_path / "nomodel.toml"
    bad.write_text("[tasks]\nn = 3\n")
    proc = writ([*args[:-1], str(bad)], cache)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"writ: error: {bad}: needs a backend table ([user] or [agent] with a 'backend' key)"
