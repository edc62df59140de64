"""The ``serve`` command (``rationalrewards serve`` and ``python -m rationalrewards.server``)."""

from __future__ import annotations

from typing import Optional

import typer

from ..rl.service import RewardBatchConfig
from .protocol import ServerLimits

_DEFAULTS = ServerLimits()
_BATCH = RewardBatchConfig()


def serve_command(
    model: str = typer.Option(..., "--model", "-m", help="backend spec, e.g. transformers:./ckpt or openai:URL"),
    host: str = typer.Option("127.0.0.1", help="interface to bind (0.0.0.0 exposes the server to the network)"),
    port: int = typer.Option(8000, help="TCP port"),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="RATIONALREWARDS_API_KEY", help="require 'Authorization: Bearer KEY' (not /health)"
    ),
    served_model_name: Optional[str] = typer.Option(None, help="model id in /v1/models (default: the backend name)"),
    allow_remote_images: bool = typer.Option(False, help="let image fields be http(s) URLs the server fetches"),
    max_body_bytes: int = typer.Option(_DEFAULTS.max_body_bytes, help="largest request body in bytes"),
    max_batch_items: int = typer.Option(_DEFAULTS.max_batch_items, help="most items or pairs per request"),
    max_images_per_request: int = typer.Option(_DEFAULTS.max_images_per_request, help="most images per request"),
    max_image_bytes: int = typer.Option(_DEFAULTS.max_image_bytes, help="largest encoded image in bytes"),
    max_image_pixels: int = typer.Option(_DEFAULTS.max_image_pixels, help="largest image in pixels (w*h)"),
    max_tokens: int = typer.Option(_DEFAULTS.max_tokens, help="cap (and default) of max_tokens in chat completions"),
    reward_max_batch: int = typer.Option(_BATCH.max_batch, help="/v1/reward: most samples per backend call"),
    reward_window_ms: float = typer.Option(_BATCH.window_ms, help="/v1/reward: batching window in ms (0: none)"),
    reward_max_queue: int = typer.Option(_BATCH.max_queue, help="/v1/reward: most queued samples (then 429)"),
    reward_timeout_s: float = typer.Option(_BATCH.timeout_s, help="/v1/reward: per-request timeout (then 504)"),
    reward_concurrency: int = typer.Option(_BATCH.max_concurrency, help="/v1/reward: backend calls at once"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve a reward model over HTTP: /v1/critique, /v1/compare, /v1/reward and OpenAI-compatible chat."""
    from .app import serve

    serve(
        model,
        host=host,
        port=port,
        api_key=api_key,
        allow_remote_images=allow_remote_images,
        served_model_name=served_model_name,
        log_level=log_level,
        max_body_bytes=max_body_bytes,
        max_batch_items=max_batch_items,
        max_images_per_request=max_images_per_request,
        max_image_bytes=max_image_bytes,
        max_image_pixels=max_image_pixels,
        max_tokens=max_tokens,
        reward_batching=RewardBatchConfig(
            max_batch=reward_max_batch,
            window_ms=reward_window_ms,
            max_queue=reward_max_queue,
            timeout_s=reward_timeout_s,
            max_concurrency=reward_concurrency,
        ),
    )
