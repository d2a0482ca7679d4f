"""Thin wrapper over llama-cpp-python's low-level C API: one model, one context, one batch.

It loads a GGUF, tokenizes, keeps the byte piece of every token, decodes a batch whose tokens
belong to several sequences (one per conversation) and hands back logits rows. Scheduling and
sampling live in ``llamacpp``; this module only talks to the C library.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.backends.base import BackendConfigError

__all__ = ["LlamaNative", "context_params", "free_cores", "import_llama_cpp", "model_params"]

_INSTALL = "pip install 'writ[llamacpp]'  (llama-cpp-python, llguidance)"


def import_llama_cpp() -> Any:
    """Import llama_cpp, silence its C logging, or fail naming the install command."""
    try:
        import llama_cpp
        import llama_cpp._logger as llama_logger
    except ImportError as exc:
        raise ImportError(f"the llamacpp backend needs llama-cpp-python: {_INSTALL}") from exc
    llama_logger.set_verbose(False)  # its module keeps the ctypes log callback alive
    return llama_cpp


def import_llguidance() -> Any:
    """Import llguidance (and its llama.cpp tokenizer bridge) or fail naming the install command."""
    try:
        import llguidance
        import llguidance.llamacpp
        import llguidance.numpy
    except ImportError as exc:
        raise ImportError(f"constrained decoding needs llguidance: {_INSTALL}") from exc
    return llguidance


def free_cores() -> int:
    """Cores this process may use minus the ones busy with other work (1-minute load)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
    return max(1, (cores or 1) - busy)


def model_params(ll: Any, *, extra_bufts: bool = True) -> Any:
    """Model parameters for CPU inference; ``extra_bufts=False`` turns off llama.cpp's weight repacking."""
    mparams = ll.llama_model_default_params()
    mparams.n_gpu_layers = 0
    if hasattr(mparams, "use_extra_bufts"):  # llama-cpp-python >= 0.3.16
        mparams.use_extra_bufts = extra_bufts
    return mparams


def context_params(ll: Any, *, n_ctx: int, n_seq: int, n_batch: int, n_threads: int, flash_attn: bool) -> Any:
    """Context parameters: ``n_seq`` separate KV streams of ``n_ctx`` tokens each."""
    cparams = ll.llama_context_default_params()
    cparams.n_ctx = n_ctx * n_seq
    cparams.n_batch = n_batch
    cparams.n_ubatch = n_batch
    cparams.n_seq_max = n_seq
    cparams.n_threads = n_threads
    cparams.n_threads_batch = n_threads
    cparams.kv_unified = False
    cparams.flash_attn_type = 1 if flash_attn else 0  # auto (-1) picks it; slower on CPU here
    cparams.no_perf = True
    return cparams


class LlamaNative:
    """A GGUF model with a context holding ``n_seq`` sequences of ``n_ctx`` tokens each.

    Each sequence has its own KV stream (``kv_unified=False``), so a token attends only to its own
    conversation; a shared prompt prefix is copied between streams instead of decoded again.
    """

    def __init__(
        self,
        path: str,
        *,
        n_ctx: int,
        n_seq: int,
        n_batch: int,
        n_threads: int,
        flash_attn: bool,
        extra_bufts: bool = True,
        preflight: bool = True,
    ) -> None:
        ll = import_llama_cpp()
        self.ll = ll
        if preflight:  # load and decode once in a child process first: a llama.cpp crash becomes one line
            from engine.backends.preflight import preflight_gguf

            extra_bufts = preflight_gguf(path, n_threads=n_threads, extra_bufts=extra_bufts).extra_bufts
        self.extra_bufts = extra_bufts
        ll.llama_backend_init()
        self.model = ll.llama_model_load_from_file(path.encode(), model_params(ll, extra_bufts=extra_bufts))
        if not self.model:
            raise BackendConfigError(f"llama.cpp could not load {path!r} (not a valid GGUF?)")
        cparams = context_params(
            ll, n_ctx=n_ctx, n_seq=n_seq, n_batch=n_batch, n_threads=n_threads, flash_attn=flash_attn
        )
        self.ctx = ll.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            ll.llama_model_free(self.model)
            raise BackendConfigError(f"llama.cpp could not create a context ({n_seq} x {n_ctx} tokens)")
        self.n_ctx = int(ll.llama_n_ctx_seq(self.ctx))  # per sequence
        self.n_batch = n_batch
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.mem = ll.llama_get_memory(self.ctx)
        self.n_vocab = int(ll.llama_vocab_n_tokens(self.vocab))
        self.batch = ll.llama_batch_init(n_batch, 0, 1)
        self.pieces = [self._piece(t) for t in range(self.n_vocab)]
        self.eog = frozenset(t for t in range(self.n_vocab) if ll.llama_vocab_is_eog(self.vocab, t))
        self.add_bos = bool(ll.llama_vocab_get_add_bos(self.vocab))
        bos = ll.llama_vocab_bos(self.vocab)
        eos = ll.llama_vocab_eos(self.vocab)
        self.bos_text = self.pieces[bos].decode(errors="replace") if 0 <= bos < self.n_vocab else ""
        self.eos_text = self.pieces[eos].decode(errors="replace") if 0 <= eos < self.n_vocab else ""
        self.eos = eos
        raw = ll.llama_model_chat_template(self.model, None)
        self.chat_template = raw.decode() if raw else None
        self._lltok: Any = None

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = self.ll.llama_token_to_piece(self.vocab, token, buf, 256, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, True)
        return bytes(buf.raw[:n])

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text``; a BOS is added when the vocabulary asks and text lacks one."""
        data = text.encode()
        add = self.add_bos and not (self.bos_text and text.startswith(self.bos_text))
        size = len(data) + 8
        buf = (self.ll.llama_token * size)()
        n = self.ll.llama_tokenize(self.vocab, data, len(data), buf, size, add, special)
        if n < 0:
            size = -n
            buf = (self.ll.llama_token * size)()
            n = self.ll.llama_tokenize(self.vocab, data, len(data), buf, size, add, special)
        return list(buf[:n])

    def is_special_token(self, text: str) -> bool:
        """Whether ``text`` is one control or user-defined token (special to llguidance)."""
        ids = self.tokenize(text, special=True)
        ids = ids[1:] if self.add_bos and len(ids) == 2 else ids
        if len(ids) != 1:
            return False
        attr = self.ll.llama_vocab_get_attr(self.vocab, ids[0])
        return bool(attr & self.ll.LLAMA_TOKEN_ATTR_CONTROL) or bool(
            attr & self.ll.LLAMA_TOKEN_ATTR_USER_DEFINED and text.startswith("<")
        )

    def lltokenizer(self) -> Any:
        """The llguidance tokenizer of this vocabulary (built on first use, ~1 s at 150k tokens)."""
        if self._lltok is None:
            llg = import_llguidance()
            with warnings.catch_warnings():  # it calls llama_token_get_attr, deprecated in 0.3.36
                warnings.simplefilter("ignore", DeprecationWarning)
                self._lltok = llg.llamacpp.lltokenizer_from_vocab(self.vocab, eos_token=sorted(self.eog) or None)
        return self._lltok

    def forget(self, seq: int, start: int = 0) -> None:
        """Drop sequence ``seq``'s KV cells from position ``start`` on."""
        self.ll.llama_memory_seq_rm(self.mem, seq, start, -1)

    def share(self, src: int, dst: int, n: int) -> None:
        """Give sequence ``dst`` the KV cells of ``src``'s first ``n`` positions.

        Streams are separate, and llama.cpp copies only whole streams: copy, then cut at ``n``.
        """
        self.ll.llama_memory_seq_cp(self.mem, src, dst, -1, -1)
        self.ll.llama_memory_seq_rm(self.mem, dst, n, -1)

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Decode ``(token, position, seq, want_logits)`` entries as one batch."""
        b = self.batch
        n = len(entries)
        for i, (token, pos, seq, want) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = want
        b.n_tokens = n
        rc = self.ll.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} ({n} tokens)")

    def logits(self, index: int) -> NDArray[np.float32]:
        """The logits row of batch entry ``index`` (a view valid until the next decode)."""
        ptr = self.ll.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def close(self) -> None:
        """Free the batch, context and model."""
        if getattr(self, "ctx", None):
            self.ll.llama_batch_free(self.batch)
            self.ll.llama_free(self.ctx)
            self.ll.llama_model_free(self.model)
            self.ctx = None
