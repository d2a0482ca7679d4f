"""A quota run on the real SmolLM2-135M-Instruct (both roles) that its budget ends first.

The model keeps nothing in four messages, so the run must end by its attempt budget, say so in one
line and exit with status 3; the record shows the yield policies ran (a grounding verdict).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")

CONFIG = """
domain = "airline"
seed = 0
max_live = 1

[db]
users = 40
seed = 0

[tasks]
n = 2
seed = 0

[target]
kept = 1
max_attempts = 1

[dead_state]
mode = "stop"
branches = 1

[agent]
backend = "llamacpp"
model = "smollm2-135m"
n_ctx = 8192
n_parallel = 2

[agent_sampling]
temperature = 0.2
max_tokens = 64

[user_sampling]
temperature = 0.3
max_tokens = 32

[limits]
max_steps = 4
max_retries = 0
max_context_tokens = 8192

[output]
parquet = false
"""


def test_a_quota_run_on_smollm2_ends_by_its_budget_in_one_line(tmp_path: Path) -> None:
    from engine.backends.models import resolve_model_alias

    resolve_model_alias("smollm2-135m")  # a missing package is a one-line error naming the install
    config = tmp_path / "quota.toml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "run", str(config), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "WRIT_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "writ run: target not met: the attempt budget (max_attempts = 1) is spent; kept 0 of 1 (all 0/1) in 1 "
        "conversations, "
    ), last
    (record,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert record["reward"]["grounded"] in (0.0, 1.0) and record["termination"] == "max_turns"
    assert json.loads((out / "manifest.json").read_text())["status"] == "budget_spent"
