"""Build a backend from a plain config dict, checking every option first with one-line errors.

Only the chosen backend's module is imported, so a CPU-only install never touches vLLM.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from engine.backends.base import Backend, BackendConfigError

__all__ = ["BACKENDS", "make_backend", "validate_backend_config"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _gguf_path(name: str, value: Any) -> str:
    path = _text(name, value)
    if not os.path.isfile(path):
        raise ValueError(f"{name} {path!r} is not a file")
    return path


def _url(name: str, value: Any) -> str:
    url = _text(name, value)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{name} must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


def _choice(*options: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
        return str(value)

    return check


def _tool_format(name: str, value: Any) -> str:
    from grammars import FORMATS

    return _choice(*FORMATS)(name, value)


Check = Callable[[str, Any], Any]

# backend name -> (module, class, {option: (check, required)})
BACKENDS: dict[str, tuple[str, str, dict[str, tuple[Check, bool]]]] = {
    "llamacpp": (
        "engine.backends.llamacpp",
        "LlamaCppBackend",
        {
            "model": (_gguf_path, True),
            "n_ctx": (_positive_int, False),
            "n_parallel": (_positive_int, False),
            "n_batch": (_positive_int, False),
            "n_threads": (_positive_int, False),
            "flash_attn": (_bool, False),
            "seed": (_int, False),
            "tool_format": (_tool_format, False),
            "chat_template": (_text, False),
        },
    ),
    "openai": (
        "engine.backends.openai_compat",
        "OpenAICompatBackend",
        {
            "base_url": (_url, True),
            "model": (_text, True),
            "api_key": (_text, False),
            "timeout_s": (_positive_number, False),
            "max_concurrency": (_positive_int, False),
            "structured_output": (
                _choice("auto", "json_schema", "json_object", "vllm", "none"),
                False,
            ),
            "tool_format": (_tool_format, False),
            "seed": (_int, False),
        },
    ),
}


def validate_backend_config(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check ``config``; return the backend name and its keyword options, or raise one line."""
    if not isinstance(config, dict):
        raise BackendConfigError(f"backend config must be a table, got {type(config).__name__}")
    name = config.get("backend")
    if name not in BACKENDS and name != "vllm":
        known = ", ".join([*sorted(BACKENDS), "vllm"])
        raise BackendConfigError(f"unknown backend {name!r} (known: {known})")
    if name == "vllm":
        return name, {k: v for k, v in config.items() if k != "backend"}
    _, _, options = BACKENDS[name]
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key == "backend":
            continue
        if key not in options:
            raise BackendConfigError(f"{name} backend: unknown option {key!r} (known: {', '.join(sorted(options))})")
        check, _ = options[key]
        try:
            kwargs[key] = check(key, value)
        except ValueError as exc:
            raise BackendConfigError(f"{name} backend: {exc}") from None
    missing = [k for k, (_, required) in options.items() if required and k not in kwargs]
    if missing:
        raise BackendConfigError(f"{name} backend: missing required option {missing[0]!r}")
    return name, kwargs


def make_backend(config: dict[str, Any]) -> Backend:
    """The backend ``config["backend"]`` names, built with the other keys as its options."""
    name, kwargs = validate_backend_config(config)
    if name == "vllm":  # its own module validates its options
        module = importlib.import_module("engine.backends.vllm")
        return module.make_vllm_backend(kwargs)  # type: ignore[no-any-return]
    module_name, class_name, _ = BACKENDS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    model = kwargs.pop("model")
    if name == "openai":
        return cls(kwargs.pop("base_url"), model, **kwargs)  # type: ignore[no-any-return]
    return cls(model, **kwargs)  # type: ignore[no-any-return]
