"""llama.cpp backend: conversations decoded together as parallel sequences, llguidance-constrained.

A worker thread owns the model. Requests from any number of ``generate`` calls join one queue;
each takes a free sequence slot and every step decodes one token of every live sequence in a
single ``llama_decode`` batch. Slot choice keeps prompt caches alive across turns and roles: a
request goes to the slot that already holds its own earlier turn (it loses at most the
re-rendered tail), else to an empty slot, else to the least recently used one; a longer prefix
cached in another slot (a shared system prompt) is copied over instead of decoded again. Give
each live conversation two slots (agent and user) and neither role evicts the other's cache.
Constraints are llguidance grammars (lark / JSON schema / regex) compiled once per
``Constraint.key``; each sequence gets its own matcher, and the token masks of all sequences are
computed in parallel while the batch decodes. Prompts with tools go through
``engine.backends.prompting``, so a template that cannot show tools still gets a tool list in
the same call syntax the grammar enforces.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.backends.base import (
    Backend,
    Completion,
    Constraint,
    Request,
    ToolCall,
    parse_tool_calls,
)
from engine.backends.llamacpp_native import LlamaNative, free_cores, import_llguidance
from engine.backends.preflight import EXTRA_BUFTS_NOTE
from engine.backends.prompting import ToolPrompt
from engine.backends.sampling import allowed_mask, request_rng, sample_token
from grammars import ToolCallFormat, agent_turn_grammar

__all__ = ["LlamaCppBackend"]


@dataclass(eq=False)
class _Job:
    """One request in flight."""

    request: Request
    future: asyncio.Future[Completion]
    loop: asyncio.AbstractEventLoop
    submitted: float
    prompt: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet decoded
    out: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    cached: int = 0
    n_past: int = 0
    slot: int = -1
    rng: np.random.Generator | None = None
    matcher: Any = None

    @property
    def need(self) -> int:
        return len(self.prompt) + self.request.sampling.max_tokens


@dataclass(eq=False)
class _Slot:
    seq: int
    history: list[int] = field(default_factory=list)  # tokens whose KV sits in this sequence
    job: _Job | None = None
    last_used: int = 0  # admission counter when a job last took this slot (for LRU eviction)
    prompt_end: int = 0  # length of the last prompt admitted here (its generation follows)


# Wait for a prompt being prefilled in another slot when it shares this many more tokens.
_WAIT_FOR_PREFIX = 64
# A slot "holds this prompt's earlier turn" when the prompt extends the last prompt admitted there
# except for a re-rendered tail of at most this many tokens (templates rewrite closing tags).
_OWN_TAIL = 48


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _control_tokens(native: LlamaNative) -> frozenset[int]:
    """Ids of the vocabulary's control tokens (``<|im_start|>``, role headers, ...)."""
    ll = native.ll
    flag = ll.LLAMA_TOKEN_ATTR_CONTROL
    return frozenset(t for t in range(native.n_vocab) if ll.llama_vocab_get_attr(native.vocab, t) & flag)


def _threads_note(n_threads: int, configured: bool) -> str:
    """The run-log line saying how many threads llama.cpp uses and why."""
    if configured:
        return f"llama.cpp uses {n_threads} threads (n_threads in the config)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"llama.cpp uses {n_threads} threads: {cores} usable cores, 1-minute load {load:.1f} "
        "(set n_threads to override)"
    )


class LlamaCppBackend(Backend):
    """CPU inference with llama.cpp; see the module docstring for how requests are scheduled."""

    name = "llamacpp"

    def __init__(
        self,
        model: str,
        *,
        n_ctx: int = 8192,
        n_parallel: int = 8,
        n_batch: int = 512,
        n_threads: int | None = None,
        flash_attn: bool = False,
        seed: int = 0,
        tool_format: str | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.model = model
        self.seed = seed
        self.n_threads = n_threads or free_cores()
        notes = [_threads_note(self.n_threads, n_threads is not None)]
        self.native = LlamaNative(
            model, n_ctx=n_ctx, n_seq=n_parallel, n_batch=n_batch, n_threads=self.n_threads, flash_attn=flash_attn
        )
        if not self.native.extra_bufts:
            notes.append(EXTRA_BUFTS_NOTE)
        source = chat_template or self.native.chat_template
        self.prompting = ToolPrompt.for_model(
            source, tool_format, bos_token=self.native.bos_text, eos_token=self.native.eos_text
        )
        self.template = self.prompting.template
        notes += self.prompting.notes
        # Control tokens (role tags and the like) end free text: they never appear in a message.
        self._control = _control_tokens(self.native) - self.native.eog
        self.notes = tuple(notes)
        self._slots = [_Slot(seq=i) for i in range(n_parallel)]
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._waiting: deque[_Job] = deque()
        self._compiled: dict[str, Any] = {}
        self._executor: Any = None
        self._bitmask: np.ndarray | None = None
        self._mask_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writ-mask")
        self._admitted = 0
        self._closed = False
        self._dead: str | None = None  # why the worker thread stopped, if it crashed
        self._thread = threading.Thread(target=self._worker, name="writ-llamacpp", daemon=True)
        self._thread.start()

    # -- public helpers -------------------------------------------------------------------

    @property
    def tool_format(self) -> ToolCallFormat:
        """The model's tool-call format: from the config, else read off the chat template, else Hermes."""
        return self.prompting.fmt

    @functools.cached_property
    def tag_tokens(self) -> bool:
        """Whether the format's tags (``<tool_call>``...) are single special tokens here."""
        tags = self.tool_format.tags
        return bool(tags) and all(self.native.is_special_token(t) for t in tags)

    def agent_turn_constraint(self, tools: list[dict[str, Any]], tool_choice: str = "auto") -> Constraint:
        """The agent-turn constraint for ``tools`` in this model's format and vocabulary."""
        g = agent_turn_grammar(tools, self.tool_format, tag_tokens=self.tag_tokens, tool_choice=tool_choice)
        return Constraint(kind="lark", spec=g.lark, key=g.key)

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        if self._closed or self._dead:
            raise RuntimeError(self._dead or "the llamacpp backend is closed")
        loop = asyncio.get_running_loop()
        futures = []
        for request in requests:
            fut: asyncio.Future[Completion] = loop.create_future()
            self._inbox.put(_Job(request, fut, loop, time.perf_counter()))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.put(None)
        await asyncio.to_thread(self._thread.join)
        self._mask_pool.shutdown()
        self.native.close()

    # -- worker thread --------------------------------------------------------------------

    def _worker(self) -> None:
        try:
            while True:
                busy = any(s.job for s in self._slots) or self._waiting
                try:
                    item = self._inbox.get(block=not busy)
                    while True:
                        if item is None:
                            return self._fail_all("the llamacpp backend was closed")
                        self._waiting.append(item)
                        item = self._inbox.get_nowait()
                except queue.Empty:
                    pass
                self._admit()
                if any(s.job for s in self._slots):
                    self._step()
        except Exception as exc:  # a bug or a broken model: fail every request, loudly
            self._dead = f"llamacpp worker crashed: {type(exc).__name__}: {exc}"
            self._fail_all(self._dead)
            while True:  # answer whatever was queued meanwhile
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._waiting.append(item)
            self._fail_all(self._dead)
            raise

    def _fail_all(self, message: str) -> None:
        jobs = [s.job for s in self._slots if s.job] + list(self._waiting)
        self._waiting.clear()
        for job in jobs:
            failed = Completion(request_id=job.request.request_id, text="", error=message)
            self._resolve(job, failed)

    def _prepare(self, job: _Job) -> str | None:
        """Tokenize the prompt and set up sampling; returns a one-line error or ``None``."""
        r = job.request
        if (r.messages is None) == (r.prompt is None):
            return "a request needs exactly one of messages or prompt"
        if r.messages is not None:
            if self.template is None:
                return "the model has no chat template; send a prompt or set chat_template"
            try:
                text = self.prompting.render(r.messages, r.tools)
            except Exception as exc:
                return f"chat template failed: {type(exc).__name__}: {exc}"
        else:
            text = r.prompt or ""
        job.prompt = self.native.tokenize(text)
        if not job.prompt:
            return "the prompt is empty"
        if job.need > self.native.n_ctx:
            return (
                f"prompt ({len(job.prompt)} tokens) + max_tokens ({r.sampling.max_tokens}) "
                f"exceeds n_ctx ({self.native.n_ctx})"
            )
        job.rng = request_rng(r.seed, r.request_id, self.seed)
        if r.constraint is not None:
            try:
                job.matcher = self._matcher(r.constraint)
            except ValueError as exc:
                return str(exc)
        return None

    def _matcher(self, c: Constraint) -> Any:
        """A fresh matcher for ``c``, copied from the one compiled for ``c.key``."""
        proto = self._compiled.get(c.key)
        if proto is None:
            llg = import_llguidance()
            tok = self.native.lltokenizer()
            if c.kind == "lark":
                grammar = llg.LLMatcher.grammar_from_lark(c.spec)
            elif c.kind == "json_schema":
                grammar = llg.LLMatcher.grammar_from_json_schema(c.spec)
            else:
                grammar = llg.LLMatcher.grammar_from_regex(c.spec)
            proto = llg.LLMatcher(tok, grammar, log_level=0)
            if proto.is_error():
                first = proto.get_error().strip().splitlines()[0]
                raise ValueError(f"constraint {c.key!r} does not compile: {first}")
            self._compiled[c.key] = proto
            if self._executor is None:
                self._executor = llg.LLExecutor(num_threads=1)
                words = (self.native.n_vocab + 31) // 32
                self._bitmask = np.zeros((len(self._slots), words), dtype=np.int32)
        return proto.deep_copy()

    def _admit(self) -> None:
        """Move waiting jobs into free slots (see ``_choose_slot``), reusing cached prefixes."""
        while self._waiting:
            free = [s for s in self._slots if s.job is None]
            if not free:
                return
            job = self._waiting[0]
            if job.future.cancelled():
                self._waiting.popleft()
                continue
            if not job.prompt:
                error = self._prepare(job)
                if error is not None:
                    self._waiting.popleft()
                    self._resolve(job, self._completion(job, "error", error))
                    continue
            slot, own = self._choose_slot(free, job.prompt)
            # 1) The longest prefix cached anywhere: this slot's own, or another slot's to copy.
            donor, shared = None, own
            for other in self._slots:
                n = _common_prefix(other.history, job.prompt) if other is not slot else 0
                if n > shared:
                    donor, shared = other, n
            for other in self._slots:  # a prompt still prefilling will soon offer more: wait
                if other.job and other.job.pending:
                    if _common_prefix(other.job.prompt, job.prompt) >= shared + _WAIT_FOR_PREFIX:
                        return
            # 2) Take the slot: keep or share the cached prefix, prefill the rest.
            self._waiting.popleft()
            self._admitted += 1
            slot.last_used, slot.prompt_end = self._admitted, len(job.prompt)
            keep = min(shared, len(job.prompt) - 1)
            if donor is not None and keep > own:
                self.native.forget(slot.seq)
                self.native.share(donor.seq, slot.seq, keep)
                slot.history = donor.history[:keep]
            else:
                keep = min(own, len(job.prompt) - 1)
                self.native.forget(slot.seq, keep)
                slot.history = slot.history[:keep]
            slot.job = job
            job.slot, job.cached, job.n_past = slot.seq, keep, keep
            job.pending = job.prompt[keep:]

    @staticmethod
    def _choose_slot(free: list[_Slot], prompt: list[int]) -> tuple[_Slot, int]:
        """The free slot that loses the fewest cached tokens, and how many of its tokens it keeps.

        1) a slot holding this prompt's own earlier turn (the prompt extends the last prompt
        admitted there, up to a short re-rendered tail): the one keeping the most; 2) an empty
        slot; 3) the least recently used slot. A slot that only shares a common prefix with the
        prompt (another conversation's system prompt, or the other role of this one) is taken
        only as the LRU choice, so roles and conversations do not evict each other's caches.
        """
        best, best_own = None, 0
        for slot in free:
            own = _common_prefix(slot.history, prompt)
            if own and own >= slot.prompt_end - min(_OWN_TAIL, slot.prompt_end // 2) and own > best_own:
                best, best_own = slot, own
        if best is not None:
            return best, best_own
        empty = [s for s in free if not s.history]
        if empty:
            return empty[0], 0
        lru = min(free, key=lambda s: s.last_used)
        return lru, _common_prefix(lru.history, prompt)

    def _step(self) -> None:
        """One batch: a token for every generating sequence plus prompt chunks, then sampling."""
        # 1) Build the batch: generating sequences first, prompt chunks with what is left.
        for slot in self._slots:
            if slot.job is not None and slot.job.future.cancelled():
                slot.job = None  # the caller gave up on it; its cached prefix stays usable
        entries: list[tuple[int, int, int, bool]] = []
        outputs: list[tuple[_Job, int]] = []
        running = [s.job for s in self._slots if s.job]
        if not running:
            return
        for job in running:
            if not job.pending:
                outputs.append((job, len(entries)))
                entries.append((job.out[-1], job.n_past, job.slot, True))
        for job in running:
            room = self.native.n_batch - len(entries)
            if job.pending and room > 0:
                chunk = job.pending[:room]
                done = len(chunk) == len(job.pending)
                for k, token in enumerate(chunk):
                    entries.append((token, job.n_past + k, job.slot, done and k == len(chunk) - 1))
                if done:
                    outputs.append((job, len(entries) - 1))
        # 2) Token masks of the constrained sequences, computed while the batch decodes.
        constrained = [(job.matcher, row) for row, (job, _) in enumerate(outputs) if job.matcher]
        masks = None
        if constrained:
            llg_np = import_llguidance().numpy
            masks = self._mask_pool.submit(
                llg_np.fill_next_token_bitmask_par, self._executor, constrained, self._bitmask
            )
        # 3) Decode, then record what entered each sequence's KV cache.
        try:
            self.native.decode(entries)
        finally:
            if masks is not None:
                masks.result()
        for job in running:
            slot = self._slots[job.slot]
            if job.pending:
                n = min(len(job.pending), sum(1 for e in entries if e[2] == job.slot))
                slot.history.extend(job.pending[:n])
                job.pending = job.pending[n:]
                job.n_past += n
            elif job.out:
                slot.history.append(job.out[-1])
                job.n_past += 1
        # 4) Sample the next token of every sequence that produced logits.
        for row, (job, index) in enumerate(outputs):
            sampling = job.request.sampling
            allowed = None
            if job.matcher is not None and self._bitmask is not None:
                allowed = allowed_mask(self._bitmask[row], self.native.n_vocab)
            assert job.rng is not None
            try:
                token = sample_token(
                    self.native.logits(index),
                    job.rng,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    allowed=allowed,
                )
            except ValueError as exc:
                self._finish(job, "error", f"sampling failed: {exc}")
                continue
            self._accept(job, token)

    def _accept(self, job: _Job, token: int) -> None:
        """Append a sampled token and finish the job when it is done."""
        job.out.append(token)
        sampling = job.request.sampling
        if job.matcher is not None and not job.matcher.consume_token(token):
            first = (job.matcher.get_error() or "token rejected").splitlines()[0]
            return self._finish(job, "error", f"constraint rejected token {token}: {first}")
        if token in self.native.eog or (job.matcher is None and token in self._control):
            return self._finish(job, "stop")
        job.text += self.native.pieces[token]
        for stop in sampling.stop:
            cut = job.text.find(stop.encode(), max(0, len(job.text) - len(stop) - 64))
            if cut >= 0:
                del job.text[cut:]
                return self._finish(job, "stop")
        if job.matcher is not None and job.matcher.is_stopped():
            return self._finish(job, "stop")
        if len(job.out) >= sampling.max_tokens:
            return self._finish(job, "length")
        return None

    def _completion(self, job: _Job, reason: str, error: str | None = None) -> Completion:
        r = job.request
        text = job.text.decode("utf-8", errors="replace")
        calls: list[ToolCall] = []
        if error is None and r.tools:
            calls, error = parse_tool_calls(self.tool_format, text, reason, r.sampling.max_tokens)
        return Completion(
            request_id=r.request_id,
            text=text,
            tool_calls=calls,
            finish_reason=reason,
            prompt_tokens=len(job.prompt),
            cached_tokens=job.cached,
            completion_tokens=len(job.out),
            latency_s=time.perf_counter() - job.submitted,
            error=error,
        )

    def _finish(self, job: _Job, reason: str, error: str | None = None) -> None:
        self._slots[job.slot].job = None
        job.matcher = None
        self._resolve(job, self._completion(job, reason, error))

    @staticmethod
    def _resolve(job: _Job, completion: Completion) -> None:
        def deliver() -> None:
            if not job.future.done():
                job.future.set_result(completion)

        try:
            job.loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the caller's event loop is gone
            pass
