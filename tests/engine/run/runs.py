"""Helpers for tests that run ``writ run`` on the tiny test model: a config, the CLI, what a run left.

``cache`` is a module-scoped fixture (one WRIT_CACHE per test module, so the test model is built
once); a test module imports it by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.records import decode_result

__all__ = ["CONFIG", "cache", "results_of", "signature", "start_writ", "writ", "writ_env", "write_config"]

CONFIG = """
domain = "{domain}"
seed = 3
conversations_per_task = 1
max_live = {live}

[db]
users = {users}
seed = 1

[tasks]
n = {n}
seed = 5

[agent]
backend = "llamacpp"
model = "test:small"
n_ctx = 16384
n_parallel = 4
n_threads = 1

[agent_sampling]
temperature = 1.0
max_tokens = 24

[user_sampling]
temperature = 1.0
max_tokens = 12

[limits]
max_steps = {steps}
max_errors = 3
max_context_tokens = 16000
"""


def write_config(
    tmp: Path, name: str, domain: str = "airline", n: int = 20, steps: int = 6, live: int = 4, users: int = 60
) -> Path:
    """A run config on the tiny test model at ``tmp/name.toml``."""
    path = tmp / f"{name}.toml"
    path.write_text(CONFIG.format(domain=domain, n=n, steps=steps, live=live, users=users))
    return path


def writ_env(cache: Path) -> dict[str, str]:
    """The environment of a ``writ`` child: this one with its own WRIT_CACHE."""
    return {**os.environ, "WRIT_CACHE": str(cache)}


def writ(
    args: list[str], cache: Path, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``writ ARGS`` (as ``python -m engine``) to its end; its output is captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=writ_env(cache),
        timeout=timeout, check=False, cwd=cwd,
    )  # fmt: skip


def start_writ(args: list[str], cache: Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``writ ARGS`` in the background; stderr is a pipe (text), stdout is dropped."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args], env=writ_env(cache), cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WRIT_CACHE shared by the tests of one module."""
    return tmp_path_factory.mktemp("writ-cache")


def results_of(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's results.jsonl, each checked to be a complete ConversationResult."""
    data = (run_dir / "results.jsonl").read_bytes()
    assert data == b"" or data.endswith(b"\n"), "results.jsonl ends in a cut line"
    for line in data.splitlines():
        decode_result(line)  # every line is a complete, valid record
    return [json.loads(line) for line in data.splitlines()]


def signature(run_dir: Path) -> dict[str, tuple[str, str, bool, str]]:
    """What must not depend on how a run was stopped and resumed: per conversation id, its messages,
    final DB hash, verdict and termination."""
    return {
        r["conversation_id"]: (json.dumps(r["messages"]), r["final_hash"], r["passed"], r["termination"])
        for r in results_of(run_dir)
    }
