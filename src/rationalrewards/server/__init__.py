"""The HTTP API: critiques, comparisons and rewards, plus OpenAI-compatible chat completions.

``create_app(model)`` builds the FastAPI app; ``serve(spec)`` runs it with uvicorn
(``rationalrewards serve --model SPEC`` or ``python -m rationalrewards.server --model SPEC``).
FastAPI is imported only when one of them is used (``pip install 'rationalrewards[serve]'``).
"""

from __future__ import annotations

from typing import Any

from .protocol import ApiError, ServerLimits

__all__ = ["ApiError", "ServerLimits", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'rationalrewards.server' has no attribute {name!r}")
