"""The vLLM lane's checks, run inside .venv-vllm: one real engine, constrained agent turns, prefix cache.

Run by ``tests/engine/backends/test_vllm.py`` as ``.venv-vllm/bin/python tests/vllm_lane/lane_checks.py
--out FILE``; prints progress to stderr and writes one JSON object to FILE. The engine starts once
(on the tiny random test model) and serves every check:

1. validity: agent turns at temperature 1 for airline's and retail's tool sets, each parsed with
   the model's tool-call format and every call decoded with the kernel's own argument decoder.
   A few turns use the agent-turn grammar as is (text or a call: random weights almost always
   pick text); the rest use ``tool_choice="required"`` (a call), so every tool schema is sampled.
2. multi_turn: conversations of several agent turns each; later turns must hit the prefix cache.
3. misc: request order, a JSON-schema and a regex constraint, and a broken grammar that must fail
   alone with a one-line error while its neighbours succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from engine.backends.base import Completion, Constraint, Request, SamplingParams  # noqa: E402
from engine.backends.vllm import VLLMBackend, make_vllm_backend  # noqa: E402
from engine.testmodel import build_test_models  # noqa: E402
from envs import CallResult, get_domain  # noqa: E402

DOMAINS = ("airline", "retail")
USER_LINES = (
    "Hi, I need to change my booking.",
    "Can you cancel my order please? It is order #W2378156.",
    "My user id is mia_li_3668 and I want to add a bag.",
    "What is the status of flight HAT170 on 2024-05-16?",
    "I'd like to return the red kettle I bought last week.",
    "Please update my address to 123 Main St, Springfield.",
)


def log(message: str) -> None:
    print(f"[vllm-lane] {message}", file=sys.stderr, flush=True)


def turn_record(domain: str, c: Completion) -> dict[str, Any]:
    """One agent turn as the lane reports it, checked with the kernel's argument decoder."""
    dom = get_domain(domain)
    calls = [{"name": t.name, "arguments": t.arguments} for t in c.tool_calls]
    problems = [c.error] if c.error else []
    for t in c.tool_calls:
        bound = dom.bind(t.name, t.arguments)
        if isinstance(bound, CallResult):
            problems.append(f"{t.name}: {bound.text}")
    if not c.error and not c.tool_calls and not c.text.strip():
        problems.append("empty message")
    return {
        "request_id": c.request_id,
        "kind": "tool_call" if c.tool_calls else "message",
        "calls": calls,
        "text_head": c.text[:80],
        "finish_reason": c.finish_reason,
        "prompt_tokens": c.prompt_tokens,
        "cached_tokens": c.cached_tokens,
        "completion_tokens": c.completion_tokens,
        "valid": not problems,
        "problems": problems,
    }


async def check_validity(
    backend: VLLMBackend, turns: int, free_turns: int, max_tokens: int, free_max_tokens: int
) -> dict[str, Any]:
    """``turns`` constrained agent turns per domain (``free_turns`` of them with the full
    agent-turn grammar, the rest with tool_choice="required"), all submitted at once."""
    requests: list[Request] = []
    owners: list[str] = []
    for domain in DOMAINS:
        tools = get_domain(domain).openai_tools()
        full = backend.agent_turn_constraint(tools)
        forced = backend.agent_turn_constraint(tools, tool_choice="required")
        for i in range(turns):
            messages = [
                {"role": "system", "content": f"You are a {domain} customer service agent."},
                {"role": "user", "content": USER_LINES[i % len(USER_LINES)]},
            ]
            grammar = "full" if i < free_turns else "call"
            requests.append(
                Request(
                    request_id=f"{domain}-{grammar}-{i}",
                    messages=messages,
                    tools=tools,
                    sampling=SamplingParams(
                        max_tokens=free_max_tokens if grammar == "full" else max_tokens,
                        temperature=1.0,
                    ),
                    constraint=full if grammar == "full" else forced,
                    seed=10_000 * DOMAINS.index(domain) + i,
                )
            )
            owners.append(domain)
    started = time.perf_counter()
    completions = await backend.generate(requests)
    elapsed = time.perf_counter() - started
    out: dict[str, Any] = {
        "seconds": round(elapsed, 2),
        "max_tokens": max_tokens,
        "full_grammar_max_tokens": free_max_tokens,
        "turns_per_domain": turns,
        "full_grammar_turns_per_domain": free_turns,
    }
    for domain in DOMAINS:
        records = [turn_record(d, c) for d, c in zip(owners, completions, strict=True) if d == domain]
        out[domain] = {
            "turns": len(records),
            "valid": sum(r["valid"] for r in records),
            "messages": sum(r["kind"] == "message" for r in records),
            "tool_calls": sum(r["kind"] == "tool_call" for r in records),
            "tools_called": sorted({c["name"] for r in records for c in r["calls"]}),
            "completion_tokens": sum(r["completion_tokens"] for r in records),
            "max_completion_tokens": max(r["completion_tokens"] for r in records),
            "prompt_tokens": sum(r["prompt_tokens"] for r in records),
            "cached_tokens": sum(r["cached_tokens"] for r in records),
            "records": records,
        }
    out["order_ok"] = [c.request_id for c in completions] == [r.request_id for r in requests]
    return out


async def check_multi_turn(
    backend: VLLMBackend, conversations: int, turns: int, max_tokens: int
) -> dict[str, Any]:
    """Conversations advanced turn by turn, all at once; report prompt vs cached tokens per turn."""
    tools = get_domain("retail").openai_tools()
    constraint = backend.agent_turn_constraint(tools)
    histories = [
        [
            # A distinct first line per conversation, so the only cache a conversation can hit
            # on its first turn is nothing, and on later turns its own earlier prompt.
            {"role": "system", "content": f"Conversation {i}: retail agent, ticket {i * 7919}."},
            {"role": "user", "content": USER_LINES[i % len(USER_LINES)]},
        ]
        for i in range(conversations)
    ]
    per_turn: list[dict[str, Any]] = []
    for turn in range(turns):
        requests = [
            Request(
                request_id=f"conv{i}-turn{turn}",
                messages=list(h),
                tools=tools,
                sampling=SamplingParams(max_tokens=max_tokens, temperature=1.0),
                constraint=constraint,
                seed=7 * i + turn,
            )
            for i, h in enumerate(histories)
        ]
        completions = await backend.generate(requests)
        for i, (h, c) in enumerate(zip(histories, completions, strict=True)):
            if c.tool_calls and not c.error:
                h.append(
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {"type": "function", "function": {"name": t.name, "arguments": t.arguments}}
                            for t in c.tool_calls
                        ],
                    }
                )
                h.append({"role": "tool", "content": "Error: not found in this test"})
            else:
                h.append({"role": "assistant", "content": c.text})
                h.append({"role": "user", "content": USER_LINES[(i + turn + 1) % len(USER_LINES)]})
        per_turn.append(
            {
                "turn": turn,
                "prompt_tokens": [c.prompt_tokens for c in completions],
                "cached_tokens": [c.cached_tokens for c in completions],
                "errors": [c.error for c in completions if c.error],
            }
        )
        log(
            f"multi-turn turn {turn}: prompt {sum(per_turn[-1]['prompt_tokens'])} tokens, "
            f"cached {sum(per_turn[-1]['cached_tokens'])}"
        )
    return {"conversations": conversations, "block_size": backend.block_size, "turns": per_turn}


async def check_misc(backend: VLLMBackend) -> dict[str, Any]:
    """Order, JSON schema, regex, and a broken grammar failing alone."""
    schema = {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^#W[0-9]{7}$"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["order_id", "quantity"],
        "additionalProperties": False,
    }
    json_c = Constraint(kind="json_schema", spec=json.dumps(schema), key="misc-json")
    regex_c = Constraint(kind="regex", spec=r"(yes|no), [a-z]{3,12}\.", key="misc-regex")
    bad_c = Constraint(kind="lark", spec="start: undefined_rule", key="misc-bad")
    requests = []
    for i in range(24):
        kind = ("json", "regex", "bad")[i % 3] if i < 9 else ("json", "regex")[i % 2]
        constraint = {"json": json_c, "regex": regex_c, "bad": bad_c}[kind]
        requests.append(
            Request(
                request_id=f"misc-{kind}-{i}",
                prompt=f"Item {i}: answer.",
                sampling=SamplingParams(max_tokens=64, temperature=1.0),
                constraint=constraint,
                seed=i,
            )
        )
    # Two requests the backend must refuse by itself, one line each.
    requests.append(Request(request_id="misc-refused-empty", sampling=SamplingParams()))
    requests.append(
        Request(
            request_id="misc-refused-long",
            prompt="too long",
            sampling=SamplingParams(max_tokens=backend.max_model_len),
        )
    )
    completions = await backend.generate(requests)
    rows = []
    for r, c in zip(requests, completions, strict=True):
        kind = r.request_id.split("-")[1]
        ok: bool
        if kind == "json":
            try:
                value = json.loads(c.text)
                ok = (
                    c.error is None
                    and set(value) == {"order_id", "quantity"}
                    and re.fullmatch(r"#W[0-9]{7}", value["order_id"]) is not None
                    and isinstance(value["quantity"], int)
                    and 1 <= value["quantity"] <= 5
                )
            except (ValueError, TypeError):
                ok = False
        elif kind == "regex":
            ok = c.error is None and re.fullmatch(r"(yes|no), [a-z]{3,12}\.", c.text) is not None
        else:  # "bad" and "refused": a one-line error and no text
            ok = c.error is not None and "\n" not in c.error and c.text == ""
        rows.append({"id": c.request_id, "kind": kind, "ok": ok, "text": c.text, "error": c.error})
    return {
        "order_ok": [c.request_id for c in completions] == [r.request_id for r in requests],
        "rows": rows,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import vllm

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="writ-vllm-lane-"))
    paths = build_test_models(workdir, seed=0, vocab="small")
    log(f"test model at {paths['hf']}")
    started = time.perf_counter()
    backend = make_vllm_backend(
        {
            "model": str(paths["hf"]),
            "max_num_seqs": args.max_num_seqs,
            "max_model_len": args.max_model_len,
            "enforce_eager": True,
            "seed": 0,
        }
    )
    start_s = time.perf_counter() - started
    log(f"engine started in {start_s:.1f} s")
    result: dict[str, Any] = {
        "vllm_version": vllm.__version__,
        "engine_start_s": round(start_s, 2),
        "tool_format": backend.tool_format.name,
        "tag_tokens": backend.tag_tokens,
    }
    try:
        t = time.perf_counter()
        result["validity"] = await check_validity(
            backend, args.turns, args.full_grammar_turns, args.max_tokens, args.full_max_tokens
        )
        log(f"validity done in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        result["multi_turn"] = await check_multi_turn(
            backend, args.conversations, args.conversation_turns, args.turn_tokens
        )
        log(f"multi-turn done in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        result["misc"] = await check_misc(backend)
        log(f"misc done in {time.perf_counter() - t:.1f} s")
    finally:
        await backend.close()
    result["total_s"] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--workdir", help="where to build the test model (default: a temp dir)")
    parser.add_argument("--turns", type=int, default=200, help="agent turns per domain")
    parser.add_argument(
        "--full-grammar-turns", type=int, default=10, help="of those, with the full grammar"
    )
    parser.add_argument("--max-tokens", type=int, default=3072, help="per required-call turn")
    parser.add_argument("--full-max-tokens", type=int, default=2048, help="per full-grammar turn")
    parser.add_argument("--turn-tokens", type=int, default=96, help="per multi-turn turn")
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--conversation-turns", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {args.out} ({result['total_s']} s)")


if __name__ == "__main__":
    main()
