"""Tiny random Llama models with a real byte-level BPE tokenizer and ChatML template, for tests."""

from engine.testmodel.build import build_test_models, gguf_shape, hf_shape, test_model_paths
from engine.testmodel.chat_template import CHAT_TEMPLATE
from engine.testmodel.tokenizer import (
    EOS_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    ByteBPE,
    build_tokenizer,
)

__all__ = [
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "ByteBPE",
    "build_test_models",
    "build_tokenizer",
    "gguf_shape",
    "hf_shape",
    "test_model_paths",
]
