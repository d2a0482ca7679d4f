"""Scale-out on Ray: a run's pending conversations played by actors that each hold their own engine(s).

Each actor (one per GPU node, say) loads the run's DB from bytes, builds its own backend(s) with
``engine.backends.make_backend`` and plays conversations through the same ``Session`` the local
runner uses. Actors write nothing: each finished conversation comes back to the driver as an
encoded result, and the driver appends it with ``RunDir.append``. So the run directory stays the
single source of truth, and a killed Ray run resumes like a local one (what was in flight is
played again; nothing is recorded twice). This module does not start Ray nodes; see
docs/scale_out.md for ``ray start``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

from engine.backends import make_backend
from engine.records import ConversationResult, decode_result, encode_result
from engine.run.config import parse_run_config
from engine.run.runner import Progress, RunPlan, Session, finish_manifest, resolve_backend_config
from engine.run.tau2_texts import Tau2Texts
from engine.tasks.model import Task, decode_task, encode_task
from envs import get_domain

__all__ = ["ConversationActor", "RayScaleError", "actor_resources", "import_ray", "run_plan_ray"]

RAY_INSTALL = "pip install 'writ[ray]'"


class RayScaleError(ValueError):
    """The Ray run cannot go on (cluster too small, unreachable, every actor lost); one line."""


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"running on Ray (scale.ray_actors > 0) needs Ray: {RAY_INSTALL}") from exc
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def actor_resources(agent: dict[str, Any], user: dict[str, Any] | None) -> dict[str, float]:
    """What one actor asks Ray for: GPUs for its vLLM engine(s), CPUs for its llama.cpp threads."""
    cpus, gpus = 0.0, 0.0
    for table in (agent, user):
        if table is None:
            continue
        if table["backend"] == "vllm":
            gpus += int(table.get("tensor_parallel_size", 1)) * int(table.get("data_parallel_size", 1))
        elif table["backend"] == "llamacpp":
            cpus += int(table.get("n_threads", 1))
    return {"num_cpus": max(cpus, 1.0), "num_gpus": gpus}


def _backend_here(resolved: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """The driver's resolved backend table, or, where its model file is missing on this node and
    the config names a ``test:`` model, that model built here (it is byte-identical per seed)."""
    model = resolved.get("model")
    wanted = original.get("model")
    if isinstance(model, str) and not os.path.exists(model) and isinstance(wanted, str) and wanted.startswith("test:"):
        return resolve_backend_config(original, Path.cwd())
    return resolved


class ConversationActor:
    """One Ray actor: its own backend(s) and a Session over the run's DB (wrapped by ``ray.remote``).

    Arguments are plain data (config mapping, backend tables, DB bytes) so the actor can live on
    any node; ``start`` builds the engines inside the actor's event loop.
    """

    def __init__(
        self,
        config: dict[str, Any],
        agent: dict[str, Any],
        user: dict[str, Any] | None,
        db: bytes,
        policy: str,
        aligned: Tau2Texts | None = None,
    ) -> None:
        self._config, self._agent, self._user, self._db = config, agent, user, db
        self._policy, self._aligned = policy, aligned
        self.session: Session | None = None

    async def start(self) -> dict[str, Any]:
        """Load the DB, build the backend(s); return the node, the process and the seconds it took."""
        started = time.perf_counter()
        # the policy comes as text: the driver's policy file need not exist on this node
        config = parse_run_config({**self._config, "policy": None, "tau2_root": None}, "run config (Ray actor)")
        base = get_domain(config.domain).load_bytes(self._db, source="the run's db.json")
        self._db = b""
        agent = _backend_here(self._agent, config.agent)
        user = _backend_here(self._user, config.user) if self._user is not None and config.user else self._user
        agent_backend = make_backend(agent)
        user_backend = make_backend(user) if user is not None else None
        self.session = Session(config, base, agent_backend, user_backend, agent, user, self._policy, self._aligned)
        return {"node": socket.gethostname(), "pid": os.getpid(), "seconds": round(time.perf_counter() - started, 3)}

    async def play(self, task: bytes, attempt: int) -> bytes:
        """Play one (task, attempt) to its end; the encoded ``ConversationResult``."""
        if self.session is None:
            raise RuntimeError("ConversationActor.play before start")
        return encode_result(await self.session.play(decode_task(task), attempt))

    async def stop(self) -> None:
        """Close the backend(s)."""
        if self.session is not None:
            await self.session.agent_backend.close()
            if self.session.user_backend is not self.session.agent_backend:
                await self.session.user_backend.close()
            self.session = None


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local one; True if this call started Ray."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage reporting
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False)
    except ConnectionError as exc:
        raise RayScaleError(f"cannot reach the Ray cluster at {address}: {_first_line(exc)}") from None
    return True


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """A TCP connect to ``host:port`` first: ``ray.init`` waits minutes on an address nobody answers."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local": Ray finds the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayScaleError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start --head` running there?)"
        ) from None


def _check_capacity(ray: Any, actors: int, need: dict[str, float]) -> None:
    """Fail now, not hang: Ray waits forever for an actor whose resources no node can give."""
    have = ray.cluster_resources()
    for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        want = actors * need[key]
        if want > have.get(name, 0.0) + 1e-9:
            raise RayScaleError(
                f"scale.ray_actors = {actors} actors need {want:g} {name}s in all ({need[key]:g} each) "
                f"but the Ray cluster has {have.get(name, 0.0):g}"
            )


def _actor_lost(ray: Any, exc: BaseException) -> bool:
    return isinstance(exc, ray.exceptions.RayActorError)


async def _start_actors(ray: Any, plan: RunPlan, n: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """Create ``n`` actors and wait until every one has its engines up."""
    need = actor_resources(plan.agent, plan.user)
    _check_capacity(ray, n, need)
    db = ray.put(_db_bytes(plan))
    remote = ray.remote(ConversationActor)
    config = plan.config.model_dump(mode="json")
    policy = plan.policy
    actors = [
        remote.options(name=f"writ-actor-{i}", max_concurrency=plan.config.max_live, **need).remote(
            config, plan.agent, plan.user, db, policy, plan.aligned
        )
        for i in range(n)
    ]
    try:
        info = await asyncio.to_thread(ray.get, [a.start.remote() for a in actors])
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        for actor in actors:
            ray.kill(actor)
        if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
            raise cause from None  # e.g. a BackendConfigError: already one line
        raise RayScaleError(f"a Ray actor could not start: {_first_line(exc)}") from None
    return actors, info


def _resolved_config(plan: RunPlan) -> dict[str, Any]:
    """The run's config with its paths made absolute, as ``plan_run`` stored it in config.json."""
    return json.loads(plan.rundir.config.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _db_bytes(plan: RunPlan) -> bytes:
    """The DB the run plays on: the config's ``db.path`` (resolved) or the run directory's copy."""
    if not plan.config.db.path:
        return plan.rundir.db.read_bytes()
    return Path(_resolved_config(plan)["db"]["path"]).read_bytes()


async def run_plan_ray(plan: RunPlan, progress: Progress | None = None) -> list[ConversationResult]:
    """Stages 3-5 on Ray: play every pending conversation on ``scale.ray_actors`` actors, append
    each result on the driver as it arrives, write the manifest; return this session's results."""
    started = time.time()
    if not plan.pending:  # nothing to do: no cluster, no engines
        finish_manifest(plan, 0.0)
        return []
    ray = import_ray()
    scale = plan.config.scale
    started_ray = _connect(ray, scale.ray_address)
    actors: list[Any] = []
    try:
        # 1) Start the actors: each loads the DB and builds its own engine(s).
        n = min(scale.ray_actors, len(plan.pending))
        ray_start = time.time() - started
        actors, info = await _start_actors(ray, plan, n)
        block = {"actors": n, "address": scale.ray_address or "local", "ray_start_seconds": round(ray_start, 3),
                 "actors_start_seconds": round(time.time() - started - ray_start, 3),
                 "nodes": sorted({i["node"] for i in info}), "actors_lost": 0}  # fmt: skip
        plan.rundir.write_manifest(ray=block)
        results, lost = await _play_all(ray, plan, actors, progress)
        plan.rundir.write_manifest(ray={**block, "actors_lost": lost})
    finally:
        await _stop_actors(ray, actors)
        if started_ray:
            ray.shutdown()
    # 4) Record the totals.
    finish_manifest(plan, time.time() - started)
    return results


async def _play_all(
    ray: Any, plan: RunPlan, actors: list[Any], progress: Progress | None
) -> tuple[list[ConversationResult], int]:
    """Keep ``max_live`` conversations in flight on every live actor and append results as they
    land; return them and the number of actors lost on the way."""
    queue: deque[tuple[Task, int]] = deque(plan.pending)
    inflight: dict[Any, tuple[int, Task, int]] = {}
    load = [0] * len(actors)
    lost: dict[int, str] = {}
    results: list[ConversationResult] = []
    total = plan.done + len(plan.pending)
    finished = plan.done

    def feed() -> None:
        # 2) Hand the next pending conversations to whichever actors have room: a fast node
        #    takes a larger share of the task file than a slow one.
        for i, actor in enumerate(actors):
            while i not in lost and load[i] < plan.config.max_live and queue:
                task, attempt = queue.popleft()
                inflight[actor.play.remote(encode_task(task), attempt)] = (i, task, attempt)
                load[i] += 1

    feed()
    while inflight:
        # 3) Collect what has finished (at least one), append it, and refill the actors.
        ready, rest = await asyncio.to_thread(ray.wait, list(inflight), num_returns=1)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        for ref in ready:
            i, task, attempt = inflight.pop(ref)
            load[i] -= 1
            try:
                line = ray.get(ref)
            except Exception as exc:
                if not _actor_lost(ray, exc):
                    raise
                lost.setdefault(i, _first_line(exc))
                queue.appendleft((task, attempt))  # not recorded: play it on another actor
                continue
            result = decode_result(line)
            plan.rundir.append(result)
            results.append(result)
            finished += 1
            if progress is not None:
                progress(result, finished, total)
        if len(lost) == len(actors) and queue:
            left = len(queue) + len(inflight)
            raise RayScaleError(
                f"every Ray actor was lost (first: {next(iter(lost.values()))}); {left} conversations not played; "
                "run the same command again to resume"
            )
        feed()
    return results, len(lost)


async def _stop_actors(ray: Any, actors: list[Any]) -> None:
    """Close every actor's engines (briefly), then end the actors."""
    if not actors:
        return
    try:
        await asyncio.to_thread(ray.wait, [a.stop.remote() for a in actors], num_returns=len(actors), timeout=30)
    finally:
        for actor in actors:
            ray.kill(actor)
