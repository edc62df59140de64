"""An OpenAI-compatible images endpoint: ``POST {base}/images/generations`` and ``POST {base}/images/edits``.

Edits send the source image as multipart form data; responses are read from ``b64_json`` (or a
``url``, fetched). Requests run concurrently (bounded) and retry with backoff on 429, 5xx and
connection errors, honouring ``Retry-After``. Hosted APIs take no seed: ``send_seed=True`` adds a
``seed`` field for servers that accept one (many local ones do); otherwise seeds are recorded only.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
from typing import Any

from PIL import Image

from ...backends.base import run_sync
from ...images import load_image, to_png_bytes
from ...retry import RETRY_STATUSES, backoff_delay, parse_retry_after
from .base import Generator, GeneratorError, coerce, parse_spec_query

MAX_WAIT_S = 60.0  # the longest wait between attempts, whatever Retry-After says


class OpenAIImagesGenerator(Generator):
    """Images from an OpenAI-compatible endpoint; ``base_url`` is e.g. ``http://localhost:8000/v1``."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        size: str | None = None,
        response_format: str | None = "b64_json",
        send_seed: bool = False,
        edit: bool = True,
        extra: dict[str, Any] | None = None,
        concurrency: int = 4,
        timeout: float = 300.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
    ):
        super().__init__()
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"images endpoint needs an http(s) base URL, got {base_url!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.size = size
        self.response_format = response_format
        self.send_seed = send_seed
        self.supports_edit = edit
        self.extra = dict(extra or {})
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.name = f"openai-images:{self.base_url}" + (f" model={model}" if model else "")

    def _fields(self, request: str, seed: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"prompt": request, "n": 1, **self.extra}
        if self.model:
            fields["model"] = self.model
        if self.size:
            fields["size"] = self.size
        if self.response_format:
            fields["response_format"] = self.response_format
        if self.send_seed:
            fields["seed"] = seed
        return fields

    def _generate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        return run_sync(self._agenerate(requests, seeds, sources))

    async def _agenerate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        sem = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, headers=headers) as client:

            async def one(request: str, seed: int, source: Any | None) -> Image.Image:
                async with sem:
                    return await self._one(client, request, seed, source)

            return list(
                await asyncio.gather(*(one(r, s, src) for r, s, src in zip(requests, seeds, sources, strict=True)))
            )

    async def _one(self, client: Any, request: str, seed: int, source: Any | None) -> Image.Image:
        import httpx

        fields = self._fields(request, seed)
        if source is None:
            url, kwargs = f"{self.base_url}/images/generations", {"json": fields}
        else:
            url = f"{self.base_url}/images/edits"
            data = {k: str(v) for k, v in fields.items()}
            kwargs = {"data": data, "files": {"image": ("image.png", to_png_bytes(source), "image/png")}}
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = await client.post(url, **kwargs)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                delay = None
            else:
                if resp.status_code == 200:
                    return await self._read(client, resp)
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in RETRY_STATUSES:
                    raise GeneratorError(f"{url}: {last}")
                delay = parse_retry_after(resp.headers.get("retry-after"))
            if attempt < self.max_retries:
                if delay is None:
                    delay = backoff_delay(attempt + 1, self.backoff_s, MAX_WAIT_S)
                await asyncio.sleep(min(delay, MAX_WAIT_S))
        raise GeneratorError(f"{url}: gave up after {self.max_retries + 1} attempts; last: {last}")

    async def _read(self, client: Any, resp: Any) -> Image.Image:
        try:
            item = resp.json()["data"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise GeneratorError(f"images endpoint answered without data[0]: {resp.text[:300]}") from None
        if item.get("b64_json"):
            return load_image(base64.b64decode(item["b64_json"]))
        if item.get("url"):
            got = await client.get(item["url"])
            got.raise_for_status()
            return load_image(got.content)
        raise GeneratorError("images endpoint answered with neither b64_json nor url")


def from_spec(rest: str, **kwargs: Any) -> OpenAIImagesGenerator:
    """``URL[?model=gpt-image-1&size=1024x1024&send_seed&quality=high]``; unknown keys go to the request body.

    ``response_format=`` (empty) omits that field, for APIs that reject it (gpt-image-1 always answers b64_json).
    """
    url, opts = parse_spec_query(rest)
    init: dict[str, Any] = {}
    extra = dict(kwargs.pop("extra", None) or {})
    for key, value in opts.items():
        if key in ("model", "size", "api_key", "response_format"):
            init[key] = value or None
        elif key in ("send_seed", "edit"):
            init[key] = coerce(value)
        elif key in ("concurrency", "max_retries"):
            init[key] = int(value)
        elif key in ("timeout", "backoff_s"):
            init[key] = float(value)
        else:
            extra[key] = coerce(value)
    init_keys = set(inspect.signature(OpenAIImagesGenerator.__init__).parameters) - {"self", "base_url", "extra"}
    for key, value in kwargs.items():  # generator options, else fields of the request body
        (init if key in init_keys else extra)[key] = value
    return OpenAIImagesGenerator(url, extra=extra, **init)
