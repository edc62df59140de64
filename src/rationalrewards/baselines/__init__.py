"""Baselines a reasoning reward model is measured against (scalar Bradley-Terry reward model)."""

from __future__ import annotations

from typing import Any

__all__ = ["BTConfig", "BradleyTerryRewardModel"]


def __getattr__(name: str) -> Any:  # lazy: keep `import rationalrewards.baselines` free of torch
    if name in __all__:
        from . import bt

        return getattr(bt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
