"""The GGUF preflight: a model that breaks or crashes llama.cpp gives one line, before a run touches its directory.

Every case runs the real child process on a real file: the tiny test model, copies of it that are
truncated, garbage, of an unknown architecture or whose metadata trips a ``GGML_ASSERT`` (SIGABRT),
and, for crashes this build cannot produce on its own (SIGILL, SIGSEGV, OOM, a hang), the child's
``WRIT_PREFLIGHT_FAULT`` hook, which makes it deliver that signal to itself at the named stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backends.base import BackendConfigError
from engine.backends.preflight import EXTRA_BUFTS_NOTE, STAGES, preflight_gguf

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")
gguf = pytest.importorskip("gguf", reason="building test models needs the gguf package")

FAULT = "WRIT_PREFLIGHT_FAULT"
CONFIG = """
domain = "airline"
seed = 3
conversations_per_task = 1
max_live = 2

[db]
users = 20
seed = 1

[tasks]
n = 2
seed = 5

[agent]
backend = "llamacpp"
model = "{model}"
n_ctx = 4096
n_parallel = 2
n_threads = 1

[agent_sampling]
max_tokens = 16

[user_sampling]
max_tokens = 8

[limits]
max_steps = 4
max_errors = 2
max_context_tokens = 4000
"""


def _copy_gguf(src: Path, dst: Path, *, arch: str | None = None, extra: dict[str, int] | None = None) -> Path:
    """Rewrite ``src`` to ``dst`` key by key and tensor by tensor, with ``extra`` uint32 keys added."""
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, arch or reader.fields["general.architecture"].contents())
    for name, f in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = gguf.GGUFValueType(f.types[0])
        sub = gguf.GGUFValueType(f.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, f.contents(), vtype, sub)
    for key, value in (extra or {}).items():
        writer.add_uint32(key, value)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, np.array(tensor.data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def _writ(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "WRIT_CACHE": str(tmp / "cache"), **env}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=environ, timeout=600, check=False
    )


def _config(tmp: Path, model: Path) -> Path:
    path = tmp / "run.toml"
    path.write_text(CONFIG.format(model=model))
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def good(tiny_models: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the tiny GGUF (its own path, so the per-process memo has not seen it)."""
    return Path(shutil.copy(tiny_models["gguf"], tmp_path / "good.gguf"))


def test_copy_helper_is_faithful(good: Path, tmp_path: Path) -> None:
    assert _copy_gguf(good, tmp_path / "same.gguf").read_bytes() == good.read_bytes()


def test_good_model_passes_every_stage_and_the_memo_answers_at_once(good: Path) -> None:
    report = preflight_gguf(str(good), n_threads=1)
    assert report.stages == STAGES
    assert report.n_vocab == 1536 and report.n_prompt_tokens > 5 and report.chat_template
    assert report.extra_bufts and report.note is None
    assert 0 < report.seconds < 60
    start = time.perf_counter()
    again = preflight_gguf(str(good), n_threads=1)
    assert time.perf_counter() - start < 0.01
    assert again is report
    os.utime(good, ns=(time.time_ns(), time.time_ns() + 10**9))  # a changed file is checked again
    assert preflight_gguf(str(good), n_threads=1) is not report


def test_broken_files_fail_while_loading_with_llama_cpps_reason(good: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)
    alien = _copy_gguf(good, tmp_path / "alien.gguf", arch="writ-alien")
    expected = {
        truncated: "data is not within the file bounds, model is corrupted or incomplete",
        garbage: "gguf_init_from_reader: failed to read header",
        alien: "unknown model architecture: 'writ-alien'",
    }
    for path, said in expected.items():
        with pytest.raises(BackendConfigError) as info:
            preflight_gguf(str(path), n_threads=1)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"the model at {path} failed while loading: llama.cpp could not load it; ")
        assert "likely cause: not a valid GGUF file" in message
        assert "llama.cpp said: " in message and said in message
    with pytest.raises(BackendConfigError, match=r"does not exist or is not a file"):
        preflight_gguf(str(tmp_path / "missing.gguf"))


def test_writ_run_on_a_corrupt_model_exits_2_in_one_line_and_makes_no_run_dir(good: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(good.read_bytes()[:600_000])
    out = tmp_path / "run"
    proc = _writ(["run", str(_config(tmp_path, corrupt)), "--out", str(out), "--quiet"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"writ: error: the model at {corrupt} failed while loading")
    assert "tensor 'blk.0.ffn_down.weight' data is not within the file bounds" in proc.stderr
    assert not out.exists()


def test_a_failed_ggml_assert_is_sigabrt_in_one_line_not_a_dead_process(good: Path, tmp_path: Path) -> None:
    # llama.expert_used_count without llama.expert_count: load_hparams asserts n_expert_used <= n_expert
    bad = _copy_gguf(good, tmp_path / "assert.gguf", extra={"llama.expert_used_count": 2})
    out = tmp_path / "run"
    proc = _writ(["run", str(_config(tmp_path, bad)), "--out", str(out), "--quiet"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1
    head = f"writ: error: the model at {bad} crashed llama.cpp while loading (SIGABRT, signal 6); "
    assert proc.stderr.startswith(head)
    assert "likely cause: llama.cpp stopped on a failed check (GGML_ASSERT)" in proc.stderr
    assert "GGML_ASSERT(n_expert_used_max <= hparams.n_expert) failed" in proc.stderr
    assert not out.exists()
    # in-process too: building the backend raises instead of aborting this very test process
    from engine.backends.llamacpp import LlamaCppBackend

    with pytest.raises(BackendConfigError, match=r"\(SIGABRT, signal 6\)"):
        LlamaCppBackend(str(bad), n_ctx=256, n_parallel=1, n_threads=1)


@pytest.mark.parametrize(
    ("fault", "timeout_s", "expected"),
    [
        ("SIGILL:decode", 300, "crashed llama.cpp while decoding (SIGILL, signal 4); likely cause: this llama.cpp "
         "build uses CPU instructions"),
        ("SIGSEGV:logits", 300, "crashed llama.cpp while reading the logits (SIGSEGV, signal 11); likely cause: "
         "a CPU kernel of this llama.cpp build fails"),
        ("SIGKILL:context", 300, "was killed while creating a context (SIGKILL, signal 9); likely cause: "
         "out of memory"),
        ("SIGSTOP:tokenize", 3, "did not finish one test decode within 3 s (stuck tokenizing)"),
    ],
)  # fmt: skip
def test_each_crash_names_stage_signal_and_cause(
    good: Path, monkeypatch: pytest.MonkeyPatch, fault: str, timeout_s: float, expected: str
) -> None:
    monkeypatch.setenv(FAULT, fault)
    with pytest.raises(BackendConfigError) as info:
        preflight_gguf(str(good), n_threads=1, timeout_s=timeout_s)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"the model at {good} ")
    assert expected in message
    if fault.startswith(("SIGILL", "SIGSEGV")):  # retried without extra buffer types, crashed again
        assert "CMAKE_ARGS=-DGGML_NATIVE=OFF" in message
        assert message.endswith("it crashed without extra CPU buffer types too")


def test_a_crash_only_with_extra_buffer_types_falls_back_and_the_run_records_it(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT, "SIGILL:decode:extra")  # crashes like an AMX repack kernel would
    report = preflight_gguf(str(good), n_threads=1)
    assert report.stages == STAGES and not report.extra_bufts and report.note == EXTRA_BUFTS_NOTE
    from engine.backends.llamacpp_native import LlamaNative

    native = LlamaNative(str(good), n_ctx=64, n_seq=1, n_batch=64, n_threads=1, flash_attn=False)
    try:
        assert native.extra_bufts is False
        tokens = native.tokenize("hello there")
        native.decode([(t, i, 0, i == len(tokens) - 1) for i, t in enumerate(tokens)])
        assert np.isfinite(native.logits(len(tokens) - 1)).all()
    finally:
        native.close()

    out = tmp_path / "run"
    config = _config(tmp_path, good)
    proc = _writ(["run", str(config), "--out", str(out), "--quiet"], tmp_path, **{FAULT: "SIGILL:decode:extra"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert EXTRA_BUFTS_NOTE in proc.stderr
    manifest = (out / "manifest.json").read_text()
    assert f"{good}: {EXTRA_BUFTS_NOTE}" in manifest and '"status": "complete"' in manifest

    # the model file breaks; a resume stops at the preflight and leaves the run directory as it was
    before = _snapshot(out)
    good.write_bytes(good.read_bytes()[:500_000])
    proc = _writ(["run", str(config), "--out", str(out), "--quiet"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"writ: error: the model at {good} failed while loading")
    assert _snapshot(out) == before


def test_make_test_model_still_builds_and_preflights(tmp_path: Path) -> None:
    proc = _writ(["make-test-model", "--out", str(tmp_path / "models")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"gguf: {tmp_path / 'models' / 'writ-test-small.gguf'}" in proc.stdout
    assert "preflight: llama.cpp loaded it and decoded" in proc.stdout
