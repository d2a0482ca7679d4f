"""What ``writ bench`` prints about the machine and the process: hardware, versions, peak memory.

Everything is read from the operating system, package metadata or libraries already loaded; no
backend library is imported here just to ask its version.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["gpu_memory", "hardware", "llama_cpp_system_info", "peak_rss_mb", "versions"]

_DISTRIBUTIONS = ("writ", "llama-cpp-python", "llguidance", "vllm", "torch", "httpx")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    """GPU names and memory from nvidia-smi when it is on PATH (nothing is imported for this)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [" ".join(line.split()) for line in out.splitlines() if line.strip()]


def hardware() -> dict[str, Any]:
    """CPU model, logical and usable cores, memory, the 1-minute load at start, and GPUs."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": _memory_gb(),
        "load_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "gpus": _gpus(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Python and the installed distributions that shape the figures (absent ones left out)."""
    out = {"python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KB on Linux


def gpu_memory() -> tuple[float | None, str | None]:
    """GPU memory in MB and where it was read, when a backend of this process uses a GPU; else (None, None).

    torch's peak reservation when this process initialized CUDA; else, when vLLM runs its engine in
    another process, the device memory in use (all processes) read through NVML now.
    """
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda.max_memory_reserved() / 2**20, "torch peak reserved, this process"
    except Exception:  # an optional probe: a broken CUDA setup must not lose the other figures
        pass
    if "vllm" not in sys.modules:
        return None, None
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
            index = int(visible) if visible.isdigit() else 0
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index))
            return info.used / 2**20, f"NVML device {index} in use at the end of the run, all processes"
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML, no driver: the figure is simply unknown
        return None, None


def llama_cpp_system_info() -> str | None:
    """llama.cpp's build flags (``llama_print_system_info``) when this process loaded llama_cpp."""
    llama_cpp = sys.modules.get("llama_cpp")
    if llama_cpp is None:
        return None
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", errors="replace") if isinstance(info, bytes) else str(info)
    return " ".join(text.split()) or None
