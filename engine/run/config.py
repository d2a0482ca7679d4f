"""The run configuration (TOML), validated once with pydantic into one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from envs.registry import DEFAULT_DOMAIN, get_domain

__all__ = ["RunConfig", "RunConfigError", "load_run_config"]


class RunConfigError(ValueError):
    """The run config is unusable; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DBSection(_Section):
    """Where the environment's database comes from: a file, or a generated one."""

    path: str | None = None
    users: int = Field(default=200, ge=1)
    seed: int = 0


class TasksSection(_Section):
    """Which tasks to play: generated here (n, seed, config) or read from a task file.

    ``phrase = true`` has the user simulator's model reword each generated instruction; a
    rewording that loses an id, date or number keeps the deterministic template.
    """

    n: int = Field(default=20, ge=1)
    seed: int = 0
    config: str | None = None
    file: str | None = None
    phrase: bool = False


class RoleSampling(_Section):
    """Sampling for one role."""

    temperature: float = Field(default=0.7, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1)


class LimitsSection(_Section):
    """When a conversation stops without the user ending it."""

    # messages a conversation may hold; unset: scaled to each task (engine.tasks.turns.turn_limit)
    max_steps: int | None = Field(default=None, ge=2)
    max_errors: int = Field(default=4, ge=1)
    max_retries: int = Field(default=2, ge=0)  # new samples for one unusable turn before giving up
    max_context_tokens: int = Field(default=16384, ge=256)


class OutputSection(_Section):
    """What the run writes besides results.jsonl and trajectories.jsonl."""

    parquet: bool = True


class ScaleSection(_Section):
    """Scale-out on Ray: shards of the task file processed by actors, each with its own engine."""

    ray_actors: int = Field(default=0, ge=0)
    ray_address: str | None = None


class DeadStateSection(_Section):
    """Dead-state early stop (engine.run.reach): what to do when a write leaves every state the
    task's gold writes can reach. ``off``: nothing; ``shadow``: note it in the record (``dead_at``)
    and go on; ``stop``: end the conversation (``dead_state``), or first resample the agent turn
    that made the write, up to ``branches`` times per conversation."""

    mode: Literal["off", "shadow", "stop"] = "off"
    branches: int = Field(default=0, ge=0, le=64)


class FiltersSection(_Section):
    """Checks on finished conversations beyond verification. ``grounding`` (engine.run.grounding):
    ``record`` lists agent facts seen in no earlier message (``ungrounded``), ``drop`` also refuses
    to keep such conversations, ``off`` skips the check."""

    grounding: Literal["off", "record", "drop"] = "record"


class TargetSection(_Section):
    """A quota-driven run (engine.run.quota): play until ``kept`` trajectories pass, in the ``mix``
    asked for, or a budget is spent. ``mix`` maps trajectory types (``read-heavy``, ...) or (W, E)
    cells (``w2``, ``w2e3``) to shares summing to 1. Tasks are synthesized ``batch`` at a time as
    needed; each task gets at most ``attempts_per_task`` conversations (until one passes)."""

    kept: int = Field(ge=1)
    mix: dict[str, float] = Field(default_factory=dict)
    max_tokens: int | None = Field(default=None, ge=1)  # generated tokens, both roles, all branches
    max_attempts: int | None = Field(default=None, ge=1)  # conversations started
    max_seconds: float | None = Field(default=None, gt=0)  # wall time over this run's sessions
    attempts_per_task: int = Field(default=4, ge=1)
    batch: int = Field(default=20, ge=1)

    @field_validator("mix")
    @classmethod
    def _mix(cls, value: dict[str, float]) -> dict[str, float]:
        from engine.run.quota import check_mix

        check_mix(value)
        return value


class RunConfig(_Section):
    """Everything a run needs; ``agent`` and ``user`` are backend tables (see engine.backends).

    A missing ``user`` table means the user simulator shares the agent's engine (one model
    serves both roles, as on a single GPU). ``model = "test:small"`` (or ``"test:32k"``) uses the
    tiny random-weight test model built locally: its text is gibberish, but the run is real.
    """

    domain: str = DEFAULT_DOMAIN  # any domain in envs.registry
    seed: int = 0
    conversations_per_task: int = Field(default=1, ge=1)
    max_live: int = Field(default=8, ge=1)
    policy: str | None = None
    # a tau2-bench checkout: the agent sees tau2's policy and tool descriptions (engine.run.tau2_texts)
    tau2_root: str | None = None
    db: DBSection = DBSection()
    tasks: TasksSection = TasksSection()
    agent: dict[str, Any]
    user: dict[str, Any] | None = None
    agent_sampling: RoleSampling = RoleSampling()
    user_sampling: RoleSampling = RoleSampling(temperature=0.0)  # tau2 runs its user simulator greedy
    limits: LimitsSection = LimitsSection()
    output: OutputSection = OutputSection()
    scale: ScaleSection = ScaleSection()
    dead_state: DeadStateSection = DeadStateSection()
    filters: FiltersSection = FiltersSection()
    target: TargetSection | None = None

    @model_validator(mode="after")
    def _target_runs_locally(self) -> RunConfig:
        if self.target is not None and self.scale.ray_actors > 0:
            raise ValueError("[target] quota runs play on this machine; remove scale.ray_actors or [target]")
        return self

    @field_validator("domain")
    @classmethod
    def _registered(cls, value: str) -> str:
        get_domain(value)  # unknown, or its package does not load: the registry's one-line reason
        return value

    @model_validator(mode="after")
    def _one_policy(self) -> RunConfig:
        if self.policy is not None and self.tau2_root is not None:
            raise ValueError("policy and tau2_root are both set: tau2_root brings tau2-bench's own policy")
        return self

    @field_validator("agent", "user")
    @classmethod
    def _has_backend(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "backend" not in value:
            raise ValueError("needs a 'backend' key (llamacpp, vllm or openai)")
        return value


def _one_line(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{source}: {where}: {err['msg']}{more}"


def parse_run_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config mapping."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise RunConfigError(_one_line(exc, source)) from None


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run config."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunConfigError(f"cannot read config {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_run_config(data, str(p))
