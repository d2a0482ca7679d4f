"""Build the tiny random test models (one GGUF file, one Hugging Face directory) into a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from engine.testmodel.gguf_writer import write_gguf
from engine.testmodel.hf_writer import write_hf_dir
from engine.testmodel.tokenizer import VOCAB_SIZES, build_tokenizer
from engine.testmodel.weights import LlamaShape

__all__ = ["build_test_models", "gguf_shape", "hf_shape", "test_model_paths"]


def gguf_shape(vocab_size: int) -> LlamaShape:
    """The llama.cpp model: 2 layers, hidden 64, 4 heads (dim 16), 2 KV heads, ff 192."""
    return LlamaShape(vocab_size=vocab_size, hidden=64, layers=2, heads=4, kv_heads=2, ff=192)


def hf_shape(vocab_size: int) -> LlamaShape:
    """The vLLM model: 2 layers, hidden 128, 4 heads of dim 32 (vLLM's CPU kernels need >= 32)."""
    return LlamaShape(vocab_size=vocab_size, hidden=128, layers=2, heads=4, kv_heads=2, ff=384)


def test_model_paths(out_dir: Path | str, vocab: str = "small") -> dict[str, Path]:
    """Where ``build_test_models`` puts its outputs: {"gguf": file, "hf": directory}."""
    out = Path(out_dir)
    return {"gguf": out / f"writ-test-{vocab}.gguf", "hf": out / f"writ-test-{vocab}-hf"}


def build_test_models(
    out_dir: Path | str,
    seed: int = 0,
    vocab: Literal["small", "32k"] = "small",
    *,
    hf_dtype: Literal["bfloat16", "float32"] = "bfloat16",
    formats: tuple[str, ...] = ("gguf", "hf"),
) -> dict[str, Path]:
    """Write the test models for ``vocab`` into ``out_dir``; same seed, same bytes.

    Returns ``test_model_paths(out_dir, vocab)`` restricted to ``formats`` ("gguf": the llama.cpp
    file, needs the gguf package; "hf": the Hugging Face directory). Both models share one tokenizer
    and chat template; their random weights differ (different shapes).
    """
    if vocab not in VOCAB_SIZES:
        raise ValueError(f"unknown vocab {vocab!r}: expected one of {', '.join(VOCAB_SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    unknown = sorted(set(formats) - {"gguf", "hf"})
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of gguf, hf; got {list(formats)!r}")
    paths = {k: v for k, v in test_model_paths(out_dir, vocab).items() if k in formats}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab)
    if "gguf" in paths:
        write_gguf(paths["gguf"], tok, gguf_shape(len(tok.tokens)), seed, f"writ-test-{vocab}")
    if "hf" in paths:
        write_hf_dir(paths["hf"], tok, hf_shape(len(tok.tokens)), seed, hf_dtype)
    return paths
