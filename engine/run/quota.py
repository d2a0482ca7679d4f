"""Quota-driven runs: play until ``[target]`` quotas of kept trajectories are met or a budget ends.

A ``Ledger`` is what a run directory's results say about the quotas: kept trajectories per quota
key (a trajectory type, a W cell ``w2`` or a (W, E) cell ``w2e3``, or ``all`` without a mix),
conversations per task, generated tokens, wall time. ``run_quota`` schedules, in task order, one
live attempt per task at a time, only for tasks whose key is still short, until one passes or
``attempts_per_task`` is reached; when no task is left it synthesizes the next batch of tasks
(seeded by the batch number, appended to ``tasks.jsonl``). It stops starting conversations when
every quota is met or a budget (generated tokens, conversations started, wall seconds) is spent,
and lets those in flight finish, so up to ``max_live - 1`` extra trajectories per quota
may be kept. All
decisions are a function of the recorded results, so a resumed run goes on where it stopped;
with ``max_live = 1`` (and no wall-time budget) it ends exactly as an uninterrupted run would.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from engine.records import ConversationResult
from engine.tasks.model import Task

if TYPE_CHECKING:
    from engine.backends import Backend
    from engine.run.config import TargetSection
    from engine.run.runner import RunPlan

__all__ = ["Ledger", "QuotaOutcome", "check_mix", "generated_tokens", "quota_key", "run_quota", "targets"]

TYPES = ("write-intensive", "read-heavy", "normal")
_CELL = re.compile(r"w(\d+)(?:e(\d+))?")
EMPTY_BATCHES = 3  # batches in a row that add no usable task before the run gives up on synthesis


def _form(key: str) -> str:
    if key in TYPES:
        return "type"
    m = _CELL.fullmatch(key)
    if m is None:
        raise ValueError(
            f"mix key {key!r} is neither a trajectory type ({', '.join(TYPES)}) nor a cell like w2 or w2e3"
        )
    return "we" if m[2] else "w"


def check_mix(mix: dict[str, float]) -> None:
    """Raise ``ValueError`` (one line) unless ``mix`` is a distribution over keys of one form."""
    if not mix:
        return
    forms = {_form(k) for k in mix}
    if len(forms) > 1:
        raise ValueError("mix keys must all be trajectory types, all w<W> or all w<W>e<E> cells")
    if any(v <= 0 for v in mix.values()):
        raise ValueError("mix shares must be positive")
    if abs(sum(mix.values()) - 1.0) > 1e-6:
        raise ValueError(f"mix shares must sum to 1 (they sum to {sum(mix.values()):g})")


def targets(kept: int, mix: dict[str, float]) -> dict[str, int]:
    """Kept trajectories wanted per quota key (largest remainder; ``{"all": kept}`` without a mix)."""
    if not mix:
        return {"all": kept}
    exact = {k: kept * v for k, v in mix.items()}
    counts = {k: int(x) for k, x in exact.items()}
    for k in sorted(mix, key=lambda k: (-(exact[k] - counts[k]), k))[: kept - sum(counts.values())]:
        counts[k] += 1
    return counts


def quota_key(mix: dict[str, float], trajectory_type: str, w: int, e: int) -> str:
    """The quota key a task or result counts toward."""
    if not mix:
        return "all"
    form = _form(next(iter(mix)))
    return trajectory_type if form == "type" else f"w{w}" if form == "w" else f"w{w}e{e}"


def generated_tokens(result: ConversationResult) -> int:
    """Tokens both roles generated in a conversation, abandoned branches included."""
    t, a = result.tokens, result.abandoned_tokens
    return t.agent_completion + t.user_completion + a.agent_completion + a.user_completion


class Ledger:
    """Quota progress and budget use, from the recorded results (see the module docstring)."""

    def __init__(self, target: TargetSection, results: Iterable[ConversationResult], seconds_before: float = 0.0):
        self.target = target
        self.wanted = targets(target.kept, target.mix)
        self.kept: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.passed_tasks: set[str] = set()
        self.conversations = 0
        self.tokens = 0
        self.seconds_before = seconds_before
        self.started_at = time.perf_counter()
        for result in results:
            self.add(result)

    def add(self, result: ConversationResult) -> None:
        """Count one finished conversation."""
        self.conversations += 1
        self.attempts[result.task_id] += 1
        self.tokens += generated_tokens(result)
        if result.passed:
            self.passed_tasks.add(result.task_id)
            self.kept[quota_key(self.target.mix, result.trajectory_type, result.w, result.e)] += 1

    def seconds(self) -> float:
        """Wall time of this run: earlier sessions and this one."""
        return self.seconds_before + time.perf_counter() - self.started_at

    def short(self, key: str) -> bool:
        """Whether the quota of ``key`` still needs trajectories."""
        return self.kept[key] < self.wanted.get(key, 0)

    def met(self) -> bool:
        """Whether every quota is met."""
        return not any(self.short(k) for k in self.wanted)

    def kept_toward_target(self) -> int:
        """Kept trajectories that count toward the target (none past a key's quota)."""
        return sum(min(self.kept[k], n) for k, n in self.wanted.items())

    def budget_spent(self, started: int = 0) -> str | None:
        """Which budget is spent (a phrase for the closing line), or None."""
        t = self.target
        if t.max_tokens is not None and self.tokens >= t.max_tokens:
            return f"the token budget (max_tokens = {t.max_tokens:,}) is spent: {self.tokens:,} tokens generated"
        if t.max_attempts is not None and self.conversations + started >= t.max_attempts:
            return f"the attempt budget (max_attempts = {t.max_attempts:,}) is spent"
        if t.max_seconds is not None and self.seconds() >= t.max_seconds:
            return f"the time budget (max_seconds = {t.max_seconds:g}) is spent"
        return None

    def next_attempt(self, tasks: Sequence[Task], live: set[str]) -> tuple[Task, int] | None:
        """The first task, in order, whose quota is short and that may be tried again, with its
        attempt number; None when no task qualifies."""
        for task in tasks:
            if task.task_id in live or task.task_id in self.passed_tasks:
                continue
            if self.attempts[task.task_id] >= self.target.attempts_per_task:
                continue
            if self.short(quota_key(self.target.mix, task.trajectory_type, task.w, task.e)):
                return task, self.attempts[task.task_id]
        return None

    def progress(self) -> dict[str, Any]:
        """Quota progress for the manifest and ``writ stats``."""
        return {
            "kept": self.kept_toward_target(),
            "target": self.target.kept,
            "quotas": {k: [self.kept[k], n] for k, n in self.wanted.items()},
            "conversations": self.conversations,
            "generated_tokens": self.tokens,
            "seconds": round(self.seconds(), 3),
        }

    def line(self) -> str:
        """Quota progress in one line."""
        parts = ", ".join(f"{k} {self.kept[k]}/{n}" for k, n in self.wanted.items())
        return (
            f"kept {self.kept_toward_target()} of {self.target.kept} ({parts}) in {self.conversations} conversations, "
            f"{self.tokens:,} generated tokens"
        )


class QuotaOutcome(msgspec.Struct, kw_only=True):
    """How a quota run ended: ``met``, ``budget`` or ``no_tasks``, with its one-line reason."""

    status: str
    line: str
    results: list[ConversationResult]


def more_tasks(plan: RunPlan, batch: int) -> list[Task]:
    """The next batch of synthesized tasks (seeded by ``batch``), renamed to unique ids, without
    tasks whose user and gold writes repeat an existing task's; appended to ``plan.tasks`` and
    stored in the run directory."""
    from engine.tasks.config import load_tasks_config
    from engine.tasks.synthesis import read_report, synthesize, write_tasks

    config = plan.config
    assert config.target is not None
    seed = zlib.crc32(f"{config.tasks.seed}:batch{batch}".encode())
    tasks_config = load_tasks_config(config.tasks.config and str(config.tasks.config))
    fresh, _ = synthesize(config.domain, plan.base, config.target.batch, seed, tasks_config)
    known = {(t.user_id, tuple(a.key() for a in t.actions)) for t in plan.tasks}
    added = []
    for index, task in enumerate(fresh):
        signature = (task.user_id, tuple(a.key() for a in task.actions))
        if signature in known:
            continue
        known.add(signature)
        added.append(msgspec.structs.replace(task, task_id=f"{config.domain}-b{batch:03d}-{index:05d}"))
    if added:
        plan.tasks.extend(added)
        write_tasks(plan.rundir.tasks, plan.tasks, read_report(plan.rundir.tasks))
    return added


def _next_batch(tasks: Sequence[Task]) -> int:
    found = [int(m[1]) for t in tasks if (m := re.search(r"-b(\d+)-\d+$", t.task_id))]
    return max(found, default=0) + 1


async def run_quota(
    plan: RunPlan,
    agent_backend: Backend,
    user_backend: Backend | None = None,
    progress: Callable[[ConversationResult, Ledger], None] | None = None,
) -> QuotaOutcome:
    """Play attempts where quotas are short until they are met or a budget is spent."""
    from engine.run.runner import Session

    config = plan.config
    assert config.target is not None
    session = Session(config, plan.base, agent_backend, user_backend, plan.agent, plan.user, plan.policy)
    seconds_before = float(plan.rundir.read_manifest().get("target", {}).get("seconds", 0.0))
    ledger = Ledger(config.target, plan.rundir.read_results(), seconds_before)
    results: list[ConversationResult] = []
    live: dict[asyncio.Task[ConversationResult], str] = {}
    batch, empty = _next_batch(plan.tasks), 0
    status = reason = ""
    try:
        while True:
            # 1) start attempts where quotas are short, while no budget is spent
            while not status and len(live) < config.max_live:
                if ledger.met():
                    status = "met"
                    break
                spent = ledger.budget_spent(started=len(live))
                if spent is not None:
                    status, reason = "budget", spent
                    break
                pick = ledger.next_attempt(plan.tasks, set(live.values()))
                if pick is None:
                    if live:
                        break  # wait: a conversation in flight may fail and free its task
                    if config.tasks.file:
                        status, reason = "no_tasks", "every task of the task file was tried"
                        break
                    added = more_tasks(plan, batch)
                    batch += 1
                    useful = any(ledger.short(quota_key(config.target.mix, t.trajectory_type, t.w, t.e)) for t in added)
                    empty = 0 if useful else empty + 1
                    if empty >= EMPTY_BATCHES:
                        short = ", ".join(k for k in ledger.wanted if ledger.short(k))
                        status = "no_tasks"
                        reason = (
                            f"{EMPTY_BATCHES} task batches in a row gave no task for {short} "
                            "(widen [tasks] config weights or the DB)"
                        )
                    continue
                task, attempt = pick
                live[asyncio.create_task(session.play(task, attempt))] = task.task_id
            if not live:
                break
            # 2) record what finished (in id order: the same order whatever finished first)
            done, _ = await asyncio.wait(live, return_when=asyncio.FIRST_COMPLETED)
            for finished in sorted(done, key=lambda f: live[f]):
                del live[finished]
                result = finished.result()
                plan.rundir.append(result)
                ledger.add(result)
                results.append(result)
                plan.rundir.write_manifest(target=ledger.progress())
                if progress is not None:
                    progress(result, ledger)
    finally:
        for pending in live:
            pending.cancel()
        if live:
            await asyncio.gather(*live, return_exceptions=True)
        plan.rundir.write_manifest(target=ledger.progress())
    # the closing line counts the conversations that finished after the last one was started
    line = f"target met: {ledger.line()}" if status == "met" else f"target not met: {reason}; {ledger.line()}"
    plan.rundir.write_manifest(
        status="complete" if status == "met" else "budget_spent" if status == "budget" else "tasks_exhausted",
        finished=ledger.conversations,
        passed=sum(r.passed for r in plan.rundir.read_results()),
        target_line=line,
    )
    return QuotaOutcome(status=status, line=line, results=results)


def yield_summary(config: dict[str, Any], results: Sequence[ConversationResult]) -> dict[str, Any]:
    """Quota progress (when the run config has a ``target``) and what the yield policies did:
    conversations flagged dead (and how many of them passed anyway), branches taken, ungrounded
    conversations. ``config`` is the run directory's config.json."""
    from engine.run.config import TargetSection

    flagged = [r for r in results if r.dead_at is not None]
    summary: dict[str, Any] = {
        "dead_state_flagged": len(flagged),
        "dead_state_flagged_passed": sum(r.passed for r in flagged),
        "branched_conversations": sum(bool(r.branch_path) for r in results),
        "branches": sum(len(r.branch_path) for r in results),
        "ungrounded_conversations": sum(bool(r.ungrounded) for r in results),
    }
    if isinstance(config.get("target"), dict):
        ledger = Ledger(TargetSection.model_validate(config["target"]), results)
        summary["target"] = {**ledger.progress(), "line": ledger.line()}
        del summary["target"]["seconds"]
    return summary


def yield_lines(summary: dict[str, Any]) -> list[str]:
    """``yield_summary`` as printable lines for ``writ stats``."""
    lines = []
    if "target" in summary:
        lines.append(f"target: {summary['target']['line']}")
    lines.append(
        f"yield policies: {summary['dead_state_flagged']} conversations went dead "
        f"({summary['dead_state_flagged_passed']} of them passed anyway), {summary['branches']} branches in "
        f"{summary['branched_conversations']} conversations, {summary['ungrounded_conversations']} conversations "
        f"with ungrounded facts"
    )
    return lines
