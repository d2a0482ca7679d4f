"""`writ bench` on real runs: the tiny test model (llama.cpp) and SmolLM2-135M-Instruct.

Every figure that can be recomputed from the run's own records (kept with --keep) is: conversations,
kept, tokens per role, prefix-cache shares on later turns, the rates they give. ``--against`` must
play the same tasks on the same DB and print a ratio column; Ctrl-C and the time limit must still
print what finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.bench.report import BenchReport, RoleFigures, RunFigures, format_report, percentile, projection, role_of
from engine.records import decode_result
from engine.tasks.model import decode_task, encode_task

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")

ROOT = Path(__file__).resolve().parents[3]

CONFIG = """
domain = "{domain}"
seed = 3
max_live = 4

[db]
users = 60
seed = 1

[tasks]
n = 20
seed = 5

[agent]
backend = "llamacpp"
model = "{model}"
n_ctx = {n_ctx}
n_parallel = {n_parallel}
n_threads = 1

[agent_sampling]
temperature = {temperature}
max_tokens = {agent_tokens}

[user_sampling]
temperature = {temperature}
max_tokens = {user_tokens}

[limits]
max_steps = {steps}
max_errors = 3
max_retries = 1
max_context_tokens = {n_ctx}
"""

TEST_MODEL = {"model": "test:small", "n_ctx": 16384, "temperature": 1.0, "agent_tokens": 24, "user_tokens": 12}


def _config(tmp: Path, name: str, *, domain: str = "airline", n_parallel: int = 8, steps: int = 6, **kw: Any) -> Path:
    path = tmp / f"{name}.toml"
    values = {**TEST_MODEL, **kw}
    path.write_text(CONFIG.format(domain=domain, n_parallel=n_parallel, steps=steps, **values))
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("writ-cache")


def _writ(args: list[str], cache: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WRIT_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env, timeout=timeout,
        check=False, cwd=ROOT,
    )  # fmt: skip


def _bench_json(args: list[str], cache: Path, timeout: float = 600) -> tuple[dict[str, Any], str]:
    proc = _writ(["bench", *args, "--json"], cache, timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def _fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


def _check_every_field(report: dict[str, Any]) -> None:
    assert set(report) == _fields(BenchReport)
    for run in report["runs"]:
        assert set(run) == _fields(RunFigures)
        assert set(run["agent"]) == set(run["user"]) == _fields(RoleFigures)
    msgspec.convert(report, BenchReport)  # and every value has its declared type
    assert {"cpu", "cores", "usable_cores", "memory_gb", "gpus"} <= set(report["hardware"])
    assert {"python", "writ", "llama-cpp-python"} <= set(report["versions"])


def _check_against_records(run: dict[str, Any]) -> list[Any]:
    """The figures of one run agree with its results.jsonl, trajectories.jsonl and manifest."""
    out = Path(run["run_dir"])
    results = [decode_result(line) for line in (out / "results.jsonl").read_bytes().splitlines()]
    kept_lines = (out / "trajectories.jsonl").read_bytes().splitlines()
    manifest = json.loads((out / "manifest.json").read_text())
    assert run["conversations_finished"] == len(results) == manifest["finished"]
    assert run["kept"] == sum(r.passed for r in results) == len(kept_lines) == manifest["passed"]
    if results:
        assert run["keep_rate"] == run["kept"] / len(results)
    if run["status"] == "complete":  # every answered turn belongs to a finished conversation
        assert len(results) == run["conversations_planned"]
        for role in ("agent", "user"):
            for kind in ("prompt", "cached", "completion"):
                assert run[role][f"{kind}_tokens"] == sum(getattr(r.tokens, f"{role}_{kind}") for r in results)
    for role in ("agent", "user"):
        later = sum(getattr(r.tokens, f"{role}_prompt_later") for r in results)
        cached = sum(getattr(r.tokens, f"{role}_cached_later") for r in results)
        assert (run[role]["prompt_later"], run[role]["cached_later"]) == (later, cached)
        assert run[role]["cache_later_share"] == (cached / later if later else None)
        if run[role]["turns"]:
            assert 0 < run[role]["latency_p50_s"] <= run[role]["latency_p90_s"]
    for field in ("prompt", "cached", "completion"):
        assert run[f"{field}_tokens"] == run["agent"][f"{field}_tokens"] + run["user"][f"{field}_tokens"]
    wall = run["wall_s"]
    assert wall > 0 and run["engine_start_s"] > 0 and run["plan_s"] > 0
    assert run["generation_tokens_per_s"] == pytest.approx(run["completion_tokens"] / wall)
    assert run["prompt_tokens_per_s"] == pytest.approx(run["prompt_tokens"] / wall)
    assert run["prompt_computed_tokens_per_s"] == pytest.approx((run["prompt_tokens"] - run["cached_tokens"]) / wall)
    assert run["conversations_per_hour"] == pytest.approx(len(results) / wall * 3600)
    assert run["kept_per_hour"] == pytest.approx(run["kept"] / wall * 3600)
    assert 0 < run["writ_share"] < 1 and run["writ_share"] == pytest.approx(run["loop_cpu_s"] / wall)
    assert run["process_cpu_s"] >= run["loop_cpu_s"]
    assert run["peak_rss_mb"] > 50
    assert run["gpu_memory_mb"] is None and run["gpu_memory_source"] is None  # llama.cpp on the CPU
    assert "CPU" in run["llama_cpp_system_info"]
    return results


def test_figures_match_the_runs_own_records(tmp_path: Path, cache: Path) -> None:
    config = _config(tmp_path, "tiny")
    report, stderr = _bench_json([str(config), "--conversations", "4", "--keep", str(tmp_path / "kept")], cache)
    _check_every_field(report)
    assert json.loads((tmp_path / "kept" / "bench.json").read_text()) == report
    (run,) = report["runs"]
    assert run["status"] == "complete" and run["conversations_planned"] == 4
    assert run["label"] == "tiny" and run["backend"] == "llamacpp" and run["agent_model"] == "test:small"
    results = _check_against_records(run)
    assert run["completion_tokens"] > 0 and run["agent"]["turns"] >= len(results)
    assert report["ratio"] is None and report["same_tasks"] is None and report["target"] == 2000
    (proj,) = report["projections"]
    if run["kept"] == 0:
        assert proj["hours"] is None
        assert proj["text"] == (
            "tiny: no trajectory was kept (0 of 4 conversations passed), so the time to 2,000 kept "
            "trajectories cannot be estimated from this run"
        )
    assert "writ bench [1/1 tiny] 4/4 conversations" in stderr  # progress, one line per finished conversation

    # The projection from a run that kept some: target / kept-per-hour, said to be an estimate.
    figures = msgspec.convert(run, RunFigures)
    some = msgspec.structs.replace(figures, kept=3, conversations_finished=4, keep_rate=0.75, kept_per_hour=10.0)
    estimate = projection(some, 2000)
    assert estimate.hours == 200
    assert estimate.text == (
        "tiny: about 8.3 days to 2,000 kept trajectories at 10.0 kept/hour "
        "(an estimate from this run's keep rate, 3 of 4 = 75.0%)"
    )


def test_against_plays_the_same_tasks_and_prints_both_and_the_ratio(tmp_path: Path, cache: Path) -> None:
    first = _config(tmp_path, "two-slots", n_parallel=8)
    second = _config(tmp_path, "one-slot", n_parallel=4)
    keep = tmp_path / "kept"
    report, _ = _bench_json([str(first), "-n", "4", "--against", str(second), "--keep", str(keep)], cache)
    _check_every_field(report)
    a, b = report["runs"]
    assert (a["label"], b["label"]) == ("two-slots", "one-slot")
    for run in (a, b):
        assert run["status"] == "complete"
        _check_against_records(run)
    # Same work: byte-identical tasks (the second run read the first's task file) on the first's DB.
    assert report["same_tasks"] is True and a["tasks_sha256"] == b["tasks_sha256"]
    played = [
        [encode_task(decode_task(line)) for line in (keep / name / "tasks.jsonl").read_bytes().splitlines()]
        for name in ("two-slots", "one-slot")
    ]
    assert played[0] == played[1] and len(played[0]) == 4
    stored = json.loads((keep / "one-slot" / "config.json").read_text())
    assert stored["tasks"]["file"] == str((keep / "two-slots" / "tasks.jsonl").resolve())
    assert stored["db"]["path"] == str((keep / "two-slots" / "db.json").resolve())
    ids = [sorted(json.loads(line)["task_id"] for line in (keep / n / "results.jsonl").read_text().splitlines())
           for n in ("two-slots", "one-slot")]  # fmt: skip
    assert ids[0] == ids[1]
    # The ratio column is run 1 / run 2, figure by figure.
    assert report["ratio_of"] == "two-slots / one-slot"
    ratio = report["ratio"]
    gen_a, gen_b = a["generation_tokens_per_s"], b["generation_tokens_per_s"]
    assert ratio["generation_tokens_per_s"] == pytest.approx(gen_a / gen_b)
    assert ratio["agent.latency_p90_s"] == pytest.approx(a["agent"]["latency_p90_s"] / b["agent"]["latency_p90_s"])
    if not b["kept"]:
        assert ratio["kept_per_hour"] is None  # no ratio to a zero
    warnings = [n for n in b["notes"] if n.startswith("warning: n_parallel = 4")]
    assert len(warnings) == 1 and not any(n.startswith("warning") for n in a["notes"])

    text = format_report(msgspec.convert(report, BenchReport))
    lines = text.splitlines()
    assert lines[0] == "writ bench: 4 conversations per config on the same tasks, time limit 600 s per config"
    assert lines[1].split() == ["two-slots", "one-slot", "ratio"]
    gen = next(line for line in lines if line.startswith("generation tokens/s"))
    assert gen.split()[-1] == f"{ratio['generation_tokens_per_s']:.2f}x"
    assert gen.split()[-3:-1] == [f"{a['generation_tokens_per_s']:,.1f}", f"{b['generation_tokens_per_s']:,.1f}"]
    assert "ratio = two-slots / one-slot" in lines
    assert sum(line.startswith("projection: ") for line in lines) == 2


def test_against_refuses_another_domain_and_keep_refuses_a_full_directory(tmp_path: Path, cache: Path) -> None:
    airline, retail = _config(tmp_path, "airline"), _config(tmp_path, "retail", domain="retail")
    proc = _writ(["bench", str(airline), "--against", str(retail)], cache)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"writ: error: --against: {retail} plays retail and {airline} plays airline; "
        "both configs must play the same domain\n"
    )
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    proc = _writ(["bench", str(airline), "--keep", str(full)], cache)
    assert proc.returncode == 2
    assert proc.stderr == f"writ: error: --keep {full}: must be a new or empty directory\n"
    missing = tmp_path / "missing.toml"
    proc = _writ(["bench", str(missing)], cache)
    assert proc.returncode == 2
    assert proc.stderr == f"writ: error: cannot read config {missing}: No such file or directory\n"


def test_time_limit_cancels_the_rest_and_counts_what_finished(tmp_path: Path, cache: Path) -> None:
    config = _config(tmp_path, "limited", steps=10)
    keep = tmp_path / "kept"
    report, _ = _bench_json([str(config), "-n", "12", "--time-limit", "1", "--keep", str(keep)], cache)
    (run,) = report["runs"]
    assert run["status"] == "time_limit" and 1 <= run["wall_s"] < 3
    results = _check_against_records(run)
    assert len(results) < 12
    for role in ("agent", "user"):  # answered turns of unfinished conversations count too
        assert run[role]["completion_tokens"] >= sum(getattr(r.tokens, f"{role}_completion") for r in results)
    assert json.loads((keep / "limited" / "manifest.json").read_text())["status"] != "complete"


def test_ctrl_c_prints_what_was_measured_so_far(tmp_path: Path, cache: Path) -> None:
    config = _config(tmp_path, "stopped", steps=10)
    keep = tmp_path / "kept"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "bench", str(config), "-n", "24", "--keep", str(keep)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "WRIT_CACHE": str(cache)},
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if "1/24 conversations" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    lines = out.splitlines()
    assert lines[0].endswith("(interrupted: figures so far)")
    finished = len((keep / "stopped" / "results.jsonl").read_text().splitlines())
    assert 1 <= finished < 24
    assert (
        f"conversations finished  {finished} of 24".split()
        == next(line for line in lines if line.startswith("conversations finished")).split()
    )
    assert next(line for line in lines if line.startswith("status")).split() == ["status", "interrupted"]
    assert any(line.startswith("stopped: stopped by the interrupt with") for line in lines)


def test_percentiles_and_roles() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 90) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([float(v) for v in range(1, 11)], 90) == pytest.approx(9.1)
    assert role_of("airline-7#0/a3") == "agent" and role_of("airline-7#0/a3.r1") == "agent"
    assert role_of("airline-7#0/u0") == "user" and role_of("retail-2#1/u12.r2") == "user"


# -- the real model -------------------------------------------------------------------------------


def test_smollm2_figures_match_the_runs_own_records(tmp_path: Path, cache: Path) -> None:
    from engine.backends.models import resolve_model_alias

    try:
        resolve_model_alias("smollm2-135m")
    except ValueError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    config = _config(
        tmp_path, "smollm2", model="smollm2-135m", n_ctx=8192, n_parallel=2, temperature=0.2, agent_tokens=48,
        user_tokens=24, steps=4,
    )  # fmt: skip
    report, _ = _bench_json([str(config), "-n", "1", "--keep", str(tmp_path / "kept")], cache, timeout=300)
    _check_every_field(report)
    (run,) = report["runs"]
    assert run["status"] == "complete" and run["agent_model"] == "smollm2-135m"
    (result,) = _check_against_records(run)
    assert run["agent"]["turns"] >= 1 and run["user"]["turns"] >= 1 and run["completion_tokens"] > 0
    assert result.turns <= 5  # the system message and at most max_steps turns
