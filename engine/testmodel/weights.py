"""Random Llama weights for a given shape, drawn from a seed; the same seed gives the same bytes.

Tensors are float32 numpy arrays shaped (out_features, in_features), named in Hugging Face style;
the writers rename and convert them.
"""

from __future__ import annotations

import msgspec
import numpy as np

__all__ = ["LlamaShape", "random_llama_weights"]


class LlamaShape(msgspec.Struct, kw_only=True, frozen=True):
    """The dimensions of a Llama decoder."""

    vocab_size: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ff: int
    context: int = 16384
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def random_llama_weights(shape: LlamaShape, seed: int, stream: int) -> dict[str, np.ndarray]:
    """Draw every tensor of a Llama model from ``N(0, 0.02)`` (norms are ones), in a fixed order.

    ``stream`` separates the draws of different models built from one seed.
    """
    rng = np.random.default_rng([seed, stream])
    h, kv = shape.hidden, shape.kv_heads * shape.head_dim

    def normal(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.02)).astype(np.float32)

    tensors: dict[str, np.ndarray] = {"model.embed_tokens.weight": normal(shape.vocab_size, h)}
    for layer in range(shape.layers):
        pre = f"model.layers.{layer}."
        tensors[pre + "input_layernorm.weight"] = np.ones(h, dtype=np.float32)
        tensors[pre + "self_attn.q_proj.weight"] = normal(h, h)
        tensors[pre + "self_attn.k_proj.weight"] = normal(kv, h)
        tensors[pre + "self_attn.v_proj.weight"] = normal(kv, h)
        tensors[pre + "self_attn.o_proj.weight"] = normal(h, h)
        tensors[pre + "post_attention_layernorm.weight"] = np.ones(h, dtype=np.float32)
        tensors[pre + "mlp.gate_proj.weight"] = normal(shape.ff, h)
        tensors[pre + "mlp.up_proj.weight"] = normal(shape.ff, h)
        tensors[pre + "mlp.down_proj.weight"] = normal(h, shape.ff)
    tensors["model.norm.weight"] = np.ones(h, dtype=np.float32)
    tensors["lm_head.weight"] = normal(shape.vocab_size, h)
    return tensors
