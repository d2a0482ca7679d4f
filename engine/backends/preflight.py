"""Preflight a GGUF model: load it and decode once in a child process before anything depends on it.

Some llama.cpp builds kill the whole process at the first decode of some files (a ``-march=native``
build's AMX kernels on quantized weights: SIGSEGV/SIGILL), a failed ``GGML_ASSERT`` aborts on an
inconsistent or unsupported file, and a corrupt file does not load. ``preflight_gguf`` runs
``python -m engine.backends.preflight PATH`` and turns whatever happened to that child into one
line (``BackendConfigError``): the stage it reached, the signal, a likely cause and the last thing
llama.cpp said. A crash while decoding with llama.cpp's extra CPU buffer types (weight repacking)
is retried once without them; the report then says to load the model that way. Successes are
remembered per process, keyed by the file's real path, size and modification time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from engine.backends.base import BackendConfigError, one_line

__all__ = ["EXTRA_BUFTS_NOTE", "STAGES", "PreflightReport", "preflight_backends", "preflight_gguf"]

STAGES = ("load", "context", "tokenize", "decode", "logits")
EXTRA_BUFTS_NOTE = "llama.cpp crashed with its extra CPU buffer types (AMX repacking); running without them"

_MARK = "writ-preflight "  # prefix of the child's report lines on stdout
_FAULT_ENV = "WRIT_PREFLIGHT_FAULT"  # "SIGNAME:stage[:extra]": the child kills itself there (tests)
_PROMPT = "Hello! Which flights leave Boston for Seattle tomorrow morning, and how much is a seat?"
_N_CTX = 128
_RETRY_SIGNALS = {signal.SIGILL, signal.SIGSEGV, signal.SIGBUS}
_REBUILD = "rebuild llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF"
_DOING = {
    "start": "starting",
    "load": "loading",
    "context": "creating a context",
    "tokenize": "tokenizing",
    "decode": "decoding",
    "logits": "reading the logits",
}
_FAILED_CAUSE = {
    "start": "llama-cpp-python does not import in a child process",
    "load": "not a valid GGUF file (corrupt or truncated), or a model architecture this llama.cpp does not support",
    "context": "not enough memory for a small context, or parameters llama.cpp rejects for this model",
    "tokenize": "the model's vocabulary is broken",
    "decode": "llama.cpp rejected a one-sequence batch for this model",
    "logits": "the weights hold NaN or infinite values (a broken conversion or quantization)",
}
_GENERIC = re.compile(r"failed to load model(?: from \S+)?$")  # llama.cpp's wrapper around the real reason
_log = logging.getLogger("writ")
_memo: dict[tuple[str, int, int, bool], PreflightReport] = {}


class PreflightReport(msgspec.Struct, kw_only=True, frozen=True):
    """A model that loaded and decoded in the child; ``extra_bufts`` False: load it without them."""

    path: str
    seconds: float
    stages: tuple[str, ...]
    n_vocab: int
    n_prompt_tokens: int
    chat_template: bool
    extra_bufts: bool = True
    note: str | None = None


@dataclass
class _Attempt:
    """What one child run did."""

    stages: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    returncode: int = 0
    stderr: str = ""
    timed_out: bool = False

    @property
    def stage(self) -> str:
        return self.stages[-1] if self.stages else "start"


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def _run_child(path: str, n_threads: int, extra_bufts: bool, timeout_s: float) -> _Attempt:
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the engine package
    env = {**os.environ, "GGML_NO_BACKTRACE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONFAULTHANDLER", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "engine.backends.preflight", path, "--threads", str(n_threads)]
    if not extra_bufts:
        cmd.append("--no-extra-bufts")
    attempt = _Attempt()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        stdout, attempt.stderr, attempt.returncode = _text(out), _text(err), proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        stdout, attempt.stderr, attempt.timed_out = _text(out), _text(err), True
    except BaseException:  # an interrupt: the child goes with us, reaped, never left behind
        proc.kill()
        proc.wait()
        raise
    for line in stdout.splitlines():
        if not line.startswith(_MARK):
            continue
        try:
            event = json.loads(line[len(_MARK) :])
        except ValueError:
            continue
        if "stage" in event:
            attempt.stages.append(str(event["stage"]))
        if "error" in event:
            attempt.error = str(event["error"])
        if "ok" in event:
            attempt.result = event
    return attempt


def _strip_source_dirs(line: str) -> str:
    """``/long/build/path/src/llama-model.cpp:1362:`` -> ``llama-model.cpp:1362:``."""
    return re.sub(r"(?:[^\s:]*/)([\w.+-]+\.(?:c|cc|cpp|h|hpp|py):\d+)", r"\1", line)


def _last_said(stderr: str) -> str:
    """The most telling line of the child's stderr: a failed check, else an error, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    specific = [line for line in lines if not _GENERIC.search(line)]
    lines = specific or lines
    for pattern in (r"GGML_ASSERT|GGML_ABORT|what\(\)", r"error", r"fail|abort|exception|invalid"):
        for line in reversed(lines):
            if re.search(pattern, line, re.IGNORECASE):
                return _strip_source_dirs(line)
    return _strip_source_dirs(lines[-1]) if lines else ""


def _signal_cause(sig: int, stage: str) -> str:
    if sig == signal.SIGILL:
        return (
            "this llama.cpp build uses CPU instructions this CPU (or its kernel) refuses, e.g. a -march=native "
            f"build made for another machine; {_REBUILD}"
        )
    if sig in (signal.SIGSEGV, signal.SIGBUS):
        if stage in ("load", "start"):
            return "the file is damaged in a way llama.cpp does not check, or it changed while being read"
        return (
            "a CPU kernel of this llama.cpp build fails on this model's weight types (known for -march=native "
            f"builds with AMX kernels on quantized models); {_REBUILD}"
        )
    if sig == signal.SIGABRT:
        return "llama.cpp stopped on a failed check (GGML_ASSERT): the model file is unsupported or inconsistent"
    if sig == signal.SIGKILL:
        return "out of memory (the kernel's OOM killer): the model does not fit in this machine's free memory"
    if sig == signal.SIGFPE:
        return "an arithmetic fault in llama.cpp, e.g. a zero head or expert count in the model's metadata"
    return "llama.cpp (or the machine) stopped the process"


def _failure(path: str, attempt: _Attempt, timeout_s: float) -> str:
    """One line saying what went wrong, its likely cause and what llama.cpp said."""
    doing = _DOING.get(attempt.stage, attempt.stage)
    rc = attempt.returncode
    if attempt.timed_out:
        head = f"the model at {path} did not finish one test decode within {timeout_s:g} s (stuck {doing})"
        cause = "the machine is overloaded, the model is too large for it, or llama.cpp hung"
    elif rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else f"signal {-rc}"
        what = "was killed" if -rc == signal.SIGKILL else "crashed llama.cpp"
        head = f"the model at {path} {what} while {doing} ({name}, signal {-rc})"
        cause = _signal_cause(-rc, attempt.stage)
    elif attempt.error is not None:
        head = f"the model at {path} failed while {doing}: {attempt.error}"
        cause = _FAILED_CAUSE.get(attempt.stage, "unknown")
    else:
        head = f"the preflight of the model at {path} exited with status {rc} while {doing}"
        cause = _FAILED_CAUSE["start"] if attempt.stage == "start" else "unknown"
    said = _last_said(attempt.stderr)
    message = f"{head}; likely cause: {cause}" + (f"; llama.cpp said: {one_line(said, 300)}" if said else "")
    return one_line(message, 1000)


def preflight_gguf(
    path: str, *, n_threads: int | None = None, timeout_s: float = 300, extra_bufts: bool = True
) -> PreflightReport:
    """Load ``path``, tokenize a short prompt, decode it and check the logits, all in a child process.

    Raises ``BackendConfigError`` (one line) when the child fails or dies; ``ImportError`` without
    llama-cpp-python. A crash (SIGILL/SIGSEGV/SIGBUS) with llama.cpp's extra CPU buffer types is
    retried without them: the report then has ``extra_bufts=False`` and ``note`` set.
    """
    if not os.path.isfile(path):
        raise BackendConfigError(f"the model at {path} does not exist or is not a file")
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, extra_bufts)
    if key in _memo:
        return _memo[key]
    if importlib.util.find_spec("llama_cpp") is None:
        from engine.backends.llamacpp_native import import_llama_cpp

        import_llama_cpp()  # raises the ImportError that names the install command
    from engine.backends.llamacpp_native import free_cores

    threads = n_threads or min(4, free_cores())
    started = time.perf_counter()
    attempt = _run_child(path, threads, extra_bufts, timeout_s)
    note = None
    if attempt.result is None and extra_bufts and -attempt.returncode in _RETRY_SIGNALS:
        retry = _run_child(path, threads, False, timeout_s)
        if retry.result is None:
            again = "; it crashed without extra CPU buffer types too"
            raise BackendConfigError(_failure(path, attempt, timeout_s) + again)
        attempt, extra_bufts, note = retry, False, EXTRA_BUFTS_NOTE
        _log.warning("%s: %s", path, note)
    if attempt.result is None:
        raise BackendConfigError(_failure(path, attempt, timeout_s))
    report = PreflightReport(
        path=path,
        seconds=round(time.perf_counter() - started, 3),
        stages=tuple(attempt.stages),
        n_vocab=int(attempt.result.get("n_vocab", 0)),
        n_prompt_tokens=int(attempt.result.get("n_prompt_tokens", 0)),
        chat_template=bool(attempt.result.get("chat_template", False)),
        extra_bufts=extra_bufts,
        note=note,
    )
    _memo[key] = report
    return report


def preflight_backends(*sections: dict[str, Any] | None) -> list[str]:
    """Validate and preflight every llama.cpp backend table among ``sections``; return their notes."""
    from engine.backends.factory import validate_backend_config

    notes: list[str] = []
    for section in sections:
        if section is None or section.get("backend") != "llamacpp":
            continue
        _, options = validate_backend_config(section)
        report = preflight_gguf(options["model"], n_threads=options.get("n_threads"))
        if report.note:
            notes.append(f"{options['model']}: {report.note}")
    return notes


# -- the child -----------------------------------------------------------------------------------


def _emit(**event: Any) -> None:
    print(_MARK + json.dumps(event), flush=True)


def _stage(name: str, extra_bufts: bool) -> None:
    _emit(stage=name)
    fault = os.environ.get(_FAULT_ENV, "").split(":")
    if len(fault) >= 2 and fault[1] == name and (fault[2:] != ["extra"] or extra_bufts):
        os.kill(os.getpid(), signal.Signals[fault[0]])


_log_callback: Any = None  # kept alive while llama.cpp holds it


def _log_warnings_to_stderr(ll: Any) -> None:
    """Send llama.cpp's warning and error lines to stderr (ggml's levels: 3 warn, 4 error, 5 continued)."""
    global _log_callback
    import ctypes

    keep = [False]

    def write(level: int, text: bytes, _user: Any) -> None:
        keep[0] = keep[0] if level == 5 else level in (3, 4)
        if keep[0]:
            sys.stderr.write(text.decode(errors="replace"))
            sys.stderr.flush()

    _log_callback = ll.llama_log_callback(write)
    ll.llama_log_set(_log_callback, ctypes.c_void_p(0))


def _child(argv: list[str]) -> int:
    import resource

    import numpy as np

    from engine.backends.llamacpp_native import context_params, import_llama_cpp, model_params

    parser = argparse.ArgumentParser(prog="python -m engine.backends.preflight")
    parser.add_argument("path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-extra-bufts", dest="extra_bufts", action="store_false")
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash here is expected, not worth a core file
    ll = import_llama_cpp()
    _log_warnings_to_stderr(ll)
    _stage("load", args.extra_bufts)
    ll.llama_backend_init()
    model = ll.llama_model_load_from_file(args.path.encode(), model_params(ll, extra_bufts=args.extra_bufts))
    if not model:
        _emit(error="llama.cpp could not load it")
        return 1
    _stage("context", args.extra_bufts)
    cparams = context_params(ll, n_ctx=_N_CTX, n_seq=1, n_batch=_N_CTX, n_threads=args.threads, flash_attn=False)
    ctx = ll.llama_init_from_model(model, cparams)
    if not ctx:
        _emit(error=f"llama.cpp could not create a {_N_CTX}-token context")
        return 1
    _stage("tokenize", args.extra_bufts)
    vocab = ll.llama_model_get_vocab(model)
    n_vocab = int(ll.llama_vocab_n_tokens(vocab))
    data = _PROMPT.encode()
    buf = (ll.llama_token * _N_CTX)()
    n = ll.llama_tokenize(vocab, data, len(data), buf, _N_CTX, bool(ll.llama_vocab_get_add_bos(vocab)), True)
    if n <= 0 or any(not 0 <= buf[i] < n_vocab for i in range(n)):
        _emit(error=f"a short prompt gave {n} tokens" if n <= 0 else "a token id outside the vocabulary")
        return 1
    _stage("decode", args.extra_bufts)
    batch = ll.llama_batch_init(_N_CTX, 0, 1)
    for i in range(n):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = buf[i], i, 1, i == n - 1
        batch.seq_id[i][0] = 0
    batch.n_tokens = n
    rc = ll.llama_decode(ctx, batch)
    if rc != 0:
        _emit(error=f"llama_decode returned {rc}")
        return 1
    _stage("logits", args.extra_bufts)
    row = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, n - 1), shape=(n_vocab,))
    if not np.isfinite(row).all():
        _emit(error=f"{int((~np.isfinite(row)).sum())} of {n_vocab} logits are NaN or infinite")
        return 1
    template = ll.llama_model_chat_template(model, None)
    _emit(ok=True, n_vocab=n_vocab, n_prompt_tokens=n, chat_template=bool(template))
    ll.llama_batch_free(batch)
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
