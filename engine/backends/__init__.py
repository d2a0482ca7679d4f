"""Inference backends behind one interface; ``make_backend`` builds one from a config dict."""

from engine.backends.base import (
    Backend,
    BackendConfigError,
    Completion,
    Constraint,
    Request,
    SamplingParams,
    ToolCall,
)
from engine.backends.factory import make_backend, validate_backend_config

__all__ = [
    "Backend",
    "BackendConfigError",
    "Completion",
    "Constraint",
    "Request",
    "SamplingParams",
    "ToolCall",
    "make_backend",
    "validate_backend_config",
]
