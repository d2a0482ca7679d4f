"""Shared fixtures: where tau2-bench's reference data lives, and loaded base DBs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envs import BaseDB, get_domain

IN_CI = os.environ.get("CI") == "true"
SHARED = Path(os.environ.get("WRIT_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
TAU2 = SHARED / "tau2"


def need_optional(what: str) -> None:
    """Skip a test whose optional input is missing on a user's machine; in CI, fail instead."""
    if IN_CI:
        pytest.fail(f"{what} is required when CI=true")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def tau2_dir() -> Path:
    """tau2-bench's reference data (../shared/tau2 beside the clone)."""
    if not (TAU2 / "replays").is_dir():
        need_optional(f"tau2 reference data at {TAU2}")
    return TAU2


@pytest.fixture(scope="session")
def tau2_bases(tau2_dir: Path) -> dict[str, BaseDB]:
    """tau2-bench's airline and retail DBs, loaded once per test session."""
    return {d: get_domain(d).load(tau2_dir / d / "db.json") for d in ("airline", "retail")}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small-vocabulary test models (random weights, ChatML + Hermes tool calls), seed 0.

    ``{"gguf": file, "hf": directory}``, built once per session into a temporary folder.
    """
    from engine.testmodel import build_test_models

    return build_test_models(tmp_path_factory.mktemp("tiny-models"), seed=0, vocab="small")
