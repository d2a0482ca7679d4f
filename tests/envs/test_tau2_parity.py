"""Replays tau2-bench's recorded gold calls: every output string and DB hash must match tau2's."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from envs import BaseDB, get_domain
from envs.kernel import tau2_db_hash


def _replays(tau2_dir: Path, domain: str) -> list[dict]:
    path = tau2_dir / "replays" / f"{domain}_train.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_every_replayed_call_matches_tau2(
    domain: str, tau2_dir: Path, tau2_bases: dict[str, BaseDB]
) -> None:
    dom = get_domain(domain)
    base = tau2_bases[domain]
    tasks = _replays(tau2_dir, domain)
    assert len(tasks) >= 20
    n_calls = 0
    for task in tasks:
        state = base.new_state()
        assert tau2_db_hash(state) == task["initial_db_hash"], task["task_id"]
        for call in task["calls"]:
            result = dom.call(state, call["name"], call["arguments"], strict=True)
            assert result.output == call["output"], (task["task_id"], call["name"])
            assert result.error == call["error"], (task["task_id"], call["name"])
            n_calls += 1
        assert tau2_db_hash(state) == task["final_db_hash"], task["task_id"]
    assert n_calls > 80


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_replay_command_prints_tau2_outputs_and_hashes(domain: str, tau2_dir: Path) -> None:
    replays = tau2_dir / "replays" / f"{domain}_train.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "env", "replay", "--domain", domain,
         "--db", str(tau2_dir / domain / "db.json"), "--replays", str(replays)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = _replays(tau2_dir, domain)
    assert [p["task_id"] for p in printed] == [t["task_id"] for t in expected]
    for got, want in zip(printed, expected, strict=True):
        assert got["outputs"] == [c["output"] for c in want["calls"]]
        assert got["final_db_hash"] == want["final_db_hash"]


def _full_hash(base: BaseDB) -> str:
    """tau2's hash of the base, computed from scratch (no cached fragments)."""
    text = json.dumps(msgspec.to_builtins(base.db), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def test_replays_leave_the_shared_base_untouched(
    tau2_dir: Path, tau2_bases: dict[str, BaseDB]
) -> None:
    for domain in ("airline", "retail"):
        base = tau2_bases[domain]
        before = _full_hash(base)
        dom = get_domain(domain)
        for task in _replays(tau2_dir, domain):
            state = base.new_state()
            for call in task["calls"]:
                dom.call(state, call["name"], call["arguments"])
        assert _full_hash(base) == before
