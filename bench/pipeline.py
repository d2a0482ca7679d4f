"""How much of `writ run`'s wall time is writ itself, not the model? (llama.cpp, 32k test model)

1) `writ run` plays a set of conversations on the llama.cpp backend with the 32k-vocabulary test
   model; every request it sends is recorded (prompt messages, tools, sampling, seed) with the
   number of tokens that came back.
2) The raw backend then replays exactly those requests, conversation by conversation with the
   same number of conversations in flight, unconstrained, each capped at the tokens the run
   generated for it. No kernel, no grammar, no verification, no files.
Overhead = 1 - raw time / writ time: scheduling, grammar, kernel, verification and I/O.

    python bench/pipeline.py [--tasks 16] [--live 8] [--steps 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from engine.backends import Backend, Completion, Request, SamplingParams
from engine.run.config import parse_run_config
from engine.run.runner import plan_run, run_plan


class Recording(Backend):
    """Pass requests to a real backend and remember each one with its completion."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.log: list[tuple[Request, Completion]] = []

    def agent_turn_constraint(self, tools: list[dict[str, Any]]) -> Any:
        return self.inner.agent_turn_constraint(tools)  # type: ignore[attr-defined]

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        completions = await self.inner.generate(requests)
        self.log.extend(zip(requests, completions, strict=True))
        return completions

    async def close(self) -> None:
        await self.inner.close()


def _config(tasks: int, live: int, steps: int, threads: int) -> dict[str, Any]:
    return {
        "domain": "airline", "seed": 1, "max_live": live,
        "db": {"users": 100, "seed": 0}, "tasks": {"n": tasks, "seed": 0},
        "agent": {"backend": "llamacpp", "model": "test:32k", "n_ctx": 16384, "n_parallel": live,
                  "n_threads": threads},
        "agent_sampling": {"temperature": 1.0, "max_tokens": 48},
        "user_sampling": {"temperature": 1.0, "max_tokens": 32},
        "limits": {"max_steps": steps, "max_errors": 3, "max_context_tokens": 16000},
        "output": {"parquet": False},
    }  # fmt: skip


async def _raw(
    backend: Backend, log: list[tuple[Request, Completion]], live: int
) -> tuple[float, int, int]:
    """Replay the recorded requests: per conversation in order, ``live`` conversations at once."""
    by_conv: dict[str, list[Request]] = defaultdict(list)
    for request, completion in log:
        cap = max(1, completion.completion_tokens)
        sampling = SamplingParams(max_tokens=cap, temperature=request.sampling.temperature,
                                  top_p=request.sampling.top_p)  # fmt: skip
        raw = msgspec.structs.replace(request, constraint=None, sampling=sampling)
        by_conv[request.request_id.split("/", 1)[0]].append(raw)
    gate = asyncio.Semaphore(live)
    generated = cached = 0

    async def play(requests: list[Request]) -> None:
        nonlocal generated, cached
        async with gate:
            for request in requests:
                (completion,) = await backend.generate([request])
                generated += completion.completion_tokens
                cached += completion.cached_tokens

    started = time.perf_counter()
    await asyncio.gather(*(play(rs) for rs in by_conv.values()))
    return time.perf_counter() - started, generated, cached


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    config = parse_run_config(_config(args.tasks, args.live, args.steps, args.threads), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_run(config, Path(tmp) / "run")
        from engine.backends import make_backend

        recording = Recording(make_backend(plan.agent))
        started = time.perf_counter()
        results = await run_plan(plan, recording)
        writ_s = time.perf_counter() - started
        plan.rundir.close()
        writ_tokens = sum(r.tokens.agent_completion + r.tokens.user_completion for r in results)
        prompt_tokens = sum(c.prompt_tokens for _, c in recording.log)
        cached = sum(c.cached_tokens for _, c in recording.log)
        raw_s, raw_tokens, raw_cached = await _raw(recording.inner, recording.log, args.live)
        await recording.close()
    return {
        "conversations": len(results), "requests": len(recording.log), "live": args.live,
        "generated_tokens": writ_tokens, "raw_generated_tokens": raw_tokens,
        "prompt_tokens": prompt_tokens, "cached_prompt_tokens": cached, "raw_cached_prompt_tokens": raw_cached,
        "writ_s": round(writ_s, 3), "raw_s": round(raw_s, 3),
        "writ_tok_s": round(writ_tokens / writ_s, 1), "raw_tok_s": round(raw_tokens / raw_s, 1),
        "overhead": round(1 - raw_s / writ_s, 4),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--live", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 0))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("WRIT_CACHE", str(Path(tempfile.gettempdir()) / "writ-bench-cache"))
    row = asyncio.run(_main(args))
    if args.json:
        print(json.dumps(row))
        return
    print(f"writ pipeline overhead — Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, llama.cpp, test:32k, {args.live} conversations in flight")  # fmt: skip
    print(f"{'':24}{'seconds':>10}{'gen tokens':>12}{'tok/s':>10}")
    print(f"{'writ run':24}{row['writ_s']:>10.2f}{row['generated_tokens']:>12}{row['writ_tok_s']:>10.1f}")
    print(f"{'raw backend, same work':24}{row['raw_s']:>10.2f}{row['raw_generated_tokens']:>12}"
          f"{row['raw_tok_s']:>10.1f}")  # fmt: skip
    print(f"writ's own overhead: {row['overhead']:.1%} of wall time (target < 10%); "
          f"{row['requests']} requests, {row['prompt_tokens']} prompt tokens "
          f"({row['cached_prompt_tokens']} from cache; raw replay {row['raw_cached_prompt_tokens']})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
