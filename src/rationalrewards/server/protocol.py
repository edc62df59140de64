"""Wire types of the HTTP API: pydantic request and response models, the error body and the server limits.

Images travel as strings: a ``data:image/...;base64,...`` URL, bare base64, or (only when the server
was started with remote images allowed) an ``http(s)://`` URL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..schema import Critique, PairwiseCritique

# ---------------------------------------------------------------------------------------------------------------
# limits and errors


@dataclass
class ServerLimits:
    """What one request may ask of the server; a request over any limit gets a 4xx naming it."""

    max_body_bytes: int = 64 * 1024 * 1024
    """Largest request body in bytes (413 above it)."""
    max_batch_items: int = 256
    """Most items (or pairs) in one /v1/critique, /v1/compare or /v1/reward request."""
    max_images_per_request: int = 512
    """Most images in one request, over all its items or messages."""
    max_images_per_message: int = 8
    """Most images in one chat message."""
    max_image_bytes: int = 20 * 1024 * 1024
    """Largest encoded image (after base64 decoding) in bytes."""
    max_image_pixels: int = 4096 * 4096
    """Largest image in pixels (width * height), checked from the header before the pixels are decoded."""
    max_tokens: int = 4096
    """Largest ``max_tokens`` a chat completion may ask for (also its default)."""
    max_n: int = 16
    """Most samples (``n``) per chat completion."""
    remote_image_timeout_s: float = 10.0
    """Timeout of one remote image fetch (only with remote images allowed)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"server limit {f.name} must be a positive number, got {value!r}")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "backend_error",
    "server_error",
]


class ApiError(Exception):
    """An error with its HTTP status; the router turns it into an ``ErrorResponse``."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        type: ErrorType = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.headers = headers


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """``{"error": {"message", "type", "param", "code"}}``, as the OpenAI API writes errors."""

    error: ErrorInfo


# ---------------------------------------------------------------------------------------------------------------
# critique / compare / reward

_STRICT = ConfigDict(extra="forbid")


class CritiqueItem(BaseModel):
    model_config = _STRICT

    request: str = Field(min_length=1, description="the user's request (or edit instruction)")
    image: str = Field(min_length=1, description="the output image: data URL or base64 (or http(s) URL if allowed)")
    source: str | None = Field(default=None, description="the source image of an edit, same encodings")
    id: str | None = Field(default=None, description="echoed back; no meaning to the server")


class CritiqueRequest(BaseModel):
    model_config = _STRICT

    items: list[CritiqueItem] = Field(min_length=1)


class CritiqueResponse(BaseModel):
    object: Literal["critique.list"] = "critique.list"
    model: str
    critiques: list[Critique]


class PairItem(BaseModel):
    model_config = _STRICT

    request: str = Field(min_length=1)
    image_a: str = Field(min_length=1)
    image_b: str = Field(min_length=1)
    source: str | None = None
    id: str | None = None


class CompareRequest(BaseModel):
    model_config = _STRICT

    pairs: list[PairItem] = Field(min_length=1)
    both_orders: bool = Field(default=False, description="judge (A, B) and (B, A) and reconcile")


class CompareResponse(BaseModel):
    object: Literal["pairwise_critique.list"] = "pairwise_critique.list"
    model: str
    critiques: list[PairwiseCritique]


class RewardRequest(BaseModel):
    model_config = _STRICT

    items: list[CritiqueItem] = Field(min_length=1)
    return_critiques: bool = Field(default=False, description="include each full critique in the result")


class RewardResult(BaseModel):
    id: str | None = None
    reward: float | None = Field(description="aggregate reward in [0, 1]; null when nothing could be scored")
    scores: dict[str, float | None] = Field(description="per-dimension 1-4 scores (null: N/A, missing, not applicable)")
    parse_ok: bool
    parse_status: str
    error: str | None = Field(default=None, description="why this item has no (clean) reward")
    critique: Critique | None = None


class RewardResponse(BaseModel):
    object: Literal["reward.list"] = "reward.list"
    model: str
    results: list[RewardResult]
    n_failed: int = Field(description="items whose reward is null")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    uptime_s: float
    version: str


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible chat completions


class ChatCompletionRequest(BaseModel):
    """The subset of the OpenAI chat-completions request the server honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stream: bool | None = False


class ChatMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: Literal["stop", "length"] | None = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rationalrewards"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
