"""Tests for the OpenAI-compatible backend against a real llama-cpp-python server started here."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.backends import Backend, Completion, Constraint, Request, SamplingParams, make_backend
from envs import get_domain
from envs.kernel import BoundCall
from grammars import bound_schema, get_format
from tests.engine.backends.llama_server import free_port, llama_server


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on the tiny GGUF, on a free local port; yields its /v1 URL."""
    with llama_server(tiny_models["gguf"], tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


def _backend(url: str, **options: Any) -> Any:
    return make_backend({"backend": "openai", "base_url": url, "model": "tiny", **options})


def _run(backend: Backend, requests: list[Request]) -> list[Completion]:
    async def go() -> list[Completion]:
        try:
            return await backend.generate(requests)
        finally:
            await backend.close()

    return asyncio.run(go())


def test_json_schema_constraint_is_enforced_by_the_server(server: str) -> None:
    schema = {
        "type": "object",
        "properties": {"color": {"enum": ["red", "green", "blue"]}, "ok": {"type": "boolean"}},
        "required": ["color", "ok"],
    }
    constraint = Constraint(kind="json_schema", spec=json.dumps(schema), key="color")
    backend = _backend(server)
    requests = [
        Request(
            request_id=f"j{i}",
            messages=[{"role": "user", "content": "Pick a color."}],
            constraint=constraint,
            sampling=SamplingParams(max_tokens=64),
            seed=i,
        )
        for i in range(8)
    ]
    done = _run(backend, requests)
    # llama-cpp-python's server refuses OpenAI's json_schema form; the backend fell back once
    assert backend._schema_style == "json_object"
    for c in done:
        assert c.error is None, c.error
        value = json.loads(c.text)
        assert value["color"] in ("red", "green", "blue") and isinstance(value["ok"], bool)
        assert c.prompt_tokens > 0 and c.completion_tokens > 0


def test_tool_calls_from_server_text_are_parsed_strictly(server: str) -> None:
    """Llama-3 JSON calls forced by a server-side schema: each is a kernel-valid call or an error."""
    dom = get_domain("retail")
    tools = [t for t in dom.openai_tools() if t["function"]["name"] in ("get_order_details", "calculate")]
    fmt = get_format("llama3_json")
    union = {
        "anyOf": [fmt.call_schema(t["function"]["name"], bound_schema(t["function"]["parameters"])) for t in tools]
    }
    constraint = Constraint(kind="json_schema", spec=json.dumps(union), key="calls")
    requests = [
        Request(
            request_id=f"t{i}",
            messages=[{"role": "user", "content": "Where is my order?"}],
            tools=tools,
            constraint=constraint,
            sampling=SamplingParams(max_tokens=400),
            seed=i,
        )
        for i in range(12)
    ]
    valid = 0
    for c in _run(_backend(server, tool_format="llama3_json"), requests):
        if c.error is None:
            assert len(c.tool_calls) == 1, c.text
            call = c.tool_calls[0]
            assert isinstance(dom.bind(call.name, call.arguments), BoundCall), (call, c.text)
            valid += 1
        else:  # llama.cpp's grammar lets e.g. raw control characters into strings: refused here
            assert "\n" not in c.error and c.text and c.tool_calls == []
            assert c.error.startswith("tool call 1: ")
    assert valid >= 1


def test_malformed_tool_call_text_is_an_error_and_keeps_the_text(server: str) -> None:
    broken = "<tool_call>{name: calculate, arguments: {}}</tool_call>"
    constraint = Constraint(kind="json_schema", spec=json.dumps({"enum": [broken]}), key="broken")
    tools = [t for t in get_domain("retail").openai_tools() if t["function"]["name"] == "calculate"]
    (c,) = _run(
        _backend(server),
        [Request(request_id="b", messages=[{"role": "user", "content": "2+2?"}], tools=tools, constraint=constraint)],
    )
    assert c.text == json.dumps(broken)
    assert c.tool_calls == []
    assert c.error is not None and c.error.startswith("tool call 1: invalid JSON (")


def test_unconstrained_turns_and_raw_prompts(server: str) -> None:
    tools = get_domain("airline").openai_tools()
    requests = [
        Request(
            request_id=f"u{i}",
            messages=[{"role": "user", "content": "Hello"}],
            tools=tools,
            sampling=SamplingParams(max_tokens=32),
            seed=i,
        )
        for i in range(6)
    ]
    requests.append(Request(request_id="p", prompt="Once upon a time", sampling=SamplingParams(max_tokens=8)))
    done = _run(_backend(server, max_concurrency=3), requests)
    assert [c.request_id for c in done] == [r.request_id for r in requests]
    for c in done:
        assert c.error is None or "\n" not in c.error
        assert c.completion_tokens > 0 and c.latency_s > 0
    assert done[0].prompt_tokens > 1000  # the server rendered the tools into the prompt
    assert done[-1].text and done[-1].finish_reason == "length"


def test_unreachable_server_gives_one_line_errors() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    (c,) = _run(_backend(url, timeout_s=5), [Request(request_id="x", prompt="hi")])
    assert c.finish_reason == "error" and c.text == ""
    assert c.error is not None and c.error.startswith(f"ConnectError talking to {url}: ")
    assert "\n" not in c.error


def test_missing_httpx_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError) as info:
        _backend("http://127.0.0.1:1/v1")
    assert str(info.value) == "the openai backend needs httpx: pip install 'writ[openai]'  (httpx)"
