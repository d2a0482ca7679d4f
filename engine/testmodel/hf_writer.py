"""Write a random LlamaForCausalLM with the test tokenizer as a Hugging Face directory (for vLLM).

Files: config.json, generation_config.json, model.safetensors (written by hand: no torch needed),
tokenizer.json, tokenizer_config.json, special_tokens_map.json. Each file is replaced atomically
(``engine.files.write_atomic``: a temporary file of its own), so several processes may write the
same folder at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.files import write_atomic
from engine.testmodel.tokenizer import CONTROL, EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, ByteBPE
from engine.testmodel.weights import LlamaShape, random_llama_weights

__all__ = ["HF_FILES", "read_safetensors_header", "write_hf_dir", "write_safetensors"]

HF_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
_DTYPES = {"bfloat16": "BF16", "float32": "F32"}


def _to_bf16(array: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (nearest even), returned as the raw uint16 bit patterns."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype(np.uint16)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str = "bfloat16") -> None:
    """Write tensors in the safetensors format: u64 LE header size, JSON header, raw LE data."""
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {', '.join(_DTYPES)}")
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = tensors[name]
        raw = (_to_bf16(array) if dtype == "bfloat16" else array.astype("<f4")).tobytes()
        header[name] = {
            "dtype": _DTYPES[dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as the reference writer does
    write_atomic(path, [len(text).to_bytes(8, "little"), text, *blobs])


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Read and check a safetensors header: contiguous offsets, sizes match shapes and file."""
    sizes = {"BF16": 2, "F16": 2, "F32": 4}
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        f.seek(0, os.SEEK_END)
        total = f.tell()
    end = 0
    for name, info in sorted(
        ((k, v) for k, v in header.items() if k != "__metadata__"),
        key=lambda kv: kv[1]["data_offsets"][0],
    ):
        start, stop = info["data_offsets"]
        expected = int(np.prod(info["shape"], dtype=np.int64)) * sizes[info["dtype"]]
        if start != end or stop - start != expected:
            raise ValueError(f"{path}: tensor {name} has bad data_offsets {info['data_offsets']}")
        end = stop
    if 8 + n + end != total:
        raise ValueError(f"{path}: file is {total} bytes, header describes {8 + n + end}")
    return header


def _config(tok: ByteBPE, shape: LlamaShape, dtype: str) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden,
        "intermediate_size": shape.ff,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": shape.context,
        "rms_norm_eps": shape.rms_eps,
        "rope_theta": shape.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "bos_token_id": tok.pad_id,
        "eos_token_id": tok.eos_id,
        "pad_token_id": tok.pad_id,
        "torch_dtype": dtype,
        "use_cache": True,
    }


def _tokenizer_config(tok: ByteBPE, shape: LlamaShape) -> dict[str, Any]:
    first = len(tok.tokens) - len(SPECIAL_TOKENS)
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(first + i): {
                "content": text,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": kind == CONTROL,
            }
            for i, (text, kind) in enumerate(SPECIAL_TOKENS)
        },
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": tok.chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS_TOKEN,
        "model_max_length": shape.context,
        "pad_token": PAD_TOKEN,
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }


def write_hf_dir(
    out: Path,
    tok: ByteBPE,
    shape: LlamaShape,
    seed: int,
    dtype: Literal["bfloat16", "float32"] = "bfloat16",
) -> Path:
    """Write the model directory ``out`` (created if missing); return ``out``."""
    if shape.vocab_size != len(tok.tokens):
        raise ValueError(f"shape has vocab {shape.vocab_size}, tokenizer has {len(tok.tokens)}")
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", random_llama_weights(shape, seed, stream=1), dtype)
    write_atomic(out / "config.json", _json_bytes(_config(tok, shape, dtype)))
    generation = {
        "bos_token_id": tok.pad_id,
        "eos_token_id": [tok.eos_id],
        "pad_token_id": tok.pad_id,
    }
    write_atomic(out / "generation_config.json", _json_bytes(generation))
    write_atomic(out / "tokenizer.json", _json_bytes(tok.hf_tokenizer_json()))
    write_atomic(out / "tokenizer_config.json", _json_bytes(_tokenizer_config(tok, shape)))
    specials = {
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
    }
    write_atomic(out / "special_tokens_map.json", _json_bytes(specials))
    return out
