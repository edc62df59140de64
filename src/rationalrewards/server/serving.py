"""The server's logic, one class per endpoint family; no HTTP here (``app.py`` maps ``ApiError`` to statuses).

Every input check lives here: batch sizes, image counts, image decoding under byte and pixel limits
(the pixel count is read from the header before any pixel is decoded), token caps and model names.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, GenerationConfig
from ..conversation import Conversation, ImagePart, Message, Part
from ..images import ImageError, load_image
from ..rl.service import QueueFullError, RequestTooLargeError, RewardBatchConfig, RewardBatcher, RewardTimeoutError
from ..schema import Critique, PairwiseCritique, PreferencePair, Sample
from .protocol import (
    ApiError,
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    CompareRequest,
    CompareResponse,
    CritiqueItem,
    CritiqueRequest,
    CritiqueResponse,
    HealthResponse,
    ModelCard,
    ModelList,
    RewardRequest,
    RewardResponse,
    RewardResult,
    ServerLimits,
)

if TYPE_CHECKING:
    from PIL import Image

    from ..model import RationalRewardModel

log = logging.getLogger("rationalrewards.server")

REMOTE_FLAG = "--allow-remote-images (create_app(..., allow_remote_images=True))"

# chat-completions fields that change nothing about the generated text: accepted and ignored
IGNORED_CHAT_FIELDS = frozenset(
    {"user", "metadata", "store", "stream_options", "service_tier", "safety_identifier", "prompt_cache_key"}
)


# ---------------------------------------------------------------------------------------------------------------
# images


def _b64decode_strict(payload: str) -> bytes:
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(payload, strict_mode=True)
    return base64.b64decode(payload, validate=True)


class ImageDecoder:
    """Turns the image strings of a request into PIL images, or raises ``ApiError`` naming the field."""

    def __init__(self, limits: ServerLimits, allow_remote: bool = False):
        self.limits = limits
        self.allow_remote = allow_remote

    async def decode(self, value: Any, param: str) -> Image.Image:
        if not isinstance(value, str) or not value:
            raise ApiError(f"{param}: an image must be a non-empty string (a base64 data URL)", param=param)
        if value.startswith(("http://", "https://")):
            if not self.allow_remote:
                raise ApiError(
                    f"{param}: remote image URLs are disabled on this server; send the image as a base64 data URL "
                    f"or start the server with {REMOTE_FLAG}",
                    param=param,
                )
            data = await self._fetch(value, param)
            return await asyncio.to_thread(self._open, data, param)
        # base64 decoding of a large image takes milliseconds: off the event loop, like the pixel decoding
        return await asyncio.to_thread(lambda: self._open(self._b64_bytes(value, param), param))

    async def decode_many(self, values: Sequence[tuple[Any, str]]) -> list[Image.Image]:
        """Decode ``(value, param)`` pairs concurrently; the first bad one raises."""
        return list(await asyncio.gather(*(self.decode(v, p) for v, p in values)))

    def _b64_bytes(self, value: str, param: str) -> bytes:
        if value.startswith("data:"):
            header, sep, payload = value.partition(",")
            if not sep or not header.endswith(";base64"):
                raise ApiError(
                    f"{param}: data URLs must be base64-encoded, like 'data:image/png;base64,...'", param=param
                )
        elif "://" in value[:16]:
            raise ApiError(f"{param}: unsupported image reference {value[:40]!r}; send a base64 data URL", param=param)
        else:
            payload = value
        if any(ws in payload for ws in ("\n", "\r", " ", "\t")):
            payload = "".join(payload.split())
        limit = self.limits.max_image_bytes
        if (len(payload) // 4) * 3 > limit + 3:
            raise ApiError(
                f"{param}: image is about {(len(payload) // 4) * 3} bytes, above the limit of {limit} bytes "
                "(max_image_bytes)",
                param=param,
            )
        try:
            data = _b64decode_strict(payload)
        except (binascii.Error, ValueError):
            raise ApiError(f"{param}: image is not valid base64 (expected a base64 data URL)", param=param) from None
        if len(data) > limit:
            raise ApiError(
                f"{param}: image is {len(data)} bytes, above the limit of {limit} bytes (max_image_bytes)", param=param
            )
        if not data:
            raise ApiError(f"{param}: image is empty", param=param)
        return data

    async def _fetch(self, url: str, param: str) -> bytes:
        import httpx

        limit = self.limits.max_image_bytes
        try:
            async with (
                httpx.AsyncClient(timeout=self.limits.remote_image_timeout_s, follow_redirects=True) as client,
                client.stream("GET", url) as resp,
            ):
                if resp.status_code != 200:
                    raise ApiError(f"{param}: fetching {url} returned HTTP {resp.status_code}", param=param)
                buf = bytearray()
                async for chunk in resp.aiter_bytes():
                    buf += chunk
                    if len(buf) > limit:
                        raise ApiError(
                            f"{param}: remote image is above the limit of {limit} bytes (max_image_bytes)", param=param
                        )
                return bytes(buf)
        except httpx.HTTPError as exc:
            raise ApiError(f"{param}: could not fetch {url}: {type(exc).__name__}: {exc}", param=param) from None

    def _open(self, data: bytes, param: str) -> Image.Image:
        from PIL import Image

        try:
            # load_image reads the size from the header and checks it before decoding any pixel
            return load_image(data, max_pixels=self.limits.max_image_pixels)
        except Image.DecompressionBombError as exc:
            raise ApiError(f"{param}: image refused as a decompression bomb: {exc}", param=param) from None
        except ImageError as exc:
            msg = str(exc)
            if "above the limit" in msg:
                msg += " (max_image_pixels)"
            raise ApiError(f"{param}: {msg}", param=param) from None
        except Exception as exc:  # any other decoder failure is still the client's bad image
            raise ApiError(f"{param}: not a readable image: {type(exc).__name__}: {exc}", param=param) from None


# ---------------------------------------------------------------------------------------------------------------
# shared state


@dataclass
class ServerState:
    """What every service shares: the reward model, its backend, the served name and the limits."""

    backend: Backend
    model_name: str
    limits: ServerLimits
    reward_model: RationalRewardModel | None = None
    allow_remote_images: bool = False
    started: float = field(default_factory=time.time)
    aliases: tuple[str, ...] = ()

    @property
    def images(self) -> ImageDecoder:
        return ImageDecoder(self.limits, self.allow_remote_images)

    def require_model(self) -> RationalRewardModel:
        if self.reward_model is None:
            raise ApiError(
                "this server holds no reward model (only a chat backend)", status=404, type="not_found_error"
            )
        return self.reward_model

    def check_batch(self, n: int, param: str, images: int) -> None:
        if n > self.limits.max_batch_items:
            raise ApiError(
                f"{param}: {n} entries, above the limit of {self.limits.max_batch_items} per request (max_batch_items)",
                param=param,
            )
        if images > self.limits.max_images_per_request:
            raise ApiError(
                f"{param}: {images} images in this request, above the limit of "
                f"{self.limits.max_images_per_request} (max_images_per_request)",
                param=param,
            )


def build_state(
    model: Any,
    limits: ServerLimits | None = None,
    allow_remote_images: bool = False,
    served_model_name: str | None = None,
) -> ServerState:
    """Accept a ``RationalRewardModel``, a ``Backend`` or a backend spec string."""
    from ..backends import load_backend

    reward_model = None
    if isinstance(model, str):
        model = load_backend(model)
    if isinstance(model, Backend):
        backend = model
        from ..model import RationalRewardModel

        reward_model = RationalRewardModel(backend)
    else:
        backend = getattr(model, "backend", None)
        if not isinstance(backend, Backend):
            kind = type(model).__name__
            raise TypeError(f"create_app needs a RationalRewardModel, a Backend or a backend spec string, got {kind}")
        reward_model = model
    name = served_model_name or getattr(backend, "name", None) or "rationalrewards"
    aliases = tuple({name, getattr(backend, "name", name)})
    return ServerState(
        backend=backend,
        model_name=name,
        limits=limits or ServerLimits(),
        reward_model=reward_model,
        allow_remote_images=allow_remote_images,
        aliases=aliases,
    )


# ---------------------------------------------------------------------------------------------------------------
# services


class InfoService:
    def __init__(self, state: ServerState):
        self.state = state

    def health(self) -> HealthResponse:
        from .. import __version__

        return HealthResponse(
            model=self.state.model_name, uptime_s=round(time.time() - self.state.started, 3), version=__version__
        )

    def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=self.state.model_name, created=int(self.state.started))])


async def _samples(state: ServerState, items: Sequence[CritiqueItem], param: str) -> list[Sample]:
    n_images = sum(1 + (it.source is not None) for it in items)
    state.check_batch(len(items), param, n_images)
    jobs: list[tuple[Any, str]] = []
    for i, it in enumerate(items):
        jobs.append((it.image, f"{param}[{i}].image"))
        if it.source is not None:
            jobs.append((it.source, f"{param}[{i}].source"))
    decoded = iter(await state.images.decode_many(jobs))
    out = []
    for it in items:
        image = next(decoded)
        source = next(decoded) if it.source is not None else None
        out.append(Sample(request=it.request, image=image, source=source, id=it.id))
    return out


class CritiqueService:
    """``POST /v1/critique``: pointwise critiques for a batch of samples."""

    def __init__(self, state: ServerState):
        self.state = state

    async def critique(self, req: CritiqueRequest) -> CritiqueResponse:
        model = self.state.require_model()
        samples = await _samples(self.state, req.items, "items")
        critiques = await model.acritique(samples)
        return CritiqueResponse(model=self.state.model_name, critiques=list(critiques))


class CompareService:
    """``POST /v1/compare``: pairwise critiques, optionally judged in both orders."""

    def __init__(self, state: ServerState):
        self.state = state

    async def compare(self, req: CompareRequest) -> CompareResponse:
        model = self.state.require_model()
        pairs = req.pairs
        n_images = sum(2 + (p.source is not None) for p in pairs)
        self.state.check_batch(len(pairs), "pairs", n_images)
        jobs: list[tuple[Any, str]] = []
        for i, p in enumerate(pairs):
            jobs += [(p.image_a, f"pairs[{i}].image_a"), (p.image_b, f"pairs[{i}].image_b")]
            if p.source is not None:
                jobs.append((p.source, f"pairs[{i}].source"))
        decoded = iter(await self.state.images.decode_many(jobs))
        prefs = []
        for p in pairs:
            a, b = next(decoded), next(decoded)
            source = next(decoded) if p.source is not None else None
            prefs.append(PreferencePair(request=p.request, image_a=a, image_b=b, source=source, id=p.id))
        critiques: list[PairwiseCritique] = await model.acompare(prefs, both_orders=req.both_orders)
        return CompareResponse(model=self.state.model_name, critiques=list(critiques))


class RewardService:
    """``POST /v1/reward``: scalar and per-dimension rewards for RL trainers.

    Requests go through a ``rl.service.RewardBatcher``: samples arriving within a short window share one
    backend call; a full queue answers 429 with ``Retry-After``, a request over its timeout 504.
    """

    def __init__(self, state: ServerState, batching: RewardBatchConfig | None = None):
        self.state = state
        self.batching = batching or RewardBatchConfig()
        self.batcher = (
            RewardBatcher.from_config(state.reward_model, self.batching) if state.reward_model is not None else None
        )

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.state.model_name}
        if self.batcher is not None:
            out.update(self.batcher.metrics())
        return out

    def prometheus(self) -> str:
        return self.batcher.prometheus() if self.batcher is not None else ""

    async def reward(self, req: RewardRequest) -> RewardResponse:
        samples = await _samples(self.state, req.items, "items")
        results = await self.score_batch(samples, return_critiques=req.return_critiques)
        return RewardResponse(
            model=self.state.model_name, results=results, n_failed=sum(r.reward is None for r in results)
        )

    async def score_batch(self, samples: Sequence[Sample], return_critiques: bool = False) -> list[RewardResult]:
        model = self.state.require_model()
        assert self.batcher is not None
        try:
            scores = await self.batcher.submit(list(samples))
        except QueueFullError as exc:
            retry = str(max(1, math.ceil(exc.retry_after_s)))
            raise ApiError(str(exc), status=429, type="rate_limit_error", headers={"Retry-After": retry}) from None
        except RewardTimeoutError as exc:
            raise ApiError(str(exc), status=504, type="timeout_error") from None
        except RequestTooLargeError as exc:
            raise ApiError(f"items: {exc}", param="items") from None
        return [self._result(model, s, sc.critique, return_critiques) for s, sc in zip(samples, scores, strict=True)]

    @staticmethod
    def _result(model: RationalRewardModel, sample: Sample, c: Critique, return_critique: bool) -> RewardResult:
        reward = model.reward_of(c)
        error = None
        if reward is None or c.parse_status != "ok":
            missing = f"no score for: {', '.join(c.missing)}" if c.missing else ""
            error = "; ".join(c.parse_errors) or missing or f"parse status {c.parse_status}"
        return RewardResult(
            id=sample.id,
            reward=reward,
            scores=c.vector(),
            parse_ok=c.parse_ok,
            parse_status=c.parse_status,
            error=error,
            critique=c if return_critique else None,
        )


class ChatService:
    """OpenAI-compatible ``POST /v1/chat/completions`` served by the backend the server holds."""

    def __init__(self, state: ServerState):
        self.state = state

    def check_model(self, name: str | None) -> None:
        if name is not None and name not in self.state.aliases:
            raise ApiError(
                f"model {name!r} is not served here; this server serves {self.state.model_name!r} (see /v1/models)",
                status=404,
                type="not_found_error",
                param="model",
            )

    def generation_config(self, req: ChatCompletionRequest) -> GenerationConfig:
        lim = self.state.limits
        if req.stream:
            raise ApiError("stream=true is not supported by this server; send stream=false", param="stream")
        unsupported = sorted(
            k
            for k, v in (req.model_extra or {}).items()
            if k not in IGNORED_CHAT_FIELDS and v not in (None, False, 0, [], {}, "")
        )
        if unsupported:
            raise ApiError(
                f"unsupported parameter(s) {', '.join(unsupported)}: this server honours model, messages, n, "
                "temperature, top_p, max_tokens (max_completion_tokens) and seed",
                param=unsupported[0],
            )
        if req.n > lim.max_n:
            raise ApiError(f"n={req.n} is above the limit of {lim.max_n} (max_n)", param="n")
        max_tokens = req.max_completion_tokens or req.max_tokens or lim.max_tokens
        if max_tokens > lim.max_tokens:
            param = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
            raise ApiError(f"{param}={max_tokens} is above the limit of {lim.max_tokens} (max_tokens)", param=param)
        return GenerationConfig(
            n=req.n, temperature=req.temperature, max_tokens=max_tokens, top_p=req.top_p, seed=req.seed
        )

    async def conversation(self, messages: list[dict[str, Any]]) -> Conversation:
        try:
            conv = Conversation.from_openai(messages)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ApiError(f"messages: {exc}", param="messages") from None
        lim = self.state.limits
        jobs: list[tuple[Any, str]] = []
        for i, m in enumerate(conv.messages):
            idx = [j for j, p in enumerate(m.parts) if isinstance(p, ImagePart)]
            if len(idx) > lim.max_images_per_message:
                raise ApiError(
                    f"messages[{i}]: {len(idx)} images, above the limit of {lim.max_images_per_message} per message "
                    "(max_images_per_message)",
                    param=f"messages[{i}]",
                )
            jobs += [(m.parts[j].image, f"messages[{i}].content[{j}].image_url") for j in idx]
        if len(jobs) > lim.max_images_per_request:
            raise ApiError(
                f"messages: {len(jobs)} images, above the limit of {lim.max_images_per_request} per request "
                "(max_images_per_request)",
                param="messages",
            )
        decoded = iter(await self.state.images.decode_many(jobs))
        out = Conversation()
        for m in conv.messages:
            parts: list[Part] = [ImagePart(next(decoded)) if isinstance(p, ImagePart) else p for p in m.parts]
            out.messages.append(Message(m.role, parts))
        return out

    async def complete(self, req: ChatCompletionRequest) -> ChatCompletionResponse:
        self.check_model(req.model)
        config = self.generation_config(req)
        conv = await self.conversation(req.messages)
        completions = await self.state.backend.agenerate([conv], config)
        if len(completions) != 1:
            raise ApiError(
                f"backend returned {len(completions)} completions for 1 conversation", status=500, type="backend_error"
            )
        done = completions[0]
        if done.error is not None:
            raise ApiError(f"backend failed: {done.error}", status=500, type="backend_error")
        if len(done.texts) != config.n:
            raise ApiError(
                f"backend returned {len(done.texts)} texts, {config.n} asked for", status=500, type="backend_error"
            )
        choices = [ChatChoice(index=i, message=ChatMessage(content=t)) for i, t in enumerate(done.texts)]
        return ChatCompletionResponse(model=self.state.model_name, choices=choices)


@dataclass
class Services:
    state: ServerState
    info: InfoService
    critique: CritiqueService
    compare: CompareService
    reward: RewardService
    chat: ChatService

    @classmethod
    def build(cls, state: ServerState, reward_batching: RewardBatchConfig | None = None) -> Services:
        return cls(
            state=state,
            info=InfoService(state),
            critique=CritiqueService(state),
            compare=CompareService(state),
            reward=RewardService(state, reward_batching),
            chat=ChatService(state),
        )
