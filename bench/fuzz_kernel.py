"""Fuzz the kernel's error boundary at scale: random hostile calls through ``Domain.call``.

The strategy is tests/envs/hostile.py's (valid calls with real ids, writes, huge and negative
integers, NaN/inf, lone surrogates, extra and missing keys, non-object arguments, deep nesting,
non-dict mappings, bad tool names, costly ``calculate`` expressions), driven by hypothesis over
tau2-bench's DBs. Each example is a fresh conversation state and a sequence of 4-12 calls (in half of
them, two calls in three are valid writes).
Prints, per domain and category: calls, refusals, the slowest call (process CPU time, gc off),
and the counts that must stay zero: escaped exceptions, faults, refusals that changed the state,
malformed results. Exits 1 if any of those is non-zero.

    python bench/fuzz_kernel.py --examples 30000 [--seed 0] [--domains airline retail] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the strategy lives in the test tree

import hypothesis  # noqa: E402
import msgspec  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from envs import get_domain  # noqa: E402
from tests.envs.calls import DOMAIN_CALLS  # noqa: E402
from tests.envs.hostile import CATEGORIES, Outcome, draw_step, run_call  # noqa: E402

MUST_BE_ZERO = ("escaped", "faults", "changed_on_refusal", "bad_results")


class Tally:
    """Counts per category, the slowest call, and the first few problems of each kind."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.examples: list[str] = []
        self.slowest: Outcome | None = None
        self.cpu_s = 0.0

    def add(self, o: Outcome) -> None:
        self.calls[o.category] += 1
        self.refused[o.category] += o.error
        self.cpu_s += o.cpu_s
        if self.slowest is None or o.cpu_s > self.slowest.cpu_s:
            self.slowest = o
        for kind, bad in (("escaped", o.escaped), ("faults", o.fault), ("bad_results", o.bad_result),
                          ("changed_on_refusal", o.changed_on_refusal or None)):  # fmt: skip
            if bad is not None:
                self.problems[kind] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{kind}: {o.category} {o.name}: {bad}")


def fuzz_domain(shared: Path, domain: str, examples: int, seed_value: int) -> dict[str, Any]:
    dom = get_domain(domain)
    base = dom.load(shared / "tau2" / domain / "db.json")
    tally = Tally()

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def conversation(data: st.DataObject) -> None:
        state = base.new_state()
        write_run = data.draw(st.booleans())
        for _ in range(data.draw(st.integers(4, 12))):
            tally.add(run_call(dom, state, data.draw(draw_step(domain, state, write_run))))

    started = time.perf_counter()
    conversation()
    slow = tally.slowest
    return {
        "domain": domain,
        "examples": examples,
        "seed": seed_value,
        "calls": sum(tally.calls.values()),
        "per_category": {c: {"calls": tally.calls[c], "refused": tally.refused[c]} for c in CATEGORIES},
        "max_call_cpu_ms": round(slow.cpu_s * 1e3, 3) if slow else 0.0,
        "slowest_call": f"{slow.category} {slow.name}" if slow else "",
        "mean_call_cpu_us": round(tally.cpu_s / max(1, sum(tally.calls.values())) * 1e6, 1),
        **{k: tally.problems[k] for k in MUST_BE_ZERO},
        "problem_examples": tally.examples,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=30_000, help="conversations per domain (4-12 calls each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domains", nargs="+", default=list(DOMAIN_CALLS), choices=list(DOMAIN_CALLS))
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--json", action="store_true", help="print one JSON object per domain")
    args = parser.parse_args()
    if not all((args.shared / "tau2" / d / "db.json").is_file() for d in args.domains):
        sys.exit(f"fuzz_kernel: tau2 DBs not found under {args.shared} (use --shared)")

    if not args.json:
        print(f"writ kernel fuzz — Python {platform.python_version()}, msgspec {msgspec.__version__}, "
              f"hypothesis {hypothesis.__version__}, {platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    rows = []
    for domain in args.domains:
        row = fuzz_domain(args.shared, domain, args.examples, args.seed)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(f"\n{domain}: {row['calls']} calls in {row['examples']} conversations (seed {row['seed']}), "
              f"{row['wall_s']} s")  # fmt: skip
        print(f"  {'category':14} {'calls':>8} {'refused':>8}")
        for category, c in row["per_category"].items():
            print(f"  {category:14} {c['calls']:8} {c['refused']:8}")
        print(f"  slowest call: {row['max_call_cpu_ms']} ms CPU ({row['slowest_call']}); "
              f"mean {row['mean_call_cpu_us']} µs")  # fmt: skip
        print("  " + ", ".join(f"{k}: {row[k]}" for k in MUST_BE_ZERO))
        for line in row["problem_examples"]:
            print(f"    {line[:200]}")
    sys.exit(1 if any(row[k] for row in rows for k in MUST_BE_ZERO) else 0)


if __name__ == "__main__":
    main()
