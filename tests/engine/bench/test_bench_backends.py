"""`writ bench` on the two other backends: an OpenAI-compatible server and vLLM (CPU lane).

The llama.cpp runs are in test_bench.py. Here the same pipeline plays through llama-cpp-python's own
OpenAI-compatible server (started on a free local port) and through vLLM in the lane venv
(.venv-vllm, see .ci/vllm_env.sh), both on the random-weight test model. Each run's figures must
agree with its own results.jsonl, and the report must carry the backend's name and every field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.bench.report import BenchReport, RoleFigures, RunFigures
from engine.records import decode_result
from tests.conftest import need_optional
from tests.engine.backends.llama_server import llama_server
from tests.engine.backends.test_vllm import LANE_ENV, LANE_PYTHON

ROOT = Path(__file__).resolve().parents[3]

CONFIG = """
domain = "retail"
seed = 3
max_live = 3

[db]
users = 60
seed = 1

[tasks]
n = 10
seed = 5

[agent]
{agent}

[agent_sampling]
temperature = 1.0
max_tokens = 24

[user_sampling]
temperature = 1.0
max_tokens = 12

[limits]
max_steps = 6
max_errors = 3
max_retries = 1
max_context_tokens = 8192
"""


def _bench(python: Path, config: Path, keep: Path, env: dict[str, str], n: int = 3) -> dict[str, Any]:
    proc = subprocess.run(
        [str(python), "-m", "engine", "bench", str(config), "-n", str(n), "--json", "--keep", str(keep)],
        capture_output=True, text=True, env=env, timeout=900, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{n}/{n} conversations" in proc.stderr  # the progress line
    return json.loads(proc.stdout)


def _check(report: dict[str, Any], backend: str, n: int = 3) -> dict[str, Any]:
    """Every field, the backend named, and figures equal to what the run's own records say."""
    assert set(report) == set(BenchReport.__struct_fields__)
    msgspec.convert(report, BenchReport)
    (run,) = report["runs"]
    assert set(run) == set(RunFigures.__struct_fields__)
    assert set(run["agent"]) == set(run["user"]) == set(RoleFigures.__struct_fields__)
    assert run["backend"] == backend and run["status"] == "complete"
    out = Path(run["run_dir"])
    results = [decode_result(line) for line in (out / "results.jsonl").read_bytes().splitlines()]
    assert run["conversations_finished"] == len(results) == n
    assert run["kept"] == sum(r.passed for r in results) == len((out / "trajectories.jsonl").read_bytes().splitlines())
    for role in ("agent", "user"):
        for kind in ("prompt", "completion"):
            assert run[role][f"{kind}_tokens"] == sum(getattr(r.tokens, f"{role}_{kind}") for r in results)
        assert run[role]["turns"] > 0 and 0 < run[role]["latency_p50_s"] <= run[role]["latency_p90_s"]
    assert run["agent"]["completion_tokens"] > 0 and run["user"]["completion_tokens"] > 0
    assert run["generation_tokens_per_s"] == pytest.approx(run["completion_tokens"] / run["wall_s"])
    assert run["conversations_per_hour"] == pytest.approx(n / run["wall_s"] * 3600)
    assert 0 < run["writ_share"] < 1 and run["peak_rss_mb"] > 50
    assert report["projections"][0]["text"].startswith(run["label"])
    return run


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tiny_models["gguf"], tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


def test_bench_on_an_openai_compatible_server(server: str, tmp_path: Path) -> None:
    config = tmp_path / "served.toml"
    config.write_text(CONFIG.format(agent=f'backend = "openai"\nbase_url = "{server}"\nmodel = "tiny"\nseed = 0'))
    env = {**os.environ, "WRIT_CACHE": str(tmp_path / "cache")}
    run = _check(_bench(Path(sys.executable), config, tmp_path / "kept", env), "openai")
    assert run["engine_start_s"] > 0 and run["gpu_memory_mb"] is None


def test_bench_on_vllm(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    if not LANE_PYTHON.exists():
        need_optional(f"the vLLM lane venv ({LANE_PYTHON}; build it with .ci/vllm_env.sh)")
    config = tmp_path / "vllm.toml"
    agent = (
        f'backend = "vllm"\nmodel = "{tiny_models["hf"]}"\nmax_num_seqs = 8\nmax_model_len = 8192\n'
        "enforce_eager = true\nseed = 0"
    )
    config.write_text(CONFIG.format(agent=agent))
    env = {**os.environ, **LANE_ENV, "WRIT_CACHE": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    run = _check(_bench(LANE_PYTHON, config, tmp_path / "kept", env), "vllm")
    assert run["engine_start_s"] > 1  # vLLM's engine start is measured, not the model file check
    assert run["agent_model"] == tiny_models["hf"].name
    # vLLM reports prefix-cache hits: later turns of a conversation reuse its earlier prompt.
    assert run["agent"]["cached_later"] > 0, (run["agent"], run["user"], run["cached_tokens"])
