"""vLLM backend: every request goes to one AsyncLLM engine at once (continuous batching, prefix cache).

Chat messages are rendered with the model's own chat template (through ``prompting.ToolPrompt``,
which writes the tool list, past calls and tool results itself where the template does not) and
sent as token ids, so the prompt the model sees is exactly the rendered text. Each
request runs as its own asyncio task; the engine schedules them together and reuses the KV cache
of any prefix it has already computed (the shared system prompt and tool list, earlier turns of
the same conversation), which comes back as ``Completion.cached_tokens``. Constraints go to vLLM's
structured-output backend chosen per engine: lark grammars need ``guidance`` (llguidance), JSON
schemas and regexes work on every backend. vLLM itself is imported only when an engine starts.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import os
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from engine.backends.base import (
    Backend,
    BackendConfigError,
    Completion,
    Constraint,
    Request,
    ToolCall,
    one_line,
    parse_tool_calls,
)
from engine.backends.prompting import ToolPrompt
from grammars import ToolCallFormat, agent_turn_grammar
from grammars import get_format as get_tool_format

__all__ = ["VLLMBackend", "VLLMConfig", "make_vllm_backend"]

_INSTALL = "pip install 'writ[vllm]' on a CUDA machine; on the CPU build the lane venv with .ci/vllm_env.sh"

# lark grammars need guidance (llguidance); "auto" sends them there too
_SO_BACKENDS = ("guidance", "xgrammar", "outlines", "auto")


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(f"the vllm backend needs vLLM ({exc}): {_INSTALL}") from exc
    return vllm


def _template_source(tokenizer: Any) -> str | None:
    """The tokenizer's chat template text; of named templates, the tool-use one (else the default)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("tool_use") or template.get("default")
    return template if isinstance(template, str) else None


class VLLMConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Options of the vllm backend; the parallel and memory settings go to vLLM unchanged."""

    model: str
    max_num_seqs: int = 256
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    structured_outputs_backend: str = "guidance"
    dtype: str = "auto"
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    enable_chunked_prefill: bool | None = None
    seed: int = 0
    tool_format: str | None = None

    def check(self) -> VLLMConfig:
        """Raise one ``ValueError`` line for a value vLLM would reject late or obscurely."""
        for name in ("max_num_seqs", "tensor_parallel_size", "data_parallel_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ValueError(f"max_model_len must be a positive integer, got {self.max_model_len}")
        if self.structured_outputs_backend not in _SO_BACKENDS:
            raise ValueError(
                f"structured_outputs_backend must be one of {', '.join(_SO_BACKENDS)}; "
                f"got {self.structured_outputs_backend!r}"
            )
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if not os.path.isfile(os.path.join(self.model, "config.json")):
            raise ValueError(
                f"model {self.model!r} is not a local Hugging Face model directory "
                "(no config.json); nothing is downloaded at run time"
            )
        if self.tool_format is not None:
            get_tool_format(self.tool_format)
        return self


def make_vllm_backend(options: dict[str, Any]) -> VLLMBackend:
    """The backend for a config table's options (everything but ``backend``); one-line errors."""
    try:
        config = msgspec.convert(options, VLLMConfig, strict=True).check()
    except (msgspec.ValidationError, ValueError) as exc:
        raise BackendConfigError(f"vllm backend: {one_line(exc)}") from None
    return VLLMBackend(config)


class VLLMBackend(Backend):
    """One AsyncLLM engine; see the module docstring for how requests flow through it.

    Call ``generate`` from one event loop (the engine's output handler lives on the first loop
    that used it). On the CPU vLLM starts its processes with ``spawn``, so a script that builds
    this backend needs the ``if __name__ == "__main__":`` guard.
    """

    name = "vllm"

    def __init__(self, config: VLLMConfig) -> None:
        self.config = config
        self.model = config.model
        self.seed = config.seed
        self._ids = itertools.count()
        self._closed = False
        self.start_s = 0.0
        # 1) Start the engine (vLLM spawns its engine-core and worker processes here).
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _import_vllm()
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        chunked = config.enable_chunked_prefill
        if chunked is None and current_platform.is_cpu():
            # vLLM's CPU build crashes the engine ("CPU Generator does not use offset") when a
            # request with its own seed has its prefill split across steps; keep prompts whole.
            chunked = False
        started = time.perf_counter()
        args = AsyncEngineArgs(
            model=config.model,
            max_num_seqs=config.max_num_seqs,
            tensor_parallel_size=config.tensor_parallel_size,
            data_parallel_size=config.data_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            structured_outputs_config={
                "backend": config.structured_outputs_backend,
                # compact JSON for json_schema constraints (lark grammars carry their own)
                "disable_any_whitespace": config.structured_outputs_backend
                in ("guidance", "xgrammar"),
            },
            dtype=config.dtype,
            max_model_len=config.max_model_len,
            enable_prefix_caching=config.enable_prefix_caching,
            enforce_eager=config.enforce_eager,
            enable_chunked_prefill=chunked,
            seed=config.seed,
            disable_log_stats=True,
        )
        self._engine: Any = AsyncLLM.from_engine_args(args)
        self.start_s = time.perf_counter() - started
        # 2) The model's tokenizer renders chat messages with its own template.
        self.tokenizer = AutoTokenizer.from_pretrained(config.model, local_files_only=True)
        #: renders requests' messages; its notes (what writ adds to the prompt) go to the run log
        self.prompting = ToolPrompt.for_model(
            _template_source(self.tokenizer),
            config.tool_format,
            bos_token=self.tokenizer.bos_token or "",
            eos_token=self.tokenizer.eos_token or "",
        )
        self.notes = tuple(self.prompting.notes)
        self.max_model_len = int(self._engine.model_config.max_model_len)
        #: tokens per KV-cache block: prefix-cache hits come in whole blocks
        self.block_size = int(self._engine.vllm_config.cache_config.block_size)

    # -- public helpers -----------------------------------------------------------------------

    @property
    def tool_format(self) -> ToolCallFormat:
        """The model's tool-call format: from the config, else read off the chat template, else Hermes."""
        return self.prompting.fmt

    @functools.cached_property
    def tag_tokens(self) -> bool:
        """Whether the format's tags (``<tool_call>``...) are special tokens to llguidance.

        llguidance counts every added token of a Hugging Face tokenizer as special, even one
        marked ``"special": false`` (Qwen's ``<tool_call>``). A lark grammar that spells such a
        tag out as text breaks: the token mask offers the tag's token, then the matcher rejects
        it and vLLM ends the request. So the grammar must name the tag as a token instead.
        """
        tags = self.tool_format.tags
        ids = [self.tokenizer.encode(tag, add_special_tokens=False) for tag in tags]
        if not tags or any(len(i) != 1 for i in ids):
            return False
        import llguidance.hf

        lltok = llguidance.hf.from_tokenizer(self.tokenizer, len(self.tokenizer))
        return all(lltok.is_special_token(i[0]) for i in ids)

    def agent_turn_constraint(
        self, tools: list[dict[str, Any]], tool_choice: str = "auto"
    ) -> Constraint:
        """The agent-turn constraint for ``tools`` in this model's format and vocabulary;
        ``tool_choice="required"`` leaves out the text branch."""
        g = agent_turn_grammar(
            tools, self.tool_format, tag_tokens=self.tag_tokens, tool_choice=tool_choice
        )
        return Constraint(kind="lark", spec=g.lark, key=g.key)

    def render(self, request: Request) -> list[int]:
        """The prompt token ids of ``request``; raises ``ValueError`` with one line."""
        if (request.messages is None) == (request.prompt is None):
            raise ValueError("a request needs exactly one of messages or prompt")
        if request.messages is not None:
            try:
                text = self.prompting.render(request.messages, request.tools)
            except Exception as exc:
                raise ValueError(f"chat template failed: {type(exc).__name__}: {exc}") from None
        else:
            text = request.prompt or ""
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        if not ids:
            raise ValueError("the prompt is empty")
        return ids

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        if self._closed:
            raise RuntimeError("the vllm backend is closed")
        tasks = [asyncio.create_task(self._complete(r)) for r in requests]
        return list(await asyncio.gather(*tasks))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        engine, self._engine = self._engine, None
        engine.shutdown()
        del engine  # let AsyncLLM.__del__ run now, not during interpreter teardown

    # -- one request --------------------------------------------------------------------------

    def _sampling(self, request: Request) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        s = request.sampling
        seed = request.seed
        if seed is None:  # stable per request id, like the llamacpp backend
            digest = hashlib.sha256(f"{self.seed}:{request.request_id}".encode()).digest()
            seed = int.from_bytes(digest[:8], "little") >> 1
        structured = None
        c = request.constraint
        if c is not None:
            if c.kind == "lark":
                if self.config.structured_outputs_backend not in ("guidance", "auto"):
                    raise ValueError(
                        f"constraint {c.key!r} is a lark grammar, which needs "
                        "structured_outputs_backend = 'guidance' (this engine uses "
                        f"{self.config.structured_outputs_backend!r})"
                    )
                structured = StructuredOutputsParams(grammar=c.spec)
            elif c.kind == "json_schema":
                structured = StructuredOutputsParams(json=c.spec)
            else:
                structured = StructuredOutputsParams(regex=c.spec)
        return SamplingParams(
            n=1,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            stop=list(s.stop) or None,
            seed=seed,
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
            structured_outputs=structured,
            output_kind=RequestOutputKind.FINAL_ONLY,  # one output per request, not per token
        )

    async def _engine_input(self, ids: list[int]) -> Any:
        """Token ids as the engine's rendered input (vLLM >= 0.32), else as a TokensPrompt."""
        prompt = {"prompt_token_ids": ids}
        render = getattr(getattr(self._engine, "renderer", None), "render_cmpl_async", None)
        if render is None:
            return prompt
        (rendered,) = await render([prompt])
        return rendered

    async def _complete(self, request: Request) -> Completion:
        from vllm.v1.engine.exceptions import EngineDeadError

        started = time.perf_counter()

        def failed(message: str, prompt_tokens: int = 0) -> Completion:
            return Completion(
                request_id=request.request_id,
                text="",
                finish_reason="error",
                prompt_tokens=prompt_tokens,
                latency_s=time.perf_counter() - started,
                error=one_line(message),
            )

        # 1) Render the prompt and the sampling parameters.
        try:
            ids = self.render(request)
        except ValueError as exc:
            return failed(str(exc))
        try:
            params = self._sampling(request)
        except Exception as exc:  # vLLM's own checks raise VLLMValidationError, not ValueError
            return failed(f"bad sampling parameters: {exc}", len(ids))
        if len(ids) + request.sampling.max_tokens > self.max_model_len:
            return failed(
                f"prompt ({len(ids)} tokens) + max_tokens ({request.sampling.max_tokens}) "
                f"exceeds max_model_len ({self.max_model_len})",
                len(ids),
            )
        # 2) Stream it through the engine; the last output holds the whole completion.
        final = None
        try:
            engine_input = await self._engine_input(ids)
            internal_id = f"{request.request_id}#{next(self._ids)}"
            async for out in self._engine.generate(engine_input, params, internal_id):
                final = out
        except EngineDeadError as exc:
            raise RuntimeError(f"the vLLM engine died: {one_line(exc)}") from exc
        except Exception as exc:  # validation of the request or its grammar, or one bad step
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            return failed(f"vLLM refused the request: {type(cause).__name__}: {cause}", len(ids))
        if final is None or not final.outputs:
            return failed("vLLM returned no output", len(ids))
        # 3) Read the completion and any tool calls out of it.
        out = final.outputs[0]
        text = out.text
        reason = out.finish_reason or "stop"
        error = None
        calls: list[ToolCall] = []
        if reason in ("error", "abort"):  # e.g. the grammar rejected a sampled token
            error = f"vLLM ended the request ({reason}) after {len(out.token_ids)} tokens"
        elif request.tools:
            calls, error = parse_tool_calls(self.tool_format, text, reason, request.sampling.max_tokens)
        return Completion(
            request_id=request.request_id,
            text=text,
            tool_calls=calls,
            finish_reason=reason,
            prompt_tokens=len(final.prompt_token_ids or ids),
            cached_tokens=int(final.num_cached_tokens or 0),
            completion_tokens=len(out.token_ids),
            latency_s=time.perf_counter() - started,
            error=error,
        )
