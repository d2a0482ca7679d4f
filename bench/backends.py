"""Benchmark the backends: tokens/s free vs constrained, one conversation at a time vs N at once.

Every backend gets the same model (random weights, 32k vocabulary), prompts, seeds and token
budget, each in its own process. Modes: ``free`` (no constraint), ``agent`` (the agent-turn
grammar: text or a tool call) and ``call`` (a tool call is required; JSON-schema-constrained on
the openai backend; 4x the requests and max_tokens, as calls are short and uneven). Each run first warms the
grammar and the prompt cache, then times ``--requests`` completions. Prints a table with ratio
columns (vs ``free`` at the same concurrency, vs one conversation in the same mode); ``--json``
writes the rows too. The openai backend talks to ``python -m llama_cpp.server`` on the same GGUF.

    python bench/backends.py                                  # tool schemas in the prompt
    python bench/backends.py --prompt short --backends llamacpp
    python bench/backends.py --size test --conversations 4    # the 18 MB test model, quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# name -> (hidden, layers, heads, kv_heads, ff); all use the 32k test vocabulary
SIZES = {"test": None, "bench": (1024, 8, 16, 4, 2816)}
MODES = ("free", "agent", "call")


# -- models -----------------------------------------------------------------------------------


def build_model(size: str, out_dir: Path) -> Path:
    """The GGUF for ``size``: the 32k test model (18 MB), or a bigger random one (624 MB, F32)."""
    from engine.testmodel import build_test_models, build_tokenizer
    from engine.testmodel.gguf_writer import write_gguf
    from engine.testmodel.weights import LlamaShape

    out_dir.mkdir(parents=True, exist_ok=True)
    if SIZES[size] is None:
        path = out_dir / "writ-test-32k.gguf"
        return path if path.exists() else build_test_models(out_dir, seed=0, vocab="32k")["gguf"]
    hidden, layers, heads, kv_heads, ff = SIZES[size]  # type: ignore[misc]
    path = out_dir / f"writ-{size}-{hidden}x{layers}-32k.gguf"
    if not path.exists():
        tok = build_tokenizer("32k")
        shape = LlamaShape(
            vocab_size=len(tok.tokens), hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, ff=ff
        )
        write_gguf(path, tok, shape, 0, f"writ-{size}-32k")
    return path


# -- one backend, in its own process ----------------------------------------------------------


def _requests(
    mode: str, backend: Any, tools: list[dict[str, Any]], n: int, tokens: int, tag: str, prompt: str
) -> list[Any]:
    from engine.backends import Constraint, Request, SamplingParams
    from grammars import bound_schema, get_format

    messages = [
        {"role": "system", "content": "You are a retail customer-service agent."},
        {"role": "user", "content": "Hi, I want to return the red kettle from my last order."},
    ]
    # "tools": the chat template renders the tool schemas into the prompt (~3.2k tokens), as in a
    # real agent turn; "short": a bare ChatML prompt (~30 tokens), the tools only shape the constraint
    chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    text = {"messages": messages} if prompt == "tools" else {"prompt": chatml + "<|im_start|>assistant\n"}
    constraint = None
    if mode == "agent" and backend.name == "llamacpp":
        constraint = backend.agent_turn_constraint(tools, "auto")
    elif mode == "call" and backend.name == "llamacpp":
        constraint = backend.agent_turn_constraint(tools, "required")
    elif mode == "call":  # a server takes JSON schemas: a Llama-3 JSON call is a bare object
        fmt = get_format("llama3_json")
        union = {
            "anyOf": [fmt.call_schema(t["function"]["name"], bound_schema(t["function"]["parameters"])) for t in tools]
        }
        constraint = Constraint(kind="json_schema", spec=json.dumps(union), key="call-union")
    return [
        Request(
            request_id=f"{tag}-{i}",
            **text,
            tools=tools,
            constraint=constraint,
            sampling=SamplingParams(max_tokens=tokens, temperature=1.0),
            seed=i,
        )
        for i in range(n)
    ]


def _start_server(model: Path, threads: int, n_ctx: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start in 300 s")


async def _timed(backend: Any, requests: list[Any]) -> dict[str, Any]:
    start = time.perf_counter()
    done = await backend.generate(requests)
    seconds = time.perf_counter() - start
    tokens = sum(c.completion_tokens for c in done)
    return {
        "requests": len(done),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tok_s": round(tokens / seconds, 1),
        "calls": sum(1 for c in done if c.tool_calls),
        "errors": sum(1 for c in done if c.error),
    }


async def _worker_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from engine.backends import make_backend
    from envs import get_domain

    tools = get_domain("retail").openai_tools()
    rows: list[dict[str, Any]] = []
    server = None
    try:
        for conv in sorted({1, args.conversations}):
            if args.backend == "llamacpp":
                config = {"backend": "llamacpp", "model": args.model, "n_parallel": conv, "n_threads": args.threads}
                config["n_ctx"] = args.tokens + 4096  # per conversation
            else:
                if server is None:
                    server, url = _start_server(Path(args.model), args.threads, args.tokens + 4096)
                config = {"backend": "openai", "base_url": url, "model": "bench", "max_concurrency": conv}
                config["tool_format"] = "llama3_json"
            backend = make_backend(config)
            try:
                for mode in MODES:
                    if mode == "agent" and args.backend != "llamacpp":
                        continue  # a lark grammar is not something this server takes
                    warm = _requests(mode, backend, tools, 1, 1, f"warm-{mode}", args.prompt)
                    await backend.generate(warm)  # compile the grammar and cache the prompt
                    # calls are short and uneven: 4x the requests keep N conversations busy, and
                    # 4x the budget lets random weights finish their long strings
                    k = 4 if mode == "call" else 1
                    reqs = _requests(
                        mode, backend, tools, k * args.requests, k * args.tokens, f"{mode}-{conv}", args.prompt
                    )
                    row = {"backend": args.backend, "mode": mode, "conversations": conv, "prompt": args.prompt}
                    rows.append({**row, **(await _timed(backend, reqs))})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            finally:
                await backend.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return rows


def _worker(args: argparse.Namespace) -> None:
    rows = asyncio.run(_worker_async(args))
    Path(args.worker_out).write_text(json.dumps(rows))


# -- the table --------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("llama-cpp-python", "llguidance", "numpy", "httpx"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a text table with the two ratio columns."""
    by_key = {(r["backend"], r["mode"], r["conversations"]): r for r in rows}
    head = ("backend", "mode", "convs", "reqs", "tokens", "seconds", "tok/s", "vs free", "vs 1 conv", "calls", "errors")
    lines = [head]
    for r in rows:
        free = by_key.get((r["backend"], "free", r["conversations"]))
        single = by_key.get((r["backend"], r["mode"], 1))
        vs_free = f"{r['tok_s'] / free['tok_s']:.2f}x" if free and free["tok_s"] else "-"
        vs_one = f"{r['tok_s'] / single['tok_s']:.2f}x" if single and single["tok_s"] else "-"
        lines.append(
            (
                r["backend"],
                r["mode"],
                str(r["conversations"]),
                str(r["requests"]),
                str(r["tokens"]),
                f"{r['seconds']:.2f}",
                f"{r['tok_s']:.0f}",
                vs_free,
                vs_one,
                str(r["calls"]),
                str(r["errors"]),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def main() -> None:
    from engine.backends.llamacpp_native import free_cores

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a GGUF to use instead of building one")
    p.add_argument("--size", choices=sorted(SIZES), default="bench", help="random model to build (32k vocab)")
    p.add_argument("--model-dir", default=os.path.join(tempfile.gettempdir(), "writ-bench-models"))
    p.add_argument("--backends", default="llamacpp,openai")
    p.add_argument("--conversations", type=int, default=8)
    p.add_argument("--requests", type=int, default=8, help="completions per run")
    p.add_argument("--tokens", type=int, default=128, help="max_tokens per completion")
    p.add_argument("--threads", type=int, default=0, help="llama.cpp threads (default: free cores)")
    p.add_argument("--prompt", choices=("tools", "short"), default="tools", help="tool schemas in the prompt or not")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.backend:
        return _worker(args)
    args.threads = args.threads or free_cores()
    model = Path(args.model) if args.model else build_model(args.size, Path(args.model_dir))
    print(f"model: {model} ({model.stat().st_size / 1e6:.0f} MB)")
    print(f"cpu: {_cpu()}; {os.cpu_count()} cores, {args.threads} threads, load {os.getloadavg()[0]:.1f}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()))
    where = "rendered into the prompt" if args.prompt == "tools" else "in the constraint only"
    print(f"work: {args.requests} requests x {args.tokens} max tokens, temperature 1, retail tools {where}")
    rows: list[dict[str, Any]] = []
    for name in args.backends.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            out_path = out.name
        cmd = [sys.executable, __file__, "--backend", name, "--worker-out", out_path, "--model", str(model)]
        cmd += ["--conversations", str(args.conversations), "--requests", str(args.requests)]
        cmd += ["--tokens", str(args.tokens), "--threads", str(args.threads), "--prompt", args.prompt]
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            print(f"{name}: worker failed with exit code {result.returncode}", file=sys.stderr)
            continue
        rows += json.loads(Path(out_path).read_text())
        os.unlink(out_path)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": _versions(), "cpu": _cpu(), "rows": rows}, indent=1))
    return None


if __name__ == "__main__":
    main()
