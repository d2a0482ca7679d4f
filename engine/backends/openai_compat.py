"""Backend for any OpenAI-compatible server (vLLM serve, llama.cpp's llama-server, SGLang, ...).

Requests go out concurrently over one HTTP client. A JSON-schema constraint is sent as
``response_format`` (OpenAI's ``json_schema`` form, falling back once to the ``json_object`` +
``schema`` form that llama.cpp servers take); with ``structured_output="vllm"`` lark and regex
constraints go out as vLLM's ``structured_outputs`` too. Whatever the server enforced, the answer
is parsed strictly: tool calls the server returns must carry JSON-object arguments, and tool calls
left in the text are read with the model's tool-call format. Failures come back as one-line
``Completion.error`` values, never as exceptions.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from engine.backends.base import Backend, Completion, Constraint, Request, ToolCall, one_line, parse_tool_calls
from grammars import agent_turn_grammar, get_format

__all__ = ["OpenAICompatBackend"]

_INSTALL = "pip install 'writ[openai]'  (httpx)"


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(f"the openai backend needs httpx: {_INSTALL}") from exc
    return httpx



class _HTTPError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {one_line(body, 200)}")
        self.status = status
        self.body = body


class OpenAICompatBackend(Backend):
    """Talks to ``base_url`` (ending in ``/v1``), up to ``max_concurrency`` requests at a time."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_concurrency: int = 64,
        structured_output: str = "auto",
        tool_format: str = "hermes",
        seed: int | None = None,
    ) -> None:
        httpx = _import_httpx()
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.seed = seed
        self.structured_output = structured_output
        self.tool_format = get_format(tool_format)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._gate = asyncio.Semaphore(max_concurrency)
        # "json_schema" until the server refuses it, then "json_object" (llama.cpp servers)
        self._schema_style = "json_object" if structured_output == "json_object" else "json_schema"

    def agent_turn_constraint(self, tools: list[dict[str, Any]], tool_choice: str = "auto") -> Constraint:
        """The agent-turn constraint for ``tools`` in this backend's tool-call format."""
        g = agent_turn_grammar(tools, self.tool_format, tool_choice=tool_choice)
        return Constraint(kind="lark", spec=g.lark, key=g.key)

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def close(self) -> None:
        await self._client.aclose()

    # -- one request ----------------------------------------------------------------------

    async def _one(self, request: Request) -> Completion:
        start = time.perf_counter()
        if (request.messages is None) == (request.prompt is None):
            return self._failed(request, "a request needs exactly one of messages or prompt")
        async with self._gate:
            try:
                body, path = self._body(request)
                data = await self._post_with_fallback(path, body, request.constraint)
                completion = self._read(request, data)
            except _HTTPError as exc:
                completion = self._failed(request, str(exc))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                completion = self._failed(request, f"bad response: {one_line(str(exc), 200)}")
            except Exception as exc:  # transport errors: connection refused, timeouts...
                where = f"{type(exc).__name__} talking to {self.base_url}"
                completion = self._failed(request, one_line(f"{where}: {exc}", 200))
        completion.latency_s = time.perf_counter() - start
        return completion

    def _failed(self, request: Request, error: str) -> Completion:
        return Completion(request_id=request.request_id, text="", finish_reason="error", error=error)

    def _body(self, request: Request) -> tuple[dict[str, Any], str]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        if s.stop:
            body["stop"] = list(s.stop)
        seed = request.seed if request.seed is not None else self.seed
        if seed is not None:
            body["seed"] = seed
        if request.messages is not None:
            body["messages"] = request.messages
            if request.tools:
                body["tools"] = request.tools
            path = "/chat/completions"
        else:
            body["prompt"] = request.prompt
            path = "/completions"
        self._add_constraint(body, request.constraint)
        return body, path

    def _add_constraint(self, body: dict[str, Any], c: Constraint | None) -> None:
        if c is None or self.structured_output == "none":
            return
        if c.kind == "json_schema":
            schema = json.loads(c.spec)
            if self._schema_style == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "constraint", "schema": schema, "strict": True},
                }
            else:
                body["response_format"] = {"type": "json_object", "schema": schema}
        elif self.structured_output == "vllm":
            key = "grammar" if c.kind == "lark" else "regex"
            body["structured_outputs"] = {key: c.spec}

    async def _post_with_fallback(
        self, path: str, body: dict[str, Any], constraint: Constraint | None
    ) -> dict[str, Any]:
        try:
            return await self._post(path, body)
        except _HTTPError as exc:
            fmt = body.get("response_format", {})
            # llama-cpp-python's server answers 500 to a response_format type it does not know
            refused = fmt.get("type") == "json_schema" and ("json_schema" in exc.body or exc.status == 400)
            if not (refused and self.structured_output == "auto"):
                raise
            self._schema_style = "json_object"  # remember: this server takes the older form
            body = dict(body)
            self._add_constraint(body, constraint)
            return await self._post(path, body)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._client.post(path, json=body)
        if response.status_code >= 400:
            raise _HTTPError(response.status_code, response.text)
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("the server answered with something other than a JSON object")
        return data

    # -- response -> completion -----------------------------------------------------------

    def _read(self, request: Request, data: dict[str, Any]) -> Completion:
        choice = data["choices"][0]
        reason = choice.get("finish_reason") or "stop"
        error: str | None = None
        calls: list[ToolCall] = []
        if "message" in choice:
            message = choice["message"]
            text = message.get("content") or ""
            try:
                for i, call in enumerate(message.get("tool_calls") or []):
                    fn = call["function"]
                    calls.append(ToolCall(name=str(fn["name"]), arguments=_arguments(fn, i)))
            except (ValueError, KeyError, TypeError) as exc:
                error, calls = one_line(f"bad tool call from the server: {exc}", 200), []
                text = text or json.dumps(message.get("tool_calls"), ensure_ascii=False)
        else:
            text = choice.get("text") or ""
        if request.tools and not calls and error is None:
            calls, error = parse_tool_calls(self.tool_format, text, reason, request.sampling.max_tokens)
        if calls and reason == "tool_calls":
            reason = "stop"
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") or (data.get("timings") or {}).get("cache_n") or 0
        return Completion(
            request_id=request.request_id,
            text=text,
            tool_calls=calls,
            finish_reason=reason,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            cached_tokens=int(cached),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            error=error,
        )


def _arguments(fn: dict[str, Any], index: int) -> str:
    """A server-parsed call's arguments, checked to be one JSON object, in canonical text."""
    raw = fn.get("arguments", "{}")
    name = fn.get("name")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"tool call {index + 1} ({name}): arguments are not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"tool call {index + 1} ({name}): arguments must be a JSON object")
    return json.dumps(raw, ensure_ascii=False)
