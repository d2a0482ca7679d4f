"""Tests for engine.testmodel: deterministic tiny models that llama.cpp and HF tokenizers load."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import numpy as np
import pytest
import typer
from jinja2.sandbox import ImmutableSandboxedEnvironment
from typer.testing import CliRunner

from engine.testmodel import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    build_test_models,
    build_tokenizer,
    hf_shape,
)
from engine.testmodel.cli import make_test_model
from engine.testmodel.hf_writer import HF_FILES, read_safetensors_header
from engine.testmodel.tokenizer import CONTROL, NORMAL, USER_DEFINED, bytes_to_unicode
from engine.testmodel.weights import random_llama_weights

SAMPLES = [
    "Hello, thank you for contacting customer support!",
    "<|im_start|>user\nCancel #W2378156, please.<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
    '{"name": "cancel_reservation", "arguments": {"reservation_id": "ZFA04Y"}}\n'
    "</tool_call><|im_end|>",
    "  spaces   and\ttabs\n\n\nnewlines  ",
    "Ünïcödé — “quotes” 日本語 🙂",
    "it's we'll they've I'M 12345 3.14159 $1,000,000 a_b__c",
    '<tool_response>\n{"ok": true}\n</tool_response>x<|endoftext|>',
    "<|im_start",
]


def _need(module: str) -> ModuleType:
    """Import an optional piece; skip when it is absent, except in CI where that is a failure."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _need("gguf")
    return build_test_models(tmp_path_factory.mktemp("seed0"), seed=0, vocab="small")


@pytest.fixture(scope="module")
def llm(small: dict[str, Path]) -> Any:
    llama_cpp = _need("llama_cpp")
    return llama_cpp.Llama(model_path=str(small["gguf"]), n_ctx=512, n_threads=1, seed=7, verbose=False)


def _files(paths: dict[str, Path]) -> dict[str, bytes]:
    found = {paths["gguf"].name: paths["gguf"].read_bytes()}
    for name in HF_FILES:
        found[name] = (paths["hf"] / name).read_bytes()
    return found


@pytest.mark.parametrize("seed", [0, 3])
def test_same_seed_gives_same_bytes(tmp_path: Path, small: dict[str, Path], seed: int) -> None:
    first = _files(build_test_models(tmp_path / "a", seed=seed))
    again = _files(build_test_models(tmp_path / "b", seed=seed))
    assert first == again
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "writ-test-small-hf",
        "writ-test-small.gguf",
    ]
    assert (first == _files(small)) is (seed == 0)


def test_different_seed_changes_weights_not_tokenizer(tmp_path: Path, small: dict[str, Path]) -> None:
    other = _files(build_test_models(tmp_path, seed=1))
    base = _files(small)
    assert other["writ-test-small.gguf"] != base["writ-test-small.gguf"]
    assert other["model.safetensors"] != base["model.safetensors"]
    assert other["tokenizer.json"] == base["tokenizer.json"]


def test_tokenizer_layout() -> None:
    tok = build_tokenizer("small")
    assert len(tok.tokens) == 1536 == len(set(tok.tokens)) == len(tok.token_types)
    assert tok.tokens[:256] == bytes_to_unicode()
    assert tok.tokens[-len(SPECIAL_TOKENS) :] == tuple(text for text, _ in SPECIAL_TOKENS)
    assert tok.token_types[-7:] == (CONTROL,) * 3 + (USER_DEFINED,) * 4
    assert set(tok.token_types[:-7]) == {NORMAL}
    known = set(tok.tokens)
    for merge in tok.merges:
        left, right = merge.split(" ")
        assert left in known and right in known and left + right in known
    assert tok.eos_id == tok.tokens.index("<|im_end|>") and tok.pad_id == 1529


def test_32k_tokenizer_is_full_and_consistent() -> None:
    tok = build_tokenizer("32k")
    assert len(tok.tokens) == 32000 == len(set(tok.tokens))
    assert len(tok.merges) >= 32000 - 256 - len(SPECIAL_TOKENS)
    assert "Ġthe" in tok.tokens and '":' in tok.tokens


def test_32k_gguf_and_hf_tokenize_alike(tmp_path: Path) -> None:
    llama_cpp = _need("llama_cpp")
    tokenizers = _need("tokenizers")
    paths = build_test_models(tmp_path, vocab="32k")
    assert 17_000_000 < paths["gguf"].stat().st_size < 18_500_000
    llm = llama_cpp.Llama(model_path=str(paths["gguf"]), vocab_only=True, verbose=False)
    hf = tokenizers.Tokenizer.from_file(str(paths["hf"] / "tokenizer.json"))
    assert llm.n_vocab() == 32000 == hf.get_vocab_size(with_added_tokens=True)
    for text in SAMPLES:
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert ids == hf.encode(text, add_special_tokens=False).ids, text
        assert llm.detokenize(ids, special=True).decode() == text


def test_bad_arguments_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^unknown vocab 'huge': expected one of small, 32k$"):
        build_test_models(tmp_path, vocab="huge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer, got -1$"):
        build_test_models(tmp_path, seed=-1)
    with pytest.raises(ValueError, match=r"^formats must be a non-empty subset of gguf, hf; got \['onnx'\]$"):
        build_test_models(tmp_path, formats=("onnx",))
    assert list(tmp_path.iterdir()) == []


def test_gguf_metadata_and_tokenizer_round_trip(llm: Any) -> None:
    meta = llm.metadata
    assert meta["general.architecture"] == "llama"
    assert (meta["tokenizer.ggml.model"], meta["tokenizer.ggml.pre"]) == ("gpt2", "gpt-2")
    assert meta["tokenizer.ggml.add_bos_token"] == "false"
    assert meta["tokenizer.chat_template"] == CHAT_TEMPLATE
    assert llm.n_vocab() == 1536 and llm.token_eos() == 1531
    for text in SAMPLES:
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert llm.detokenize(ids, special=True).decode() == text
    ids = llm.tokenize(b"<|im_start|><tool_call></tool_call>", add_bos=False, special=True)
    assert ids == [1530, 1532, 1533]
    # Control tokens are hidden unless asked for; the tool-call tags are plain text.
    assert llm.detokenize(ids).decode() == "<tool_call></tool_call>"
    plain = llm.tokenize(b"<|im_start|><tool_call>", add_bos=False, special=False)
    assert plain[-1] == 1532 and len(plain) > 2


def test_gguf_generates_reproducibly(llm: Any) -> None:
    prompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    runs = []
    for _ in range(2):
        llm.reset()
        out = llm.create_completion(prompt, max_tokens=16, temperature=1.0, seed=11)
        runs.append(out["choices"][0]["text"])
        assert out["usage"]["completion_tokens"] == 16 or out["choices"][0]["finish_reason"] == "stop"
    assert runs[0] == runs[1] and runs[0]


def test_hf_tokenizer_matches_gguf(llm: Any, small: dict[str, Path]) -> None:
    tokenizers = _need("tokenizers")
    hf = tokenizers.Tokenizer.from_file(str(small["hf"] / "tokenizer.json"))
    assert hf.get_vocab_size(with_added_tokens=True) == 1536
    for text in SAMPLES:
        ids = hf.encode(text, add_special_tokens=False).ids
        assert ids == llm.tokenize(text.encode(), add_bos=False, special=True), text
        assert hf.decode(ids, skip_special_tokens=False) == text
    ids = hf.encode("<|im_start|>a<tool_call><|im_end|>", add_special_tokens=False).ids
    assert hf.decode(ids, skip_special_tokens=True) == "a<tool_call>"


def test_hf_directory_is_consistent(small: dict[str, Path]) -> None:
    hf_dir = small["hf"]
    config = json.loads((hf_dir / "config.json").read_text())
    shape = hf_shape(1536)
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] * config["num_attention_heads"] == config["hidden_size"] == 128
    assert config["head_dim"] >= 32 and config["vocab_size"] == 1536
    assert (config["eos_token_id"], config["torch_dtype"]) == (1531, "bfloat16")
    tok_config = json.loads((hf_dir / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == CHAT_TEMPLATE and tok_config["eos_token"] == "<|im_end|>"
    assert tok_config["added_tokens_decoder"]["1531"]["special"] is True
    assert tok_config["added_tokens_decoder"]["1532"]["content"] == "<tool_call>"
    header = read_safetensors_header(hf_dir / "model.safetensors")
    expected = random_llama_weights(shape, seed=0, stream=1)
    assert header["__metadata__"] == {"format": "pt"}
    assert {k: v["shape"] for k, v in header.items() if k != "__metadata__"} == {
        k: list(v.shape) for k, v in expected.items()
    }
    raw = (hf_dir / "model.safetensors").read_bytes()
    start = 8 + int.from_bytes(raw[:8], "little")
    lo, hi = header["model.layers.1.mlp.down_proj.weight"]["data_offsets"]
    bf16 = np.frombuffer(raw[start + lo : start + hi], dtype="<u2").astype(np.uint32) << 16
    want = expected["model.layers.1.mlp.down_proj.weight"].ravel()
    assert np.allclose(bf16.view(np.float32), want, rtol=2**-8, atol=0)


def _conversation() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_user",
                "description": "Look up a user <by id> & more.",
                "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "system", "content": "Follow the policy."},
        {"role": "user", "content": "Find me."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_user", "arguments": '{"user_id": "u1"}'},
                },
                {
                    "type": "function",
                    "function": {"name": "get_user", "arguments": {"user_id": "u2"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"name": "Mia"}'},
        {"role": "assistant", "content": "Found you, Mia."},
    ]
    return messages, tools


EXPECTED_RENDER = (
    "<|im_start|>system\nFollow the policy.\n\n# Tools\n\nYou may call one or more of the "
    "functions described below, as JSON signatures inside <tools></tools> tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "get_user", "description": "Look up a user <by id> '
    '& more.", "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}}}}\n'
    "</tools>\n\nTo call a function, answer with a JSON object holding its name and its arguments "
    "inside <tool_call></tool_call> tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <arguments-json-object>}\n</tool_call><|im_end|>\n'
    "<|im_start|>user\nFind me.<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "get_user", "arguments": {"user_id": "u1"}}\n'
    '</tool_call>\n<tool_call>\n{"name": "get_user", "arguments": {"user_id": "u2"}}\n'
    "</tool_call><|im_end|>\n"
    '<|im_start|>tool\n<tool_response>\n{"name": "Mia"}\n</tool_response><|im_end|>\n'
    "<|im_start|>assistant\nFound you, Mia.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def _transformers_like_template() -> jinja2.Template:
    """Jinja set up as transformers renders chat templates: tojson keeps key order, no escaping."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    return env.from_string(CHAT_TEMPLATE)


def test_chat_template_renders_tools_and_tool_calls() -> None:
    messages, tools = _conversation()
    template = _transformers_like_template()
    rendered = template.render(messages=messages, tools=tools, add_generation_prompt=True)
    assert rendered == EXPECTED_RENDER
    plain = template.render(messages=messages[1:2], add_generation_prompt=False)
    assert plain == "<|im_start|>user\nFind me.<|im_end|>\n"
    # The generation prompt is a prefix of the rendered assistant turn.
    turn = template.render(messages=messages[4:5])
    prompt = template.render(messages=[], add_generation_prompt=True)
    assert turn.startswith(prompt) and prompt == "<|im_start|>assistant\n"
    # Plain Jinja2's own tojson sorts keys and escapes HTML: the reason for the setup above.
    sorted_render = jinja2.Environment().from_string(CHAT_TEMPLATE).render(messages=[], tools=tools)
    assert '{"function": {"description": "Look up a user \\u003cby id\\u003e' in sorted_render


def test_llama_cpp_formatter_uses_the_gguf_template(llm: Any) -> None:
    formats = _need("llama_cpp.llama_chat_format")
    messages, tools = _conversation()
    formatter = formats.Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token=""
    )
    result = formatter(messages=messages, tools=tools)
    assert result.prompt == EXPECTED_RENDER
    ids = llm.tokenize(result.prompt.encode(), add_bos=False, special=True)
    # 2 tool calls + 2 mentions of the tags in the tools preamble
    assert ids.count(1530) == 6 and ids.count(1532) == ids.count(1533) == 4


def test_cli_builds_models(tmp_path: Path) -> None:
    _need("gguf")
    app = typer.Typer()
    app.command()(make_test_model)
    runner = CliRunner()
    result = runner.invoke(app, ["--out", str(tmp_path), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert f"gguf: {tmp_path / 'writ-test-small.gguf'}" in result.output
    assert (tmp_path / "writ-test-small-hf" / "model.safetensors").is_file()
    bad = runner.invoke(app, ["--out", str(tmp_path), "--vocab", "huge"])
    assert bad.exit_code == 2 and "expected one of small, 32k, got 'huge'" in bad.output
