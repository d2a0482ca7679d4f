"""Kept trajectories per million generated tokens under the yield policies, by simulation.

Scripted agents and users (``bench/scripted.py``) follow each task's gold plan through the real
``Conversation`` (dead-state checks, branching, verification, grounding); the agent makes a wrong
write with probability ``p`` per write and a wrong argument (refused by the kernel) with
probability ``q`` per call. Each turn costs the tokens SmolLM2's tokenizer counts over the rendered
messages. Per ``p`` it prints kept trajectories per million generated tokens for the baseline (play
to the end), early stop, early stop with B = 2 and B = 4 branches, and the false-stop rate of the
dead-state rule (shadow mode: conversations flagged dead that still passed); then the cost of
precomputing the reachable hashes per task by W.

    python bench/yield.py [--tasks 60] [--q 0.1] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scripted import Scripted, Tokens, play, wrong_writes
from engine.run.quota import generated_tokens
from engine.run.reach import reachable_hashes
from engine.tasks.synthesis import synthesize
from envs import DOMAINS, get_domain

POLICIES = (("baseline", "off", 0), ("early stop", "stop", 0), ("stop + B=2", "stop", 2), ("stop + B=4", "stop", 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=60, help="tasks per domain")
    parser.add_argument("--q", type=float, default=0.1, help="wrong-argument probability per call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    tokens = Tokens.smollm2()
    worlds = []
    reach_cost: dict[int, list[tuple[float, int]]] = {}
    for name in DOMAINS:
        domain = get_domain(name)
        base = domain.from_struct(domain.generate_db(users=200, seed=args.seed))
        tasks, _ = synthesize(name, base, args.tasks, args.seed + 1)
        for task in tasks:
            t0 = time.perf_counter()
            reach = reachable_hashes(domain, base, task.actions)
            reach_cost.setdefault(task.w, []).append((time.perf_counter() - t0, len(reach)))
            worlds.append((domain, base, task, reach, wrong_writes(domain, base, task, tasks)))
    rows: list[dict[str, Any]] = []
    for p in (0.1, 0.3, 0.5):
        row: dict[str, Any] = {"p": p, "q": args.q}
        for label, mode, branches in (*POLICIES, ("shadow", "shadow", 0)):
            kept = spent = flagged = false_stops = 0
            for domain, base, task, reach, wrong in worlds:
                script = Scripted(task, wrong, p, args.q, tokens)
                r = play(
                    domain, base, task, script, seed=args.seed, dead_state=mode, branches=branches, reachable=reach
                )
                kept += r.passed
                spent += generated_tokens(r)
                if r.dead_at is not None:
                    flagged += 1
                    false_stops += r.passed
            if mode == "shadow":
                row["flagged dead"] = flagged
                row["false-stop rate"] = false_stops / flagged if flagged else 0.0
            else:
                row[label] = {"kept": kept, "generated_tokens": spent, "kept_per_M": kept / spent * 1e6}
        rows.append(row)
    cost = {
        w: {
            "tasks": len(v),
            "mean_ms": 1000 * statistics.fmean(s for s, _ in v),
            "max_ms": 1000 * max(s for s, _ in v),
            "mean_hashes": statistics.fmean(n for _, n in v),
        }
        for w, v in sorted(reach_cost.items())
    }
    info = {
        "conversations_per_cell": len(worlds),
        "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps({"rows": rows, "reach_cost": cost, **info}, indent=2))
        return
    print(
        f"writ yield simulation: {len(worlds)} tasks (airline + retail, {args.tasks} each), one conversation per "
        f"task and policy, q = {args.q}; tokens counted with SmolLM2's tokenizer"
    )
    head = f"{'p':>4}  " + "".join(f"{label:>18}" for label, _, _ in POLICIES) + f"{'false-stop rate':>18}"
    print("kept trajectories per million generated tokens (kept / conversations)")
    print(head)
    for row in rows:
        cells = "".join(
            f"{row[label]['kept_per_M']:>10.1f} ({row[label]['kept']:>3})" + " " * 2 for label, _, _ in POLICIES
        )
        rate = f"{row['false-stop rate']:.1%} of {row['flagged dead']}"
        print(f"{row['p']:>4}  {cells}{rate:>16}")
    print("reachable-hash precompute per task:")
    for w, c in cost.items():
        print(
            f"  W={w}: {c['tasks']:>3} tasks, mean {c['mean_ms']:.2f} ms, max {c['max_ms']:.2f} ms, "
            f"{c['mean_hashes']:.1f} hashes"
        )
    print(f"{info['seconds']} s on {info['machine']}, python {info['python']}")


if __name__ == "__main__":
    main()
