"""``writ run CONFIG --out RUN_DIR``: the main job, with a live progress bar and a summary table.

With a ``[target]`` table (``engine.run.quota``) the bar counts kept trajectories against the target
(its ETA follows the observed keep rate), and a run that a budget ends first says so in one line and
exits with status 3.

SIGINT or SIGTERM (``engine.interrupt``) during start-up stops it with one line; during the
conversations it cancels those in flight (none is recorded half), keeps what finished (fsynced line
by line), marks the manifest ``interrupted`` and ends with one line saying how to resume.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine import interrupt
from engine.backends import Backend
from engine.records import ConversationResult
from engine.run.config import load_run_config
from engine.run.runner import RunPlan, finish_manifest, make_backends, plan_run, run_plan

__all__ = ["backend_notes", "cache_line", "cache_share", "run"]


def summary_table(results: list[ConversationResult], title: str) -> Table:
    """Conversations, pass rate and tokens by trajectory type, plus termination reasons."""
    table = Table(title=title)
    for column in ("trajectory type", "conversations", "passed", "pass rate", "agent tokens/conv"):
        table.add_column(column, justify="right" if column != "trajectory type" else "left")
    groups: dict[str, list[ConversationResult]] = {}
    for r in results:
        groups.setdefault(r.trajectory_type, []).append(r)
    for name, rows in [*sorted(groups.items()), ("all", results)]:
        passed = sum(r.passed for r in rows)
        tokens = sum(r.tokens.agent_completion for r in rows) / max(1, len(rows))
        table.add_row(name, str(len(rows)), str(passed), f"{passed / max(1, len(rows)):.1%}", f"{tokens:.0f}")
    reasons = Counter(r.termination for r in results)
    table.caption = "terminations: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    return table


def backend_notes(plan: RunPlan, agent: Backend, user: Backend | None) -> list[str]:
    """What the backends decided (threads, prompt format) and warnings about the setup."""
    lines = [f"agent: {note}" for note in agent.notes]
    if user is not None:
        lines += [f"user: {note}" for note in user.notes]
    slots = plan.agent.get("n_parallel")
    if user is None and plan.agent.get("backend") == "llamacpp" and isinstance(slots, int):
        if slots < 2 * plan.config.max_live:
            lines.append(
                f"warning: n_parallel = {slots} gives fewer than two cache slots per live conversation "
                f"(max_live = {plan.config.max_live}); the agent's and the user's prompts will evict "
                f"each other's prefix cache. Set n_parallel = {2 * plan.config.max_live}."
            )
    return lines


def cache_share(results: list[ConversationResult]) -> dict[str, tuple[int, int]]:
    """Per role, (cached, prompt) tokens over later turns, where the prefix cache should serve most."""
    share = {}
    for role in ("agent", "user"):
        cached = sum(getattr(r.tokens, f"{role}_cached_later") for r in results)
        prompt = sum(getattr(r.tokens, f"{role}_prompt_later") for r in results)
        share[role] = (cached, prompt)
    return share


def cache_line(results: list[ConversationResult]) -> str:
    """One line: the share of later-turn prompt tokens served from the prefix cache, per role."""
    parts = []
    for role, (cached, prompt) in cache_share(results).items():
        parts.append(f"{role} {cached / prompt:.1%} of {prompt:,}" if prompt else f"{role} -")
    return "prefix cache on later turns: " + ", ".join(parts) + " prompt tokens"


def _open_backends(plan: RunPlan, console: Console) -> tuple[Backend, Backend | None]:
    """Start the plan's backends; the choices they note (tool format, threads, slots) go to run.log
    and the console."""
    agent_backend, user_backend = make_backends(plan)
    for line in backend_notes(plan, agent_backend, user_backend):
        plan.rundir.log(line)
        console.print(f"[dim]{escape(line)}[/dim]")
    return agent_backend, user_backend


def run(
    config: Annotated[Path, typer.Argument(help="Run config (TOML), e.g. configs/quickstart.toml.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory; re-running resumes it.")],
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Synthesize trajectories: play every task's conversations, verify them, keep the passing ones."""
    console = Console(stderr=True, soft_wrap=True)
    again = f"writ run {shlex.quote(str(config))} --out {shlex.quote(str(out))}"
    cfg = load_run_config(config)
    try:
        plan = plan_run(cfg, out, base_dir=Path.cwd())
    except interrupt.Interrupted as exc:
        raise exc.with_message(f"interrupted while starting; start again with: {again}") from None
    if cfg.target is not None:
        _run_quota(plan, console, again, quiet)
        return
    total = plan.done + len(plan.pending)
    if plan.resumed:
        console.print(f"resuming {out}: {plan.done} of {total} conversations already finished")
    tokens = 0
    passed = sum(r.passed for r in plan.rundir.read_results())
    started = time.perf_counter()
    bar = Progress(
        TextColumn("[bold]writ run"), BarColumn(), MofNCompleteColumn(),
        TextColumn("passed {task.fields[passed]}"), TextColumn("{task.fields[rate]} tok/s"),
        TimeRemainingColumn(), console=console, disable=quiet,
    )  # fmt: skip
    try:
        with bar:
            task_id = bar.add_task("run", total=total, completed=plan.done, passed=passed, rate="-")

            def progress(result: ConversationResult, finished: int, _total: int) -> None:
                nonlocal tokens, passed
                tokens += result.tokens.agent_completion + result.tokens.user_completion
                passed += result.passed
                rate = f"{tokens / max(1e-9, time.perf_counter() - started):.0f}"
                bar.update(task_id, completed=finished, passed=passed, rate=rate)

            async def main() -> None:
                if cfg.scale.ray_actors > 0:  # scale-out: every Ray actor builds its own engines
                    from engine.run.ray_scale import run_plan_ray

                    with interrupt.cancelling(asyncio.get_running_loop(), asyncio.current_task()):
                        await run_plan_ray(plan, progress)
                    return
                agent_backend, user_backend = _open_backends(plan, console)
                try:
                    with interrupt.cancelling(asyncio.get_running_loop(), asyncio.current_task()):
                        await run_plan(plan, agent_backend, user_backend, progress)
                finally:
                    await agent_backend.close()
                    if user_backend is not None:
                        await user_backend.close()

            try:
                asyncio.run(main())
            except asyncio.CancelledError:  # what a signal does to the conversations in flight
                if interrupt.requested() is None:
                    raise
        signum = interrupt.requested()
        if signum is not None:
            raise interrupt.Interrupted(signum)
    except interrupt.Interrupted as exc:  # record what finished; say how to go on
        finish_manifest(plan, time.perf_counter() - started, interrupted=True)
        recorded = len(plan.rundir.read_results())
        raise exc.with_message(
            f"interrupted; {recorded} of {total} conversations recorded; resume with: {again}"
        ) from None
    finally:
        plan.rundir.close()
    results = list(plan.rundir.read_results())
    console.print(summary_table(results, f"writ run: {out}"))
    kept = sum(r.passed for r in results)
    console.print(cache_line(results))
    console.print(f"{kept} trajectories kept in {plan.rundir.trajectories}")
    if cfg.output.parquet:
        _write_parquet(plan.rundir.trajectories, console)


def _run_quota(plan: RunPlan, console: Console, again: str, quiet: bool) -> None:
    """A ``[target]`` run: a bar of kept trajectories against the target, then one closing line."""
    from engine.run.quota import Ledger, QuotaOutcome, run_quota

    cfg = plan.config
    assert cfg.target is not None
    if plan.resumed:
        console.print(f"resuming {plan.rundir.path}: {len(plan.rundir.read_results())} conversations already finished")
    started = time.perf_counter()
    outcome: QuotaOutcome | None = None
    bar = Progress(
        TextColumn("[bold]writ run"), BarColumn(), MofNCompleteColumn(), TextColumn("kept of target"),
        TextColumn("{task.fields[conversations]} conversations"), TimeRemainingColumn(), console=console,
        disable=quiet,
    )  # fmt: skip
    try:
        with bar:
            bar_id = bar.add_task("run", total=cfg.target.kept, completed=0, conversations=0)

            def progress(_result: ConversationResult, ledger: Ledger) -> None:
                bar.update(bar_id, completed=ledger.kept_toward_target(), conversations=ledger.conversations)

            async def main() -> QuotaOutcome:
                agent_backend, user_backend = _open_backends(plan, console)
                try:
                    with interrupt.cancelling(asyncio.get_running_loop(), asyncio.current_task()):
                        return await run_quota(plan, agent_backend, user_backend, progress)
                finally:
                    await agent_backend.close()
                    if user_backend is not None:
                        await user_backend.close()

            try:
                outcome = asyncio.run(main())
            except asyncio.CancelledError:
                if interrupt.requested() is None:
                    raise
        signum = interrupt.requested()
        if signum is not None:
            raise interrupt.Interrupted(signum)
    except interrupt.Interrupted as exc:
        finish_manifest(plan, time.perf_counter() - started, interrupted=True)
        recorded = len(plan.rundir.read_results())
        raise exc.with_message(f"interrupted; {recorded} conversations recorded; resume with: {again}") from None
    finally:
        plan.rundir.close()
    assert outcome is not None
    results = list(plan.rundir.read_results())
    console.print(summary_table(results, f"writ run: {plan.rundir.path}"))
    console.print(f"{sum(r.passed for r in results)} trajectories kept in {plan.rundir.trajectories}")
    if cfg.output.parquet:
        _write_parquet(plan.rundir.trajectories, console)
    plan.rundir.log(outcome.line)
    console.print(f"writ run: {outcome.line}", markup=False, highlight=False)
    if outcome.status != "met":
        raise typer.Exit(3)


def _write_parquet(jsonl: Path, console: Console) -> None:
    """Also write the kept trajectories as Parquet; without the train extra, say how to get it."""
    try:
        import datasets  # noqa: F401  (only to test that the extra is installed)
    except ImportError:
        console.print("parquet not written: it needs the train extra (pip install -e '.[train]')", markup=False)
        return
    from engine.export import write_parquet

    parquet = jsonl.with_suffix(".parquet")
    count = write_parquet(jsonl, parquet)
    console.print(f"{count} trajectories also in {parquet}")
