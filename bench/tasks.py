"""Benchmark task synthesis: wall time to generate N tasks per domain on tau2-bench's DB.

Each domain runs in its own process (fresh interpreter, no warm caches from the other domain),
``--repeats`` times; the DB load is timed apart from generation. Wall time ("gen s", the figure the
10 s target is about) and the process's CPU time ("cpu s", what the work costs when other programs
share the cores; the load average is printed) are both shown. Prints tasks/s, attempts, the
share of attempts that became tasks, how many (W, E) cells were filled, and the 10 s target.

    python bench/tasks.py [--shared ../shared] [--n 1000] [--seed 3] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_S = 10.0
ROOT = Path(__file__).resolve().parents[1]


def run_one(shared: Path, domain: str, n: int, seed: int) -> dict[str, Any]:
    """Generate in this process and return the figures (called in a child process)."""
    from engine.tasks.synthesis import synthesize
    from envs import get_domain

    start = time.perf_counter()
    base = get_domain(domain).load(shared / "tau2" / domain / "db.json")
    load_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    tasks, report = synthesize(domain, base, n, seed)
    gen_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu
    cells = {(t.w, t.e) for t in tasks}
    return {
        "domain": domain,
        "n": n,
        "tasks": len(tasks),
        "load_s": load_s,
        "generate_s": gen_s,
        "cpu_s": cpu_s,
        "attempts": report.attempts,
        "rejections": sum(report.rejections.values()),
        "cells": len(cells),
        "w_values": sorted({w for w, _ in cells}),
        "e_max": max((e for _, e in cells), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--domains", help="comma-separated (default: every registered domain tau2 ships a DB for)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.shared, args.child, args.n, args.seed)))
        return
    results: dict[str, list[dict[str, Any]]] = {}
    from envs import DOMAINS

    names = args.domains.split(",") if args.domains else [d for d in DOMAINS if (args.shared / "tau2" / d).is_dir()]
    for domain in names:
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--child", domain, "--shared", str(args.shared),
                 "--n", str(args.n), "--seed", str(args.seed)],
                check=True, capture_output=True, text=True, cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )  # fmt: skip
            results.setdefault(domain, []).append(json.loads(out.stdout))
    summary = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg()[0],
        "domains": {
            d: {
                **runs[0],
                "generate_s_median": statistics.median(r["generate_s"] for r in runs),
                "generate_s_all": [round(r["generate_s"], 3) for r in runs],
                "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
            }
            for d, runs in results.items()
        },
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"task synthesis, python {summary['python']}, {summary['machine']},"
          f" load average {summary['load_average']:.1f}")  # fmt: skip
    head = f"{'domain':<8}{'tasks':>7}{'load s':>8}{'gen s':>8}{'cpu s':>7}{'tasks/s':>9}{'attempts':>10}"
    print(head + f"{'kept':>7}{'cells':>7}{'W':>14}{'E max':>7}{'< 10 s':>8}")
    for domain, s in summary["domains"].items():
        gen = s["generate_s_median"]
        print(
            f"{domain:<8}{s['tasks']:>7}{s['load_s']:>8.2f}{gen:>8.2f}{s['cpu_s_median']:>7.2f}"
            f"{s['tasks'] / gen:>9.0f}"
            f"{s['attempts']:>10}{s['tasks'] / s['attempts']:>7.0%}{s['cells']:>7}"
            f"{s['w_values']!s:>14}{s['e_max']:>7}{'yes' if gen < TARGET_S else 'NO':>8}"
        )
    print(f"(median of {args.repeats} runs, each in a fresh process; all runs: "
          + ", ".join(f"{d} {s['generate_s_all']}" for d, s in summary["domains"].items()) + ")")  # fmt: skip


if __name__ == "__main__":
    main()
