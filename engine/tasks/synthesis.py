"""Synthesize a task file: sample blueprints toward a (W, E) target, validate, render, write JSONL.

Main loop, per attempt: 1) aim at a (W, E) bin that still has quota (weighted by what is left);
2) compose a blueprint for a user with the domain's recipes; 3) place it in the bin of its actual
(W, E) if that bin has quota, drop it if its gold actions repeat an accepted task's; 4) validate it
on a fresh state; 5) sample a behaviour and render the user script. A bin that keeps failing gives
its quota away. Everything random comes from one ``random.Random(seed)``, so the same seed, DB and
config give the same tasks, written byte for byte the same by ``write_tasks``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from engine.files import write_atomic
from engine.tasks.behaviors import sample_behavior
from engine.tasks.config import TasksConfig
from engine.tasks.model import Blueprint, Task, encode_task, trajectory_type
from engine.tasks.recipe import DomainSpec, compose, get_spec
from engine.tasks.refusals import compose_refusal, forbidden_action, validate_refusal
from engine.tasks.scripts import merge_facts, phrase, render
from engine.tasks.validate import validate
from envs.kernel import BaseDB, tau2_db_hash

if TYPE_CHECKING:
    from engine.backends.base import Backend

__all__ = ["SynthesisReport", "quotas", "read_report", "report_path", "synthesize", "write_tasks"]


class SynthesisReport(msgspec.Struct, kw_only=True):
    """What a generation run did: targets, what it got, and why blueprints were rejected."""

    domain: str
    seed: int
    n: int
    attempts: int
    accepted: int
    target: dict[str, int]
    rejections: dict[str, int]
    phrased: int = 0
    """Instructions reworded by a model (0 without a backend); the rest keep the template."""
    refusals: int = 0
    """Refusal tasks among the accepted ones (W = 0, ``engine.tasks.refusals``)."""


def quotas(weights: dict[tuple[int, int], float], n: int) -> dict[tuple[int, int], int]:
    """Integer task counts per bin, proportional to ``weights`` and summing to ``n`` (largest remainder)."""
    total = sum(weights.values())
    exact = {b: n * w / total for b, w in weights.items()}
    counts = {b: int(x) for b, x in exact.items()}
    order = sorted(weights, key=lambda b: (-(exact[b] - counts[b]), b))
    for b in order[: n - sum(counts.values())]:
        counts[b] += 1
    return counts


def _give_away(
    left: dict[tuple[int, int], int],
    closed: set[tuple[int, int]],
    b: tuple[int, int],
    weights: dict[tuple[int, int], float],
    rng: random.Random,
) -> None:
    """Move bin ``b``'s remaining quota to open bins, drawn by weight."""
    share = left.pop(b, 0)
    closed.add(b)
    open_bins = [x for x in weights if x not in closed]
    if not open_bins:
        return
    for x in rng.choices(open_bins, weights=[weights[x] for x in open_bins], k=share):
        left[x] = left.get(x, 0) + 1


def synthesize(
    domain: str,
    base: BaseDB,
    n: int,
    seed: int,
    config: TasksConfig | None = None,
    backend: Backend | None = None,
) -> tuple[list[Task], SynthesisReport]:
    """``n`` validated tasks for ``domain`` on ``base`` (fewer only if the DB runs out of options).

    With a ``backend``, the rendered instructions are then reworded by its model in one batch
    (``scripts.phrase``); a rewording that drops a fact keeps the template.
    """
    config = config or TasksConfig()
    # The base DB lives as long as the run: keep the cyclic collector from rescanning its
    # objects on every allocation burst (it dominated the run time before this).
    gc.collect()
    gc.freeze()
    try:
        tasks, report = _synthesize(domain, base, n, seed, config)
    finally:
        gc.unfreeze()
    if backend is not None and tasks:
        tasks, kept = asyncio.run(phrase(tasks, backend))
        report.phrased = len(tasks) - kept
    return tasks, report


class _Draw:
    """What both loops of one generation share: the seeded generator, the users, the accepted tasks,
    the gold-action keys already taken and the rejection counts."""

    def __init__(self, spec: DomainSpec, base: BaseDB, seed: int, fingerprint: str) -> None:
        self.spec = spec
        self.base = base
        self.users = list(spec.users(base))
        self.fingerprint = fingerprint
        self.rng = random.Random(seed)
        self.tasks: list[Task] = []
        self.seen_actions: set[str] = set()
        self.rejections: Counter[str] = Counter()

    def user(self) -> tuple[int, random.Random, str]:
        """A task's own seed, its generator and its user."""
        task_seed = self.rng.getrandbits(48)
        task_rng = random.Random(task_seed)
        return task_seed, task_rng, self.users[task_rng.randrange(len(self.users))]

    def accept(self, task_seed: int, blueprint: Blueprint, goal: str, key: str) -> None:
        self.seen_actions.add(key)
        self.tasks.append(_task(self.spec, len(self.tasks), task_seed, blueprint, goal, self.fingerprint))


def _write_tasks(draw: _Draw, n: int, config: TasksConfig) -> tuple[dict[str, int], int]:
    """Steps 1) to 5) until every bin's quota is met or the attempts run out; the targets and attempts."""
    weights = config.bin_weights()
    left = {b: q for b, q in quotas(weights, n).items() if q > 0}
    target = {f"{w},{e}": q for (w, e), q in left.items()}
    closed: set[tuple[int, int]] = set()
    misses: Counter[tuple[int, int]] = Counter()
    rng, rejections = draw.rng, draw.rejections
    attempts = 0
    while left and attempts < config.attempts_per_task * n:
        attempts += 1
        # 1) aim at a bin with quota left
        bins = sorted(left)
        aim = rng.choices(bins, weights=[left[b] for b in bins])[0]
        task_seed, task_rng, user_id = draw.user()
        # 2) compose
        blueprint, reasons = compose(draw.spec, draw.base, user_id, task_rng, aim[0], aim[1], config.dependent_p)
        rejections.update(reasons)
        placed = None
        if blueprint is not None:
            # 3) bin and dedupe
            actions = blueprint.actions()
            w, e = len(actions), len(blueprint.evidence())
            key = json.dumps([a.key() for a in actions])
            if left.get((w, e), 0) <= 0:
                rejections["bin full or outside the target"] += 1
            elif key in draw.seen_actions:
                rejections["duplicate gold actions"] += 1
            else:
                # 4) validate, 5) render
                outcome = validate(draw.spec, draw.base, blueprint, config.check_reads)
                if isinstance(outcome, str):
                    placed = (w, e)
                    draw.accept(task_seed, blueprint, outcome, key)
                else:
                    rejections[outcome.reason] += 1
        if placed is not None:
            left[placed] -= 1
            if left[placed] == 0:
                del left[placed]
            misses.pop(aim, None)
        else:
            misses[aim] += 1
            if misses[aim] >= config.bin_patience and aim in left:
                _give_away(left, closed, aim, weights, rng)
    return target, attempts


def _refusal_tasks(draw: _Draw, n_refusals: int, config: TasksConfig) -> tuple[int, int]:
    """Refusal tasks, their own count (W = 0, E = the reads that establish the refusal); how many
    were made and the attempts."""
    refused = 0
    attempts = 0
    while refused < n_refusals and attempts < config.attempts_per_task * n_refusals:
        attempts += 1
        task_seed, task_rng, user_id = draw.user()
        blueprint, reasons = compose_refusal(draw.spec, draw.base, user_id, task_rng)
        draw.rejections.update(reasons)
        if blueprint is None:
            continue
        key = json.dumps([forbidden_action(i).key() for i in blueprint.intents])
        if key in draw.seen_actions:
            draw.rejections["duplicate refusal"] += 1
            continue
        outcome = validate_refusal(draw.spec, draw.base, blueprint)
        if isinstance(outcome, str):
            draw.accept(task_seed, blueprint, outcome, key)
            refused += 1
        else:
            draw.rejections[outcome.reason] += 1
    return refused, attempts


def _synthesize(
    domain: str, base: BaseDB, n: int, seed: int, config: TasksConfig
) -> tuple[list[Task], SynthesisReport]:
    """``synthesize`` without the collector setup: the W x E tasks, then the refusal tasks."""
    spec = get_spec(domain)
    draw = _Draw(spec, base, seed, tau2_db_hash(base.new_state()))
    if not draw.users:
        raise ValueError(f"the {domain} DB has no users")
    n_refusals = round(n * config.refusal_share) if spec.refusals else 0
    target, attempts = _write_tasks(draw, n - n_refusals, config)
    refused, refusal_attempts = _refusal_tasks(draw, n_refusals, config)
    if n_refusals:
        target["0,*"] = n_refusals
    report = SynthesisReport(
        domain=domain,
        seed=seed,
        n=n,
        attempts=attempts + refusal_attempts,
        accepted=len(draw.tasks),
        target=target,
        rejections=dict(sorted(draw.rejections.items())),
        refusals=refused,
    )
    return draw.tasks, report


def _task(spec: DomainSpec, index: int, seed: int, blueprint: Blueprint, goal: str, fingerprint: str) -> Task:
    """Steps 5): behaviour, facts and instruction for an accepted blueprint."""
    domain = spec.domain
    actions = blueprint.actions()
    evidence = blueprint.evidence()
    behavior = sample_behavior(seed, blueprint)
    facts = merge_facts(blueprint)
    return Task(
        task_id=f"{domain}-{index:05d}",
        domain=domain,
        seed=seed,
        w=len(actions),
        e=len(evidence),
        trajectory_type=trajectory_type(len(actions), len(evidence)),
        user_id=blueprint.user_id,
        intents=blueprint.intents,
        actions=actions,
        evidence=evidence,
        facts=facts,
        behavior=behavior,
        instruction=render(spec, facts, behavior),
        outputs=[o for i in blueprint.intents for o in i.outputs],
        db_fingerprint=fingerprint,
        goal_hash=goal,
    )


def report_path(tasks_path: str | Path) -> Path:
    """Where the report of a task file lives: ``<file>.report.json`` beside it."""
    p = Path(tasks_path)
    return p.with_name(p.name + ".report.json")


def write_tasks(path: str | Path, tasks: Iterable[Task], report: SynthesisReport | None = None) -> None:
    """Write tasks as JSONL (sorted keys, one per line) and the report beside them, each atomically.

    The report records the task file's sha256 (``tasks_sha256``): a report left beside other tasks (a
    kill between the two renames, or tasks written without a report) is stale and ``read_report``
    ignores it.
    """
    p = Path(path)
    data = b"".join(encode_task(t) + b"\n" for t in tasks)
    write_atomic(p, data)
    rp = report_path(p)
    if report is None:
        rp.unlink(missing_ok=True)
        return
    fields = msgspec.to_builtins(report) | {"tasks_sha256": hashlib.sha256(data).hexdigest()}
    write_atomic(rp, msgspec.json.format(msgspec.json.encode(fields, order="sorted")) + b"\n")


class _Stamp(msgspec.Struct):
    tasks_sha256: str = ""


def read_report(tasks_path: str | Path) -> SynthesisReport | None:
    """The report written beside a task file, or None if there is none, it is not a report or it
    describes other tasks (stale)."""
    rp = report_path(tasks_path)
    try:
        data = rp.read_bytes()
        tasks_digest = hashlib.sha256(Path(tasks_path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
    try:
        if msgspec.json.decode(data, type=_Stamp).tasks_sha256 != tasks_digest:
            return None
        return msgspec.json.decode(data, type=SynthesisReport)
    except msgspec.DecodeError:
        return None
