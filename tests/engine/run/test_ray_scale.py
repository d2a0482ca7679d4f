"""Scale-out on a real local Ray cluster: two actors with llama.cpp engines, results merged into one run."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.run.config import load_run_config
from engine.run.ray_scale import RayScaleError, actor_resources, import_ray, run_plan_ray
from engine.run.runner import plan_run
from tests.conftest import need_optional

try:
    import llama_cpp  # noqa: F401
    import ray
except ImportError:  # pragma: no cover - depends on the install
    ray = None

TASKS, ATTEMPTS = 6, 2

CONFIG = """
domain = "airline"
seed = 0
conversations_per_task = {attempts}
max_live = 2

[db]
users = 40

[tasks]
n = {tasks}

[agent]
backend = "llamacpp"
model = "test:small"
n_ctx = 8192
n_parallel = 2
n_threads = 1

[agent_sampling]
max_tokens = 32

[user_sampling]
max_tokens = 24

[limits]
max_steps = 4
max_errors = 2
max_context_tokens = 8192

[output]
parquet = false

[scale]
ray_actors = {actors}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, float]]:
    """A local Ray cluster with 2 CPUs in this process; test models built into a temporary cache."""
    if ray is None:
        need_optional("ray and llama-cpp-python (pip install 'writ[ray,llamacpp]')")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WRIT_CACHE", str(tmp_path_factory.mktemp("writ-cache")))
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False)
        print(f"ray.init: {time.perf_counter() - started:.1f} s")
        try:
            yield ray.cluster_resources()
        finally:
            ray.shutdown()


def _config(tmp_path: Path, actors: int = 2) -> Path:
    path = tmp_path / "ray.toml"
    path.write_text(CONFIG.format(attempts=ATTEMPTS, tasks=TASKS, actors=actors), encoding="utf-8")
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _check_merged(out: Path) -> list[dict[str, Any]]:
    """One result per (task, attempt); trajectories = the passing results; manifest totals right."""
    task_ids = [t["task_id"] for t in _lines(out / "tasks.jsonl")]
    assert len(task_ids) == TASKS
    results = _lines(out / "results.jsonl")
    keys = sorted((r["task_id"], r["attempt"]) for r in results)
    assert keys == sorted((t, a) for t in task_ids for a in range(ATTEMPTS))
    assert all(r["conversation_id"] == f"{r['task_id']}#{r['attempt']}" for r in results)
    assert all(r["backend"] == "llamacpp" and r["messages"] for r in results)
    kept = _lines(out / "trajectories.jsonl")
    assert [t["conversation_id"] for t in kept] == [r["conversation_id"] for r in results if r["passed"]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["tasks"] == TASKS
    assert manifest["conversations"] == manifest["finished"] == TASKS * ATTEMPTS
    assert manifest["passed"] == sum(r["passed"] for r in results) == len(kept)
    return results


def test_ray_run_merges_into_one_run_dir_and_resumes(cluster: dict[str, float], tmp_path: Path) -> None:
    config = _config(tmp_path)
    out = tmp_path / "run"

    # 1) `writ run` with scale.ray_actors = 2: two actors, each with its own llama.cpp engine.
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out), "--quiet"])
    print(f"first Ray run: {time.perf_counter() - started:.1f} s")
    assert result.exit_code == 0, result.output
    first = _check_merged(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ray"]["actors"] == 2 and manifest["ray"]["address"] == "local"
    assert manifest["ray"]["actors_lost"] == 0
    before = (out / "results.jsonl").read_bytes()

    # 2) A second invocation on the finished directory plays nothing and never touches Ray.
    cfg = load_run_config(config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "ray", None)  # `import ray` now fails
        plan = plan_run(cfg, out, base_dir=tmp_path)
        assert plan.resumed and plan.pending == [] and plan.done == TASKS * ATTEMPTS
        assert asyncio.run(run_plan_ray(plan)) == []
        plan.rundir.close()
    assert (out / "results.jsonl").read_bytes() == before

    # 3) A Ray run killed mid-way: 5 results on disk and a 6th cut short by the kill. Resume it,
    #    and lose one of the two actors (as a node goes down) when the first result comes in.
    lines = before.splitlines(keepends=True)
    (out / "results.jsonl").write_bytes(b"".join(lines[:5]) + lines[5][:100])
    plan = plan_run(cfg, out, base_dir=tmp_path)
    assert len(plan.pending) == TASKS * ATTEMPTS - 5
    seen: list[tuple[int, int]] = []

    def progress(_result: object, done: int, total: int) -> None:
        if not seen:
            ray.kill(ray.get_actor("writ-actor-0"))
        seen.append((done, total))

    played = asyncio.run(run_plan_ray(plan, progress))
    plan.rundir.close()
    assert sorted(r.conversation_id for r in played) == sorted(r["conversation_id"] for r in first[5:])
    assert seen == [(n, TASKS * ATTEMPTS) for n in range(6, TASKS * ATTEMPTS + 1)]
    assert (out / "results.jsonl").read_bytes().startswith(b"".join(lines[:5]))
    _check_merged(out)
    assert json.loads((out / "manifest.json").read_text())["ray"]["actors_lost"] == 1


def test_losing_every_actor_stops_with_one_line(cluster: dict[str, float], tmp_path: Path) -> None:
    plan = plan_run(load_run_config(_config(tmp_path)), tmp_path / "run", base_dir=tmp_path)

    def progress(_result: object, done: int, _total: int) -> None:
        if done == 1:  # both nodes go down
            ray.kill(ray.get_actor("writ-actor-0"))
            ray.kill(ray.get_actor("writ-actor-1"))

    with pytest.raises(RayScaleError) as info:
        asyncio.run(run_plan_ray(plan, progress))
    plan.rundir.close()
    match = re.fullmatch(
        r"every Ray actor was lost \(first: .+\); (\d+) conversations not played; "
        r"run the same command again to resume",
        str(info.value),
    )
    assert match is not None, str(info.value)
    recorded = _lines(tmp_path / "run" / "results.jsonl")
    assert recorded and len(recorded) + int(match[1]) == TASKS * ATTEMPTS


def test_more_actors_than_the_cluster_holds_is_one_line(cluster: dict[str, float], tmp_path: Path) -> None:
    assert cluster["CPU"] == 2.0
    plan = plan_run(load_run_config(_config(tmp_path, actors=3)), tmp_path / "run", base_dir=tmp_path)
    with pytest.raises(RayScaleError) as info:
        asyncio.run(run_plan_ray(plan))
    plan.rundir.close()
    assert str(info.value) == "scale.ray_actors = 3 actors need 3 CPUs in all (1 each) but the Ray cluster has 2"
    assert not (tmp_path / "run" / "results.jsonl").read_bytes()


def test_unreachable_cluster_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if ray is None:
        need_optional("ray and llama-cpp-python (pip install 'writ[ray,llamacpp]')")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(tmp_path)
    config.write_text(config.read_text() + f'ray_address = "127.0.0.1:{port}"\n', encoding="utf-8")
    plan = plan_run(load_run_config(config), tmp_path / "run", base_dir=tmp_path)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh `writ run` process
    with pytest.raises(RayScaleError) as info:
        asyncio.run(run_plan_ray(plan))
    plan.rundir.close()
    assert str(info.value) == (
        f"cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused (is `ray start --head` running there?)"
    )


def test_actor_resources() -> None:
    vllm = {"backend": "vllm", "model": "/m", "tensor_parallel_size": 2, "data_parallel_size": 2}
    assert actor_resources(vllm, None) == {"num_cpus": 1.0, "num_gpus": 4.0}
    cpu = {"backend": "llamacpp", "model": "/m.gguf", "n_threads": 4}
    assert actor_resources(cpu, {"backend": "llamacpp", "model": "/u.gguf"}) == {"num_cpus": 5.0, "num_gpus": 0.0}
    assert actor_resources({"backend": "openai", "model": "x", "base_url": "http://h"}, None)["num_cpus"] == 1.0


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError) as info:
        import_ray()
    assert str(info.value) == "running on Ray (scale.ray_actors > 0) needs Ray: pip install 'writ[ray]'"
