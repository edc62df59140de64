"""Local models: the tiny Qwen3-VL builder, processor loading without torchvision, the embedded default."""

from __future__ import annotations

from typing import Any

__all__ = ["build_tiny_qwen3vl", "make_tiny_qwen3vl", "load_processor"]


def __getattr__(name: str) -> Any:  # lazy: keep `import rationalrewards.models` free of torch
    if name in ("build_tiny_qwen3vl", "make_tiny_qwen3vl"):
        from . import tiny

        return getattr(tiny, name)
    if name == "load_processor":
        from .processor import load_processor

        return load_processor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
