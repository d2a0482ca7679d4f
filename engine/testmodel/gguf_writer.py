"""Write a random Llama model with the test tokenizer as one GGUF file for llama.cpp (float32)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from engine.files import replacing
from engine.testmodel.tokenizer import ByteBPE
from engine.testmodel.weights import LlamaShape, random_llama_weights

__all__ = ["gguf_tensor_name", "write_gguf"]

_LAYER_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)\.weight")


def gguf_tensor_name(hf_name: str) -> str:
    """Map a Hugging Face Llama tensor name to llama.cpp's GGUF name."""
    if hf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[hf_name]
    match = _LAYER.fullmatch(hf_name)
    if match is None or match.group(2) not in _LAYER_NAMES:
        raise ValueError(f"no GGUF name for tensor {hf_name!r}")
    return f"blk.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}.weight"


def _import_gguf() -> ModuleType:
    try:
        import gguf
    except ImportError as exc:
        raise ImportError("writing a GGUF test model needs the gguf package: pip install 'gguf>=0.10'") from exc
    return gguf


def write_gguf(path: Path, tok: ByteBPE, shape: LlamaShape, seed: int, name: str) -> Path:
    """Write the model to ``path`` (via a temporary file of its own, replaced atomically); return ``path``."""
    gguf = _import_gguf()
    if shape.vocab_size != len(tok.tokens):
        raise ValueError(f"shape has vocab {shape.vocab_size}, tokenizer has {len(tok.tokens)}")
    with replacing(path) as tmp:
        _write(gguf, tmp, tok, shape, seed, name)
    return path


def _write(gguf: ModuleType, tmp: Path, tok: ByteBPE, shape: LlamaShape, seed: int, name: str) -> None:
    """The model as GGUF bytes in the file ``tmp``."""
    writer = gguf.GGUFWriter(tmp, "llama")
    # 1) model metadata
    writer.add_name(name)
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.ff)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_vocab_size(shape.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    # 2) tokenizer: byte-level BPE, GPT-2 pre-tokenizer, ChatML
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(list(tok.tokens))
    writer.add_token_types(list(tok.token_types))
    writer.add_token_merges(list(tok.merges))
    writer.add_bos_token_id(tok.pad_id)
    writer.add_eos_token_id(tok.eos_id)
    writer.add_pad_token_id(tok.pad_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(tok.chat_template)
    # 3) tensors, in a fixed order
    for hf_name, array in random_llama_weights(shape, seed, stream=0).items():
        writer.add_tensor(gguf_tensor_name(hf_name), array)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
