"""Several processes building the test models into one cache folder at once (issue 9, item 5)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from engine.testmodel import build_test_models

ROOT = Path(__file__).resolve().parents[3]
ROUNDS = 4

# Each builder imports first, then waits for the same start time, so the builds overlap.
_BUILDER = """
import sys, time
from engine.testmodel import build_test_models
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
for _ in range({rounds}):
    build_test_models(sys.argv[1], seed=0, vocab="small")
"""


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_three_processes_build_into_one_empty_cache_dir(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "small-seed0"
    start = time.time() + 3.0
    script = _BUILDER.format(rounds=ROUNDS)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(cache), repr(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    assert [code for _, code in outcomes] == [0, 0, 0], [err.strip().splitlines()[-1:] for err, _ in outcomes]
    # the cache holds exactly one complete copy: the same bytes as a build made alone, no temp files left
    alone = build_test_models(tmp_path / "alone", seed=0, vocab="small")
    assert _tree(cache) == _tree(alone["gguf"].parent)
