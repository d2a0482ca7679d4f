"""One config of ``writ bench``, played in its own process through the real run pipeline.

    python -m engine.bench.child CONFIG --out RUN_DIR --conversations N --time-limit S --label L
                                 [--tasks-file F --db-path P]

Stages: 1) read the config with the bench's overrides (N tasks, one conversation each, no Ray;
``--tasks-file``/``--db-path`` replay another run's tasks on its DB) and plan the run into RUN_DIR
(``plan_run``: DB, tasks, preflight); the tasks are played as decoded from RUN_DIR/tasks.jsonl,
the form a task-file run reads, and ``tasks_sha256`` hashes their encoding; 2) start the engines
(``make_backends``, timed: engine start); 3) play the conversations with ``run_plan`` (same
grammars, kernel and verification as ``writ run``), every ``generate`` call timed by
``TimedBackend``, until all finish, S seconds pass or SIGINT/SIGTERM arrives (the rest is
cancelled; what finished counts); 4) compute the figures (``engine.bench.report.run_figures``)
and close the engines.

It talks to its parent in JSON lines on its original stdout; anything else written to fd 1
(libraries, llama.cpp) goes to stderr. Events: ``stage`` (text), ``planned`` (tasks_file,
db_file, conversations), ``conversation`` (finished, total, kept, generated, elapsed_s),
``figures`` (a ``RunFigures``) and ``error`` (a one-line message, exit status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import tomllib
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import msgspec

from engine.backends import Backend, Completion, Request
from engine.bench.report import RunFigures, TurnSample, role_of, run_figures
from engine.bench.system import gpu_memory, llama_cpp_system_info, peak_rss_mb
from engine.records import ConversationResult
from engine.run.cli import backend_notes
from engine.run.config import RunConfig, RunConfigError, parse_run_config
from engine.run.runner import RunPlan, finish_manifest, make_backends, plan_run, run_plan
from engine.tasks.model import decode_task, encode_task

__all__ = ["TimedBackend", "bench_config", "main"]


class TimedBackend(Backend):
    """A backend that records every answered request (role, wall time around ``generate``, tokens)."""

    def __init__(self, inner: Backend, turns: list[TurnSample]) -> None:
        self.inner = inner
        self.turns = turns
        self.name, self.model, self.notes = inner.name, inner.model, inner.notes

    def __getattr__(self, name: str) -> Any:  # agent_turn_constraint, tool_format, ...
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        started = time.perf_counter()
        completions = await self.inner.generate(requests)
        latency = time.perf_counter() - started
        for c in completions:
            self.turns.append(
                TurnSample(
                    role=role_of(c.request_id), latency_s=latency, prompt_tokens=c.prompt_tokens,
                    cached_tokens=c.cached_tokens, completion_tokens=c.completion_tokens,
                )
            )  # fmt: skip
        return completions

    async def close(self) -> None:
        await self.inner.close()


def bench_config(
    path: str | Path, conversations: int, tasks_file: str | None = None, db_path: str | None = None
) -> tuple[RunConfig, list[str]]:
    """The run config at ``path`` with the bench's overrides: ``conversations`` tasks, one conversation
    each, no Ray scale-out (one engine is measured), and optionally another run's task file and DB;
    also notes on what was overridden that a reader of the figures should know."""
    p = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunConfigError(f"cannot read config {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(f"{p}: not valid TOML: {exc}") from None
    for section in ("tasks", "db", "scale"):
        if not isinstance(data.setdefault(section, {}), dict):
            raise RunConfigError(f"{p}: {section}: must be a table")
    notes = []
    if data["scale"].get("ray_actors"):
        notes.append(f"scale.ray_actors = {data['scale']['ray_actors']} ignored: writ bench measures one engine")
    if data.get("conversations_per_task", 1) != 1:
        notes.append("conversations_per_task set to 1: every conversation plays a different task")
    data["tasks"]["n"] = conversations
    data["conversations_per_task"] = 1
    data["scale"]["ray_actors"] = 0
    if tasks_file is not None:
        data["tasks"]["file"] = tasks_file
    if db_path is not None:
        data["db"]["path"] = db_path
    return parse_run_config(data, str(p)), notes


class _Channel:
    """The JSON-lines channel to the parent: the process's original stdout."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: TextIO = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)  # stray prints and C libraries' stdout go to stderr from here on

    def emit(self, event: str, **fields: Any) -> None:
        try:
            self._out.write(json.dumps({"event": event, **fields}) + "\n")
        except (BrokenPipeError, OSError):
            pass  # the parent is gone; finish quietly


class _Stop:
    """SIGINT/SIGTERM before the event loop runs: remember it, stop at the next stage."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True


def _short_model(section: dict[str, Any] | None) -> str:
    model = str((section or {}).get("model", ""))
    return Path(model).name if "/" in model else model


async def _measure(
    plan: RunPlan, time_limit: float, chan: _Channel, stop_flag: _Stop, fields: dict[str, Any], overridden: list[str]
) -> RunFigures:
    """Stages 2-4: start the engines, play until done, the time limit or a signal; the figures."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        stop_flag.requested = True
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    if stop_flag.requested:
        on_signal()
    turns: list[TurnSample] = []
    results: list[ConversationResult] = []
    wall = loop_cpu = process_cpu = 0.0
    status, engine_start, notes = "interrupted", None, []
    gpu: tuple[float | None, str | None] = (None, None)
    agent = user = None
    try:
        if not stop.done():
            # 2) Start the engines (model load included).
            chan.emit("stage", text="starting the engine")
            started = time.perf_counter()
            agent, user = make_backends(plan)
            engine_start = time.perf_counter() - started
            notes = backend_notes(plan, agent, user)
        if agent is not None and not stop.done():
            timed_agent = TimedBackend(agent, turns)
            timed_user = TimedBackend(user, turns) if user is not None else None
            # 3) Play; count what finished when the time limit or a signal stops it.
            chan.emit("stage", text="playing conversations")
            total = len(plan.pending)

            def progress(result: ConversationResult, finished: int, _total: int) -> None:
                results.append(result)
                chan.emit(
                    "conversation", finished=len(results), total=total, kept=sum(r.passed for r in results),
                    generated=sum(t.completion_tokens for t in turns), elapsed_s=time.perf_counter() - t0,
                )  # fmt: skip

            cpu0, proc0, t0 = time.thread_time(), time.process_time(), time.perf_counter()
            run = asyncio.ensure_future(run_plan(plan, timed_agent, timed_user, progress))
            done, _ = await asyncio.wait({run, stop}, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED)
            wall, loop_cpu = time.perf_counter() - t0, time.thread_time() - cpu0
            process_cpu = time.process_time() - proc0
            answered = len(turns)  # the turns answered when the run stopped
            if run in done:
                run.result()
                status = "complete"
            else:
                status = "interrupted" if stop.done() else "time_limit"
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
                finish_manifest(plan, wall)
                del turns[answered:]
        gpu = gpu_memory()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, stop_flag)
        if agent is not None:
            await agent.close()
        if user is not None:
            await user.close()
    # 4) The figures.
    return run_figures(
        turns=turns, results=results, wall_s=wall, loop_cpu_s=loop_cpu, status=status,
        engine_start_s=engine_start, process_cpu_s=process_cpu, peak_rss_mb=peak_rss_mb(),
        gpu_memory_mb=gpu[0], gpu_memory_source=gpu[1], llama_cpp_system_info=llama_cpp_system_info(),
        notes=[*overridden, *notes], **fields,
    )  # fmt: skip


def _bench(args: argparse.Namespace, chan: _Channel, stop_flag: _Stop) -> RunFigures:
    # 1) Plan: DB, tasks (or the other run's), preflight.
    chan.emit("stage", text="planning: DB, tasks, model preflight")
    started = time.perf_counter()
    config, overridden = bench_config(args.config, args.conversations, args.tasks_file, args.db_path)
    base_dir = Path.cwd()
    plan = plan_run(config, args.out, base_dir=base_dir)
    try:
        # Play the tasks as decoded from the directory's task file, as a task-file run and a resume do
        # (a generated task need not equal its decoded form), so the two runs of --against match.
        played = [decode_task(line) for line in plan.rundir.tasks.read_bytes().splitlines() if line.strip()]
        plan.tasks = played
        plan.pending = [(task, 0) for task in played][: args.conversations]
        db_file = (base_dir / config.db.path).resolve() if config.db.path else plan.rundir.db.resolve()
        chan.emit(
            "planned", tasks_file=str(plan.rundir.tasks.resolve()), db_file=str(db_file),
            conversations=len(plan.pending),
        )  # fmt: skip
        fields = {
            "label": args.label,
            "config": str(args.config),
            "run_dir": str(Path(args.out).resolve()),
            "backend": str(plan.agent.get("backend", "")),
            "agent_model": _short_model(config.agent),
            "user_model": _short_model(config.user or config.agent),
            "tasks_sha256": hashlib.sha256(b"".join(encode_task(t) + b"\n" for t, _ in plan.pending)).hexdigest(),
            "conversations_planned": len(plan.pending),
            "plan_s": time.perf_counter() - started,
        }
        return asyncio.run(_measure(plan, args.time_limit, chan, stop_flag, fields, overridden))
    finally:
        plan.rundir.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one config and report its figures to the parent; 2 on a one-line error."""
    parser = argparse.ArgumentParser(prog="python -m engine.bench.child", description="One config of writ bench.")
    parser.add_argument("config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--time-limit", type=float, required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--tasks-file")
    parser.add_argument("--db-path")
    args = parser.parse_args(argv)
    stop_flag = _Stop()
    signal.signal(signal.SIGINT, stop_flag)
    signal.signal(signal.SIGTERM, stop_flag)
    chan = _Channel()
    try:
        figures = _bench(args, chan, stop_flag)
    except (ValueError, OSError, ImportError) as exc:
        chan.emit("error", message=" ".join(str(exc).split()))
        return 2
    except Exception as exc:  # a bug: the traceback goes to the log, one line to the parent
        traceback.print_exc()
        chan.emit("error", message=f"the benchmark child crashed: {type(exc).__name__}: {exc}")
        return 1
    chan.emit("figures", figures=msgspec.to_builtins(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
