"""Tests for the llama.cpp backend on the tiny random GGUF: validity of constrained turns, scheduling."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.backends import (
    Backend,
    BackendConfigError,
    Completion,
    Constraint,
    Request,
    SamplingParams,
    make_backend,
)
from envs import get_domain
from envs.kernel import BoundCall
from tests.conftest import need_optional

try:
    import llama_cpp  # noqa: F401
    import llguidance  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    HAVE_LLAMACPP = False
else:
    HAVE_LLAMACPP = True


@pytest.fixture(scope="module")
def backend(tiny_models: dict[str, Path]) -> Iterator[Backend]:
    if not HAVE_LLAMACPP:
        need_optional("llama-cpp-python and llguidance")
    b = make_backend(
        {"backend": "llamacpp", "model": str(tiny_models["gguf"]), "n_parallel": 8, "n_ctx": 8192, "seed": 0}
    )
    yield b
    asyncio.run(b.close())


def run(backend: Backend, requests: list[Request]) -> list[Completion]:
    return asyncio.run(backend.generate(requests))


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"backend": "tgi"}, "unknown backend 'tgi' (known: llamacpp, openai, vllm)"),
        ({}, "unknown backend None (known: llamacpp, openai, vllm)"),
        ({"backend": "llamacpp"}, "llamacpp backend: missing required option 'model'"),
        ({"backend": "llamacpp", "model": "/nope/m.gguf"}, "llamacpp backend: model '/nope/m.gguf' is not a file"),
        (
            {"backend": "llamacpp", "model": "x", "n_ctx": "4k"},
            "llamacpp backend: n_ctx must be a positive integer, got '4k'",
        ),
        (
            {"backend": "llamacpp", "model": "x", "n_parallel": 0},
            "llamacpp backend: n_parallel must be a positive integer, got 0",
        ),
        (
            {"backend": "llamacpp", "model": "x", "n_threads": True},
            "llamacpp backend: n_threads must be a positive integer, got True",
        ),
        (
            {"backend": "llamacpp", "model": "x", "temperature": 1},
            "llamacpp backend: unknown option 'temperature' (known: chat_template, flash_attn, model, n_batch, n_ctx, "
            "n_parallel, n_threads, seed, tool_format)",
        ),
        (
            {"backend": "llamacpp", "model": "x", "flash_attn": "yes"},
            "llamacpp backend: flash_attn must be true or false, got 'yes'",
        ),
        (
            {"backend": "llamacpp", "model": "x", "tool_format": "xml"},
            "llamacpp backend: tool_format must be one of hermes, llama3_json; got 'xml'",
        ),
        ({"backend": "openai", "model": "m"}, "openai backend: missing required option 'base_url'"),
        (
            {"backend": "openai", "model": "m", "base_url": "localhost:8000"},
            "openai backend: base_url must start with http:// or https://, got 'localhost:8000'",
        ),
        (
            {"backend": "openai", "model": "m", "base_url": "http://h/v1", "timeout_s": -1},
            "openai backend: timeout_s must be a positive number, got -1",
        ),
        ("llamacpp", "backend config must be a table, got str"),
    ],
)
def test_bad_config_gives_one_line_error(config: Any, error: str, tmp_path: Path) -> None:
    if isinstance(config, dict) and config.get("model") == "x":
        config = {**config, "model": str(tmp_path / "m.gguf")}
        (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(BackendConfigError) as info:
        make_backend(config)
    assert str(info.value) == error


def test_a_file_that_is_not_a_gguf_gives_one_line_error(tmp_path: Path) -> None:
    if not HAVE_LLAMACPP:
        need_optional("llama-cpp-python")
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not a model")
    with pytest.raises(BackendConfigError) as info:
        make_backend({"backend": "llamacpp", "model": str(path)})
    assert str(info.value).startswith(f"the model at {path} failed while loading: llama.cpp could not load it; ")
    assert str(info.value).endswith("gguf_init_from_reader: invalid magic characters: 'not ', expected 'GGUF'")


def test_missing_library_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.backends.llamacpp_native import import_llama_cpp

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ImportError) as info:
        import_llama_cpp()
    assert str(info.value) == (
        "the llamacpp backend needs llama-cpp-python: pip install 'writ[llamacpp]'  (llama-cpp-python, llguidance)"
    )


# -- constrained agent turns ------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_200_constrained_turns_at_temperature_1_all_parse(backend: Any, domain: str) -> None:
    """Random weights, temperature 1: every turn is a message or a call the kernel can decode.

    Three turns in four may only call a tool (random weights rarely choose to). The prompt is a bare
    assistant header to keep the run short; ``test_chat_prompts_with_tools`` covers full prompts.
    """
    dom = get_domain(domain)
    tools = dom.openai_tools()
    choices = ["required", "required", "required", "auto"]
    requests = [
        Request(
            request_id=f"{domain}-{i}",
            prompt="<|im_start|>assistant\n",
            tools=tools,
            constraint=backend.agent_turn_constraint(tools, choices[i % 4]),
            sampling=SamplingParams(max_tokens=4096, temperature=1.0),
            seed=i,
        )
        for i in range(200)
    ]
    calls = texts = 0
    for c in run(backend, requests):
        assert c.error is None, (c.request_id, c.error, c.text[-200:])
        if c.tool_calls:
            assert c.finish_reason == "stop"
            assert len(c.tool_calls) == 1
            call = c.tool_calls[0]
            assert isinstance(dom.bind(call.name, call.arguments), BoundCall), (call, c.text)
            assert isinstance(dom.bind(call.name, call.arguments.encode()), BoundCall)
            assert c.text.startswith("<tool_call>\n{") and c.text.endswith("}\n</tool_call>")
            calls += 1
        else:
            assert c.text.strip() and "<tool_call>" not in c.text
            texts += 1
    assert calls >= 150 and texts >= 1 and calls + texts == 200


def test_chat_prompts_with_tools(backend: Any) -> None:
    """Full chat prompts (system, tools and history rendered by the GGUF's template) decode too."""
    dom = get_domain("airline")
    tools = dom.openai_tools()
    messages = [
        {"role": "system", "content": "You are the airline agent."},
        {"role": "user", "content": "Hi, I want to change my flight."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_user_details", "arguments": '{"user_id": "mia_li_3668"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"user_id": "mia_li_3668"}'},
    ]
    constraint = backend.agent_turn_constraint(tools, "required")
    requests = [
        Request(
            request_id=f"chat-{i}",
            messages=messages,
            tools=tools,
            constraint=constraint,
            sampling=SamplingParams(max_tokens=4096),
            seed=i,
        )
        for i in range(16)
    ]
    done = run(backend, requests)
    assert done[0].prompt_tokens > 1000  # the tool schemas are in the prompt
    assert sum(c.cached_tokens for c in done) > 0  # slots reuse the shared prompt
    for c in done:
        assert c.error is None and len(c.tool_calls) == 1, (c.error, c.text)
        assert isinstance(dom.bind(c.tool_calls[0].name, c.tool_calls[0].arguments), BoundCall)


def test_llama3_json_format_turns_parse(tiny_models: dict[str, Path]) -> None:
    if not HAVE_LLAMACPP:
        need_optional("llama-cpp-python and llguidance")
    dom = get_domain("retail")
    tools = dom.openai_tools()
    b: Any = make_backend(
        {"backend": "llamacpp", "model": str(tiny_models["gguf"]), "tool_format": "llama3_json", "n_ctx": 8192}
    )
    try:
        constraint = b.agent_turn_constraint(tools, "required")
        requests = [
            Request(
                request_id=f"l{i}",
                prompt="Call a tool:",
                tools=tools,
                constraint=constraint,
                seed=i,
                sampling=SamplingParams(max_tokens=4096),
            )
            for i in range(24)
        ]
        for c in run(b, requests):
            assert c.error is None and len(c.tool_calls) == 1, (c.error, c.text)
            assert c.text.startswith('{"name": ')
            assert isinstance(dom.bind(c.tool_calls[0].name, c.tool_calls[0].arguments), BoundCall)
    finally:
        asyncio.run(b.close())


def test_truncated_call_is_an_error_not_a_call(backend: Any) -> None:
    tools = get_domain("retail").openai_tools()
    request = Request(
        request_id="short",
        prompt="x",
        tools=tools,
        constraint=backend.agent_turn_constraint(tools, "required"),
        sampling=SamplingParams(max_tokens=5),
    )
    (c,) = run(backend, [request])
    assert c.finish_reason == "length" and c.tool_calls == [] and c.completion_tokens == 5
    assert c.error is not None and c.error.startswith("hit max_tokens (5) before the turn ended: unbalanced")


def test_json_schema_and_regex_constraints(backend: Backend) -> None:
    schema = {
        "type": "object",
        "properties": {"color": {"enum": ["red", "green"]}, "n": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["color", "n"],
        "additionalProperties": False,
    }
    js = Constraint(kind="json_schema", spec=json.dumps(schema), key="color-n")
    rx = Constraint(kind="regex", spec=r"[A-Z]{3}[0-9]{3}", key="flight")
    requests = [Request(request_id=f"j{i}", prompt="Answer:", constraint=js, seed=i) for i in range(10)]
    requests += [Request(request_id=f"r{i}", prompt="Flight:", constraint=rx, seed=i) for i in range(10)]
    for c in run(backend, requests):
        assert c.error is None and c.finish_reason == "stop"
        if c.request_id.startswith("j"):
            value = json.loads(c.text)
            assert value["color"] in ("red", "green") and 0 <= value["n"] <= 99 and set(value) == {"color", "n"}
        else:
            assert re.fullmatch(r"[A-Z]{3}[0-9]{3}", c.text), c.text


def test_bad_constraint_and_bad_request_come_back_as_errors(backend: Backend) -> None:
    bad = Constraint(kind="lark", spec="start: ???", key="bad")
    (c1, c2, c3) = run(
        backend,
        [
            Request(request_id="a", prompt="x", constraint=bad),
            Request(request_id="b", prompt="x", messages=[{"role": "user", "content": "x"}]),
            Request(request_id="c", prompt="x " * 70000),
        ],
    )
    assert c1.error is not None and c1.error.startswith("constraint 'bad' does not compile: ")
    assert c2.error == "a request needs exactly one of messages or prompt"
    assert c3.error is not None and re.fullmatch(
        r"prompt \(\d+ tokens\) \+ max_tokens \(256\) exceeds n_ctx \(8192\)", c3.error
    )
    assert all("\n" not in (c.error or "") for c in (c1, c2, c3))


# -- sampling and scheduling ------------------------------------------------------------------


def test_same_seed_same_text_and_seeds_differ(backend: Backend) -> None:
    def req(rid: str, seed: int) -> Request:
        return Request(request_id=rid, prompt="Hello", sampling=SamplingParams(max_tokens=40), seed=seed)

    a, b, c = run(backend, [req("a", 1), req("b", 1), req("c", 2)])
    assert a.text == b.text and a.text != c.text
    (again,) = run(backend, [req("d", 1)])
    assert again.text == a.text


def test_stop_strings_and_length(backend: Backend) -> None:
    (c,) = run(backend, [Request(request_id="s", prompt="Hi", sampling=SamplingParams(max_tokens=64), seed=3)])
    assert c.finish_reason in ("length", "stop") and c.completion_tokens <= 64
    stop = next(ch for ch in c.text[5:] if ch.isascii() and ch.isalnum())
    (d,) = run(
        backend,
        [Request(request_id="t", prompt="Hi", sampling=SamplingParams(max_tokens=64, stop=(stop,)), seed=3)],
    )
    assert d.finish_reason == "stop" and d.text == c.text[: c.text.index(stop)]


def test_later_turns_reuse_the_cached_prompt(backend: Backend) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Where is my order #W2378156?"}]
    (first,) = run(backend, [Request(request_id="t1", messages=messages, sampling=SamplingParams(max_tokens=8))])
    messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Thanks."}]
    (second,) = run(backend, [Request(request_id="t2", messages=messages, sampling=SamplingParams(max_tokens=8))])
    assert second.prompt_tokens > first.prompt_tokens
    assert second.cached_tokens >= first.prompt_tokens - 1


def test_concurrent_generate_calls_share_the_batch(backend: Backend) -> None:
    async def many() -> list[list[Completion]]:
        calls = [
            backend.generate(
                [Request(request_id=f"g{g}-{i}", prompt=f"Hi {g}", sampling=SamplingParams(max_tokens=16))]
            )
            for g in range(12)
            for i in range(2)
        ]
        return list(await asyncio.gather(*calls))

    results = asyncio.run(many())
    assert [r[0].request_id for r in results] == [f"g{g}-{i}" for g in range(12) for i in range(2)]
    assert all(r[0].error is None and r[0].completion_tokens > 0 for r in results)
