"""rationalrewards: reasoning reward models for image generation.

A vision-language model writes a multi-dimensional critique before it scores;
the critique drives preference prediction, RL rewards and test-time refinement.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "parse_critique": "rationalrewards.parsing",
    "parse_pairwise": "rationalrewards.parsing",
    "RationalRewardModel": "rationalrewards.model",
    "load_backend": "rationalrewards.backends",
    "Critique": "rationalrewards.schema",
    "PairwiseCritique": "rationalrewards.schema",
    "Sample": "rationalrewards.schema",
    "PreferencePair": "rationalrewards.schema",
    "Conversation": "rationalrewards.conversation",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rationalrewards' has no attribute {name!r}")
