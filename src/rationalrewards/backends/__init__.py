"""Backends by short spec string, imported only when asked for.

Specs:
    ``openai:URL[,URL...]``      any OpenAI-compatible chat-completions endpoint(s)
    ``transformers:PATH``        a local checkpoint folder (AutoModelForImageTextToText)
    ``synthetic-teacher[:MODE]`` the synthetic world's privileged teacher
    ``embedded``                 the embedded default model shipped with the package
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Backend, Completion, GenerationConfig, run_sync

__all__ = ["Backend", "Completion", "GenerationConfig", "check_spec", "load_backend", "run_sync", "BACKENDS"]

# prefix -> "module:factory"; the factory takes (rest_of_spec, **kwargs)
BACKENDS: dict[str, str] = {
    "openai": "rationalrewards.backends.openai_http:from_spec",
    "transformers": "rationalrewards.backends.transformers_local:from_spec",
    "synthetic-teacher": "rationalrewards.synthetic.teacher:from_spec",
    "embedded": "rationalrewards.models.embedded:from_spec",
}


def check_spec(spec: str) -> tuple[str, str]:
    """``(backend name, rest)`` of a spec string, without loading anything; ValueError for an unknown backend."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("backend spec must be a non-empty string, e.g. 'openai:http://localhost:8000/v1'")
    prefix, _, rest = spec.strip().partition(":")
    if prefix not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown backend {prefix!r} in spec {spec!r}; known backends: {known}")
    return prefix, rest


def load_backend(spec: str | Backend, **kwargs: Any) -> Backend:
    """Build a backend from a spec string such as ``openai:http://localhost:8000/v1`` or ``transformers:./ckpt``."""
    if isinstance(spec, Backend):
        return spec
    prefix, rest = check_spec(spec)
    module_name, _, attr = BACKENDS[prefix].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)(rest, **kwargs)
