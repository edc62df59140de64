"""Thin FastAPI routers over ``serving``: parse the body, call one service, map errors to status codes.

Every error leaves as ``{"error": {"message", "type", "param", "code"}}``; an unexpected exception is a
500 of the same shape and the server keeps serving.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable
from typing import Any

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"the rationalrewards HTTP server needs FastAPI and uvicorn: pip install 'rationalrewards[serve]' ({exc})"
    ) from exc

from ..rl.service import RewardBatchConfig
from .protocol import (
    ApiError,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompareRequest,
    CompareResponse,
    CritiqueRequest,
    CritiqueResponse,
    ErrorResponse,
    HealthResponse,
    ModelList,
    RewardRequest,
    RewardResponse,
    ServerLimits,
)
from .serving import Services, build_state

log = logging.getLogger("rationalrewards.server")

API_KEY_ENV = "RATIONALREWARDS_API_KEY"
OPEN_PATHS = frozenset({"/health"})

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request"},
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "unknown model or route"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    500: {"model": ErrorResponse, "description": "backend or server failure"},
}
_REWARD_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    429: {"model": ErrorResponse, "description": "reward queue full; retry after the Retry-After header's seconds"},
    504: {"model": ErrorResponse, "description": "the reward request timed out in the queue or the backend"},
}

_TYPE_BY_STATUS = {
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "server_error",
    504: "timeout_error",
}


def error_response(
    status: int,
    message: str,
    type: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error_type = type or _TYPE_BY_STATUS.get(status, "invalid_request_error")
    body = {"error": {"message": message, "type": error_type, "param": param, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


class _Gate:
    """Pure ASGI middleware: the API key check, then a bounded read of the body (413 above the limit)."""

    def __init__(self, app: Any, api_key: str | None, max_body_bytes: int):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.api_key is not None and scope.get("path") not in OPEN_PATHS:
            auth = headers.get("authorization", b"")
            scheme, _, token = auth.partition(b" ")
            if not auth:
                await error_response(401, "missing API key: send 'Authorization: Bearer <key>'")(scope, receive, send)
                return
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
                await error_response(401, "invalid API key")(scope, receive, send)
                return
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await error_response(400, "invalid Content-Length header")(scope, receive, send)
                return
            if size > limit:
                await self._too_large(size, scope, receive, send)
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await self._too_large(len(body), scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, size: int, scope: dict, receive: Any, send: Any) -> None:
        msg = f"request body is {size} bytes or more, above the limit of {self.max_body_bytes} bytes (max_body_bytes)"
        await error_response(413, msg)(scope, receive, send)


def _loc_param(loc: tuple | list) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request body", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return f"request body is not valid JSON{': ' + str(detail) if detail else ''}", None
    msgs = []
    for e in errors[:5]:
        where = _loc_param(e.get("loc", ())) or "body"
        msgs.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(msgs) + more, _loc_param(first.get("loc", ())) or None


async def _guard(call: Awaitable[Any]) -> Any:
    """Await a service call; ``ApiError`` becomes its status, anything else a 500. Never lets one escape."""
    try:
        result = await call
    except ApiError as exc:
        if exc.status >= 500:
            log.warning("request failed: %s", exc.message)
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.headers)
    except Exception as exc:
        log.exception("unexpected error while serving a request")
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")
    return JSONResponse(result.model_dump(mode="json"))


def create_app(
    model: Any,
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    allow_remote_images: bool = False,
    served_model_name: str | None = None,
    reward_batching: RewardBatchConfig | None = None,
) -> FastAPI:
    """The HTTP app serving ``model``: a ``RationalRewardModel``, a ``Backend`` or a backend spec string.

    ``api_key`` guards every route but ``/health`` (``Authorization: Bearer <key>``). ``limits`` bounds
    what a request may ask; ``allow_remote_images`` lets image fields be ``http(s)://`` URLs the server fetches.
    ``reward_batching`` configures the micro-batching queue behind ``/v1/reward`` (``rl.service``).
    """
    limits = limits or ServerLimits()
    state = build_state(model, limits, allow_remote_images, served_model_name)
    services = Services.build(state, reward_batching)

    from .. import __version__

    app = FastAPI(
        title="rationalrewards",
        version=__version__,
        description="Reasoning reward model: critiques, pairwise comparisons, rewards and OpenAI-compatible chat.",
    )
    app.state.services = services
    app.add_middleware(_Gate, api_key=api_key, max_body_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(400, message, "invalid_request_error", param)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return error_response(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while serving %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")

    @app.get("/health", response_model=HealthResponse)
    async def health() -> Any:
        return JSONResponse(services.info.health().model_dump(mode="json"))

    @app.get("/v1/models", response_model=ModelList, responses=_ERRORS)
    async def models() -> Any:
        return JSONResponse(services.info.models().model_dump(mode="json"))

    @app.post("/v1/critique", response_model=CritiqueResponse, responses=_ERRORS)
    async def critique(body: CritiqueRequest) -> Any:
        return await _guard(services.critique.critique(body))

    @app.post("/v1/compare", response_model=CompareResponse, responses=_ERRORS)
    async def compare(body: CompareRequest) -> Any:
        return await _guard(services.compare.compare(body))

    @app.post("/v1/reward", response_model=RewardResponse, responses=_REWARD_ERRORS)
    async def reward(body: RewardRequest) -> Any:
        return await _guard(services.reward.reward(body))

    @app.get("/metrics", responses=_ERRORS)
    async def metrics(format: str = "json") -> Any:
        """Reward-service metrics as JSON, or Prometheus text with ``?format=prometheus``."""
        if format == "prometheus":
            return PlainTextResponse(services.reward.prometheus(), media_type="text/plain; version=0.0.4")
        if format != "json":
            return error_response(400, f"format must be 'json' or 'prometheus', got {format!r}", param="format")
        return JSONResponse(services.reward.metrics())

    @app.post("/v1/chat/completions", response_model=ChatCompletionResponse, responses=_ERRORS)
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        return await _guard(services.chat.complete(body))

    return app


def serve(
    model_spec: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    allow_remote_images: bool = False,
    served_model_name: str | None = None,
    log_level: str = "info",
    reward_batching: RewardBatchConfig | None = None,
    **limits: Any,
) -> None:
    """Load ``model_spec`` and serve it with uvicorn until interrupted.

    ``api_key`` falls back to the ``RATIONALREWARDS_API_KEY`` environment variable; ``limits`` are
    ``ServerLimits`` fields (e.g. ``max_batch_items=64``); ``reward_batching`` configures ``/v1/reward``'s queue.
    """
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(f"serving needs uvicorn: pip install 'rationalrewards[serve]' ({exc})") from exc
    unknown = sorted(set(limits) - set(ServerLimits.names()))
    if unknown:
        raise TypeError(f"unknown server limits {unknown}; known: {', '.join(ServerLimits.names())}")
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    app = create_app(
        model_spec,
        api_key=api_key,
        limits=ServerLimits(**{k: v for k, v in limits.items() if v is not None}),
        allow_remote_images=allow_remote_images,
        served_model_name=served_model_name,
        reward_batching=reward_batching,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)
