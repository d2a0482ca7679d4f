"""Task-synthesis settings (``[tasks]`` of a TOML file) validated once, with one-line errors.

The target distribution over (W, E) bins is the product of ``w_weights`` and ``e_weights``: a bin's
share of the tasks is ``w_weights[W] * e_weights[E]`` normalised. Bins the DB cannot fill give their
share to the others (see ``engine.tasks.synthesis.synthesize``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["TasksConfig", "TasksConfigError", "load_tasks_config"]


class TasksConfigError(ValueError):
    """A tasks config could not be used; the message is one line."""


class TasksConfig(BaseModel):
    """How many writes and reads tasks get, and how hard the generator tries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_w: int = Field(4, ge=1, le=8, description="Largest number of gold writes per task.")
    max_e: int = Field(12, ge=1, le=40, description="Largest number of evidence reads per task.")
    w_weights: dict[int, float] = Field(
        default_factory=lambda: {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0},
        description="Relative weight of each W; a W missing here gets weight 0.",
    )
    e_weights: dict[int, float] = Field(
        default_factory=dict,
        description="Relative weight of each E; empty means uniform over 1..max_e.",
    )
    refusal_share: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of refusal tasks (the policy forbids the request; W = 0)."
    )
    dependent_p: float = Field(0.4, ge=0.0, le=1.0, description="Chance an intent builds on an earlier one.")
    attempts_per_task: int = Field(40, ge=1, description="Blueprint attempts allowed per wanted task.")
    bin_patience: int = Field(60, ge=1, description="Failed attempts aimed at one bin before it gives its share away.")
    check_reads: bool = Field(True, description="Run every evidence read during validation.")
    users: int = Field(500, ge=1, description="Users in the generated DB when no --db is given.")
    db_seed: int = Field(0, description="Seed of the generated DB when no --db is given.")

    @model_validator(mode="after")
    def _weights(self) -> TasksConfig:
        for name, weights, top in (
            ("w_weights", self.w_weights, self.max_w),
            ("e_weights", self.e_weights, self.max_e),
        ):
            for k, v in weights.items():
                if not 1 <= k <= top:
                    raise ValueError(f"{name} key {k} is outside 1..{top}")
                if v < 0:
                    raise ValueError(f"{name}[{k}] is negative")
        if not any(self.w_weights.get(w, 0) > 0 for w in range(1, self.max_w + 1)):
            raise ValueError("w_weights gives every W weight 0")
        if self.e_weights and not any(v > 0 for v in self.e_weights.values()):
            raise ValueError("e_weights gives every E weight 0")
        return self

    def bin_weights(self) -> dict[tuple[int, int], float]:
        """Weight of every (W, E) bin with a positive weight, in (W, E) order."""
        e_weights = self.e_weights or {e: 1.0 for e in range(1, self.max_e + 1)}
        return {
            (w, e): self.w_weights.get(w, 0.0) * e_weights.get(e, 0.0)
            for w in range(1, self.max_w + 1)
            for e in range(1, self.max_e + 1)
            if self.w_weights.get(w, 0.0) * e_weights.get(e, 0.0) > 0
        }


def _one_line(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{source}: [tasks] {where}: {msg}" if where else f"{source}: [tasks] {msg}"


def load_tasks_config(path: str | Path | None) -> TasksConfig:
    """The ``[tasks]`` table of a TOML file (the whole file if it has no such table); defaults if None."""
    if path is None:
        return TasksConfig()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TasksConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TasksConfigError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("tasks", data)
    if not isinstance(table, dict):
        raise TasksConfigError(f"{path}: [tasks] must be a table")
    for key in ("w_weights", "e_weights"):
        raw = table.get(key)
        if isinstance(raw, dict):
            try:
                table[key] = {int(k): v for k, v in raw.items()}
            except ValueError:
                raise TasksConfigError(f"{path}: [tasks] {key}: keys must be integers") from None
    try:
        return TasksConfig.model_validate(table)
    except ValidationError as exc:
        raise TasksConfigError(_one_line(exc, str(path))) from None
