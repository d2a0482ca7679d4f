"""The ``writ make-test-model`` command: build the tiny random test models into a folder, then preflight the GGUF."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from engine.testmodel.build import build_test_models
from engine.testmodel.tokenizer import VOCAB_SIZES

__all__ = ["make_test_model"]


def make_test_model(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the models into.")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.", min=0)] = 0,
    vocab: Annotated[str, typer.Option(help="Vocabulary: 'small' (1,536 tokens) or '32k' (32,000 tokens).")] = "small",
) -> None:
    """Build a tiny random Llama (GGUF for llama.cpp, HF folder for vLLM) with a BPE tokenizer."""
    if vocab not in VOCAB_SIZES:
        raise typer.BadParameter(f"expected one of {', '.join(VOCAB_SIZES)}, got {vocab!r}")
    start = time.perf_counter()
    paths = build_test_models(out, seed=seed, vocab=vocab)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    typer.echo(f"gguf: {paths['gguf']} ({paths['gguf'].stat().st_size:,} bytes)")
    typer.echo(f"hf:   {paths['hf']}")
    typer.echo(f"built in {elapsed:.2f} s (vocab {vocab}, seed {seed})")
    from engine.backends.preflight import preflight_gguf

    try:
        report = preflight_gguf(str(paths["gguf"]))
    except ImportError:
        typer.echo("preflight skipped: llama-cpp-python is not installed")
        return
    note = f"; {report.note}" if report.note else ""
    decoded = f"decoded {report.n_prompt_tokens} tokens in {report.seconds:.2f} s"
    typer.echo(f"preflight: llama.cpp loaded it and {decoded}{note}")
