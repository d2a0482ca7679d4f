"""Benchmark the environment kernel on tau2-bench's recorded gold replays.

Prints, per domain: median time per read call, per write call, per state comparison with a goal
(incremental hash vs the goal hash), per whole task (fresh state + replay + compare), and the
memory of 10,000 concurrent conversation states next to the memory of one loaded DB. tau2-bench's
own figures on this kind of machine (../shared/LEADS.md) are printed beside ours.

    python bench/env_kernel.py [--shared ../shared] [--states 10000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec

from envs import get_domain

# tau2-bench measured here with the same replays (../shared/LEADS.md), milliseconds.
TAU2_TASK_MS = {"airline": 216.0, "retail": 82.0}
TAU2_HASH_MS = {"airline": 100.0, "retail": 40.0}
TAU2_READ_US = {"airline": 29.0, "retail": 13.0}
TAU2_WRITE_US = {"airline": 69.0, "retail": 47.0}


def _load_replays(shared: Path, domain: str) -> list[dict[str, Any]]:
    path = shared / "tau2" / "replays" / f"{domain}_train.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6 if samples else float("nan")


def bench_domain(shared: Path, domain: str, n_states: int, repeats: int) -> dict[str, Any]:
    dom = get_domain(domain)
    db_path = shared / "tau2" / domain / "db.json"
    gc.collect()
    tracemalloc.start()
    base = dom.load(db_path)
    db_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    tasks = _load_replays(shared, domain)
    calls = [[(c["name"], msgspec.json.encode(c["arguments"])) for c in t["calls"]] for t in tasks]
    goals = []
    for task_calls in calls:  # the goal of each task: its gold final state
        state = base.new_state()
        for name, args in task_calls:
            dom.call(state, name, args)
        goals.append(state.hash())
    base.base_sum()  # warm the base digest once, as a long-running process would

    reads: list[float] = []
    writes: list[float] = []
    compares: list[float] = []
    whole: list[float] = []
    clock = time.perf_counter
    for _ in range(repeats):
        for task_calls, goal in zip(calls, goals, strict=True):
            t0 = clock()
            state = base.new_state()
            for name, args in task_calls:
                c0 = clock()
                dom.call(state, name, args)
                elapsed = clock() - c0
                (writes if dom.tools[name].mutates else reads).append(elapsed)
            c0 = clock()
            matched = state.hash() == goal
            t1 = clock()
            compares.append(t1 - c0)
            whole.append(t1 - t0)
            assert matched

    gc.collect()
    tracemalloc.start()
    states = []
    for i in range(n_states):
        state = base.new_state()
        for name, args in calls[i % len(calls)]:
            dom.call(state, name, args)
        state.hash()
        states.append(state)
    states_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    changed = sum(len(keys) for s in states for keys in s.changed().values()) / max(1, len(states))
    del states

    return {
        "domain": domain,
        "tasks": len(tasks),
        "read_calls": len(reads) // repeats,
        "write_calls": len(writes) // repeats,
        "read_us": _median_us(reads),
        "write_us": _median_us(writes),
        "compare_us": _median_us(compares),
        "task_ms": statistics.median(whole) * 1e3,
        "db_mb": db_bytes / 2**20,
        "states": n_states,
        "states_mb": states_bytes / 2**20,
        "states_over_db": states_bytes / db_bytes,
        "records_copied_per_state": changed,
        "tau2_task_ms": TAU2_TASK_MS[domain],
        "speedup": TAU2_TASK_MS[domain] / (statistics.median(whole) * 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--states", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object per domain")
    args = parser.parse_args()
    if not (args.shared / "tau2" / "replays").is_dir():
        sys.exit(f"bench: tau2 replays not found under {args.shared} (use --shared)")

    rows = [bench_domain(args.shared, d, args.states, args.repeats) for d in ("airline", "retail")]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"writ env kernel — Python {platform.python_version()}, msgspec {msgspec.__version__}, "
          f"{platform.machine()}, {platform.processor() or 'cpu'}")  # fmt: skip
    header = (
        f"{'domain':8} {'read µs':>8} {'write µs':>9} {'compare µs':>11} {'task ms':>8} "
        f"{'tau2 task ms':>13} {'speedup':>8} {'DB MB':>7} {'10k states MB':>14} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['domain']:8} {r['read_us']:8.1f} {r['write_us']:9.1f} {r['compare_us']:11.1f} "
            f"{r['task_ms']:8.3f} {r['tau2_task_ms']:13.1f} {r['speedup']:7.0f}x {r['db_mb']:7.1f} "
            f"{r['states_mb']:14.1f} {r['states_over_db']:5.2f}x"
        )
    print(
        "targets: task <= 1 ms, compare <= 50 µs, 10k states <= 2x one DB. "
        f"tau2 reference (LEADS.md): read {TAU2_READ_US} µs, write {TAU2_WRITE_US} µs, "
        f"hash {TAU2_HASH_MS} ms"
    )


if __name__ == "__main__":
    main()
