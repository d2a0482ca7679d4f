"""Run a config into a run directory: DB and tasks, then every conversation, concurrently.

Stages: 1) resolve the config (test models, paths, the DB file's sha256), preflight the backends,
load or generate the DB and the tasks and read the policy, and only then claim the run directory (a
start that fails leaves no directory behind, or an existing one as it was); 2) store the DB and the
tasks in the directory, so a resume uses the same ones;
3) play every (task, attempt) not yet finished — each conversation is an asyncio task that sends
its next turn to the backend as soon as the previous one is back, so all live conversations are
in the engine together (vLLM batches them continuously, llama.cpp decodes them as parallel
sequences); 4) verify each finished conversation and append its result; 5) write the manifest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.backends import Backend, SamplingParams, make_backend
from engine.backends.models import MODEL_ALIASES, resolve_model_alias
from engine.backends.preflight import preflight_backends
from engine.files import write_atomic
from engine.records import NATURAL_ENDS, ConversationResult, TokenCounts
from engine.run.config import RunConfig
from engine.run.conversation import Conversation
from engine.run.grounding import ungrounded
from engine.run.reach import reachable_hashes
from engine.run.rundir import RunDir
from engine.run.tau2_texts import Tau2Texts, apply_tool_docs, load_tau2_texts, texts_record
from engine.run.verify import verify
from engine.tasks.config import load_tasks_config
from engine.tasks.export_tau2 import TaskFileError, read_tasks
from engine.tasks.model import Task
from engine.tasks.scripts import phrase
from engine.tasks.synthesis import SynthesisReport, read_report, synthesize, write_tasks
from engine.tasks.turns import turn_limit
from envs import BaseDB, DBLoadError, Domain, get_domain

__all__ = [
    "Progress",
    "RunPlan",
    "Session",
    "conversation_result",
    "finish_manifest",
    "plan_run",
    "resolve_backend_config",
    "run_plan",
]

Progress = Callable[[ConversationResult, int, int], None]


def cache_dir() -> Path:
    """Where writ keeps things it builds once per machine (test models)."""
    root = os.environ.get("WRIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "writ"
    )
    return Path(root)


def resolve_backend_config(section: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """A backend table with ``test:<vocab>`` models built, model aliases (``smollm2-135m``) located
    and relative paths made absolute."""
    resolved = dict(section)
    model = resolved.get("model")
    if isinstance(model, str) and model.startswith("test:"):
        from engine.testmodel import build_test_models

        vocab = model.split(":", 1)[1]
        formats = ("hf",) if resolved.get("backend") == "vllm" else ("gguf",)
        out = cache_dir() / "test-models" / f"{vocab}-seed0"
        paths = build_test_models(out, seed=0, vocab=vocab, formats=formats)
        resolved["model"] = str(paths[formats[0]])
    elif isinstance(model, str) and resolved.get("backend") == "llamacpp" and model in MODEL_ALIASES:
        resolved["model"] = str(resolve_model_alias(model))
    elif isinstance(model, str) and resolved.get("backend") != "openai":
        candidate = (base_dir / model).expanduser()
        if candidate.exists():
            resolved["model"] = str(candidate.resolve())
    return resolved


def phrase_tasks(tasks: list[Task], backend_config: dict[str, Any]) -> tuple[list[Task], int]:
    """Have the user simulator's model reword each task's instruction (engine.tasks.scripts.phrase).

    A rewording that drops an id, date or number keeps the template; returns how many did.
    """
    backend = make_backend(backend_config)

    async def reword() -> tuple[list[Task], int]:
        try:
            return await phrase(tasks, backend)
        finally:
            await backend.close()

    return asyncio.run(reword())


class RunPlan(msgspec.Struct, kw_only=True):
    """What a run will do, resolved: the directory, the DB, the tasks and what is left to run."""

    config: RunConfig
    rundir: RunDir
    base: BaseDB
    tasks: list[Task]
    pending: list[tuple[Task, int]]
    done: int
    resumed: bool
    agent: dict[str, Any]
    user: dict[str, Any] | None
    policy: str
    aligned: Tau2Texts | None = None  # tau2-aligned mode: tau2's policy and tool descriptions


def _resolved(
    config: RunConfig, base_dir: Path, db_sha256: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The config as stored in the run directory: backends resolved, paths absolute and, when the DB
    comes from a file, that file's content digest (``db.sha256``), so a resume notices a replaced DB."""
    agent = resolve_backend_config(config.agent, base_dir)
    user = resolve_backend_config(config.user, base_dir) if config.user is not None else None
    data = config.model_dump()
    data["agent"], data["user"] = agent, user
    for key in ("policy", "tau2_root"):
        if data[key]:
            data[key] = str((base_dir / data[key]).resolve())
    for section, key in (("db", "path"), ("tasks", "config"), ("tasks", "file")):
        if data[section][key]:
            data[section][key] = str((base_dir / data[section][key]).resolve())
    if db_sha256 is not None:
        data["db"]["sha256"] = db_sha256
    return data, agent, user


def _read_db_file(domain: Domain, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DBLoadError(f"cannot read {domain.name} DB {path}: {exc.strerror}") from None


def _load_tasks(
    config: RunConfig, data: dict[str, Any], rundir: RunDir, base: BaseDB, backend: dict[str, Any]
) -> tuple[list[Task], SynthesisReport | None, bool]:
    """The run's tasks: the directory's copy, the task file's or freshly generated ones (and phrased);
    also the generation report and whether the tasks are new (to be written to the directory)."""
    if rundir.tasks.exists():
        source, new = rundir.tasks, False
        tasks = read_tasks(source)
        report = read_report(source)
    elif config.tasks.file:
        source, new = Path(data["tasks"]["file"]), True
        tasks, report = read_tasks(source), None
    else:
        tasks_config = load_tasks_config(data["tasks"]["config"])
        tasks, report = synthesize(config.domain, base, config.tasks.n, config.tasks.seed, tasks_config)
        if config.tasks.phrase:
            tasks, kept = phrase_tasks(tasks, backend)
            report.phrased = len(tasks) - kept
        return tasks, report, True
    for number, task in enumerate(tasks, start=1):
        if task.domain != config.domain:
            raise TaskFileError(
                f"{source}:{number}: task {task.task_id} is a {task.domain} task, but the config's domain is "
                f"{config.domain}"
            )
    return tasks, report, new


def plan_run(config: RunConfig, out: str | Path, base_dir: Path | None = None) -> RunPlan:
    """Stages 1-2: check everything, then claim the run directory and store its DB and tasks."""
    base_dir = base_dir or Path.cwd()
    domain = get_domain(config.domain)
    rundir = RunDir(out)
    db_bytes: bytes | None = None  # the DB to store in the directory (a generated one)
    raw: bytes | None = None  # the config's DB file, read once: digest and content agree
    if config.db.path:
        raw = _read_db_file(domain, (base_dir / config.db.path).resolve())
        data, agent, user = _resolved(config, base_dir, hashlib.sha256(raw).hexdigest())
    else:
        data, agent, user = _resolved(config, base_dir)
    notes = preflight_backends(agent, user)  # a model that crashes llama.cpp stops here, before the run dir
    rundir.check(data)  # a different config or DB, a corrupt manifest: refused before anything is written
    aligned = load_tau2_texts(data["tau2_root"], config.domain) if data["tau2_root"] else None
    policy = aligned.policy if aligned is not None else domain.policy(data["policy"])
    if raw is not None:
        base = domain.load_bytes(raw, source=data["db"]["path"])
    elif rundir.db.exists():
        base = domain.load(rundir.db)
    else:
        db = domain.generate_db(users=config.db.users, seed=config.db.seed)
        db_bytes = msgspec.json.encode(db)
        base = domain.from_struct(db)
    tasks, report, new_tasks = _load_tasks(config, data, rundir, base, user or agent)

    resumed = rundir.claim(data)
    try:
        if db_bytes is not None:
            write_atomic(rundir.db, db_bytes)
        if new_tasks:
            write_tasks(rundir.tasks, tasks, report)
        finished = rundir.open_for_append()
        extra: dict[str, Any] = {"preflight_notes": notes} if notes else {}
        if config.tasks.phrase and report is not None:
            extra.update(phrased=report.phrased, phrase_fallbacks=len(tasks) - report.phrased)
        rundir.write_manifest(
            domain=config.domain,
            tasks=len(tasks),
            conversations=len(tasks) * config.conversations_per_task,
            status="running",
            **extra,
        )
    except BaseException:
        rundir.close()
        raise
    pending = [
        (task, attempt)
        for task in tasks
        for attempt in range(config.conversations_per_task)
        if f"{task.task_id}#{attempt}" not in finished
    ]
    return RunPlan(
        config=config, rundir=rundir, base=base, tasks=tasks, pending=pending,
        done=len(finished), resumed=resumed, agent=agent, user=user, policy=policy, aligned=aligned,
    )  # fmt: skip


def _sampling(section: Any) -> SamplingParams:
    return SamplingParams(max_tokens=section.max_tokens, temperature=section.temperature, top_p=section.top_p)


def conversation_result(
    conv: Conversation,
    backend: str,
    agent_model: str,
    user_model: str,
    grounding: str = "record",
    texts: dict[str, Any] | None = None,
) -> ConversationResult:
    """Verify a finished conversation (and check its grounding) into the record a run appends."""
    final_hash = conv.state.hash_hex()
    agent_texts = [m["content"] for m in conv.messages if m["role"] == "assistant" and m.get("content")]
    verdict = verify(conv.task, final_hash, conv.calls, agent_texts)
    task = conv.task
    spans = ungrounded(conv.messages) if grounding != "off" else []
    reward = msgspec.structs.replace(verdict.reward, grounded=0.0 if spans else 1.0)
    passed = verdict.passed and conv.termination in NATURAL_ENDS and not (grounding == "drop" and spans)
    return ConversationResult(
        conversation_id=conv.conversation_id,
        task_id=task.task_id,
        attempt=conv.attempt,
        domain=task.domain,
        trajectory_type=task.trajectory_type,
        w=task.w,
        e=task.e,
        behavior=msgspec.to_builtins(task.behavior),
        passed=passed,
        reward=reward,
        failures=verdict.failures + (["ungrounded"] if spans and grounding == "drop" else []),
        termination=conv.termination or "backend_error",
        turns=len(conv.messages),
        messages=conv.messages,
        tools=conv.tools,
        tokens=conv.token_counts(),
        backend=backend,
        agent_model=agent_model,
        user_model=user_model,
        seed=conv.seed,
        final_hash=final_hash,
        seconds=round(conv.seconds, 3),
        retried_turns=conv.retried_turns,
        dead_at=conv.dead_at,
        branch_path=list(conv.branch_path),
        abandoned_tokens=TokenCounts(**conv.abandoned),
        ungrounded=spans,
        texts=texts or {},
    )


class Session:
    """What every conversation of a run shares: DB, tools, policy, grammar, sampling, backends.

    ``play`` runs one (task, attempt) to its end and returns the verified result; it is what the
    local runner and the Ray actors (engine.run.ray_scale) both call.
    """

    def __init__(
        self,
        config: RunConfig,
        base: BaseDB,
        agent_backend: Backend,
        user_backend: Backend | None,
        agent: dict[str, Any],
        user: dict[str, Any] | None,
        policy: str,
        aligned: Tau2Texts | None = None,
    ) -> None:
        self.config = config
        self.base = base
        self.agent_backend = agent_backend
        self.user_backend = user_backend or agent_backend
        self.domain = get_domain(config.domain)
        self.policy = policy
        self.tools = self.domain.openai_tools()
        if aligned is not None:
            self.tools = apply_tool_docs(self.tools, aligned.tools)
        self.texts = texts_record(policy, self.tools, aligned)
        self.constraint = agent_backend.agent_turn_constraint(self.tools)  # type: ignore[attr-defined]
        self.agent_sampling = _sampling(config.agent_sampling)
        self.user_sampling = _sampling(config.user_sampling)
        self.agent_model = str(agent.get("model", ""))
        self.user_model = str((user or agent).get("model", ""))
        self.backend_name = str(agent["backend"])
        self._reachable: dict[str, frozenset[int]] = {}

    def reachable(self, task: Task) -> frozenset[int] | None:
        """The task's gold-reachable state hashes (computed once per task), None when unused."""
        if self.config.dead_state.mode == "off":
            return None
        found = self._reachable.get(task.task_id)
        if found is None:
            found = self._reachable[task.task_id] = reachable_hashes(self.domain, self.base, task.actions)
        return found

    async def play(self, task: Task, attempt: int) -> ConversationResult:
        """Play one conversation of ``task`` to its end and verify it."""
        config = self.config
        conv = Conversation(
            conversation_id=f"{task.task_id}#{attempt}", task=task, attempt=attempt,
            seed=config.seed, domain=self.domain, state=self.base.new_state(), policy=self.policy,
            tools=self.tools, constraint=self.constraint, agent_sampling=self.agent_sampling,
            user_sampling=self.user_sampling, max_steps=config.limits.max_steps or turn_limit(task),
            max_errors=config.limits.max_errors, max_context_tokens=config.limits.max_context_tokens,
            max_retries=config.limits.max_retries, reachable=self.reachable(task),
            dead_state=config.dead_state.mode, max_branches=config.dead_state.branches,
        )  # fmt: skip
        while not conv.done:
            backend = self.agent_backend if conv.next_role == "agent" else self.user_backend
            (completion,) = await backend.generate([conv.request()])
            conv.apply(completion)
        return conversation_result(
            conv, self.backend_name, self.agent_model, self.user_model, config.filters.grounding, self.texts
        )


async def run_plan(
    plan: RunPlan, agent_backend: Backend, user_backend: Backend | None = None, progress: Progress | None = None
) -> list[ConversationResult]:
    """Stages 3-5: play every pending conversation, verify, append results; return them."""
    session = Session(
        plan.config, plan.base, agent_backend, user_backend, plan.agent, plan.user, plan.policy, plan.aligned
    )
    total = plan.done + len(plan.pending)
    finished = plan.done
    results: list[ConversationResult] = []
    gate = asyncio.Semaphore(plan.config.max_live)

    async def play(task: Task, attempt: int) -> None:
        nonlocal finished
        async with gate:
            result = await session.play(task, attempt)
        plan.rundir.append(result)
        results.append(result)
        finished += 1
        if progress is not None:
            progress(result, finished, total)

    started = time.time()
    await asyncio.gather(*(play(task, attempt) for task, attempt in plan.pending))
    finish_manifest(plan, time.time() - started)
    return results


def finish_manifest(plan: RunPlan, seconds: float, *, interrupted: bool = False) -> None:
    """Record the run's totals in manifest.json (status complete, else interrupted or partial)."""
    all_results = list(plan.rundir.read_results())
    expected = len(plan.tasks) * plan.config.conversations_per_task
    unfinished = "interrupted" if interrupted else "partial"
    plan.rundir.write_manifest(
        status="complete" if len(all_results) == expected else unfinished,
        finished=len(all_results),
        passed=sum(r.passed for r in all_results),
        last_session_seconds=round(seconds, 3),
    )


def make_backends(plan: RunPlan) -> tuple[Backend, Backend | None]:
    """The agent's backend, and the user's when it is configured apart (None: shared)."""
    agent = make_backend(plan.agent)
    user = make_backend(plan.user) if plan.user is not None else None
    return agent, user
