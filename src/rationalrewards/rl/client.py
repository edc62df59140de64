"""Client of the reward server's ``POST /v1/reward``, for trainers on another machine.

``RewardClient(base_url)`` sends samples (a ``Sample`` or a ``{"request", "image", "source"?, "id"?}`` dict;
images in any form ``images.load_image`` reads, sent as PNG data URLs) and returns the server's
``RewardResponse`` (``results``: reward, per-dimension scores, parse status, error, optional critique).
``score`` is sync, ``ascore`` async; large lists are split into requests of ``max_items_per_request`` (sent
``concurrency`` at a time by ``ascore``).

Retries: connection errors, read timeouts, unreadable bodies and HTTP 429 / 500 / 502 / 503 / 504 are retried
up to ``max_retries`` times. The wait honours the server's ``Retry-After`` (seconds or an HTTP date), else
grows exponentially from ``backoff_s`` with jitter; every wait is capped at ``max_backoff_s``. Other 4xx
answers (bad input, wrong API key) raise ``RewardClientError`` at once, with the server's message.

``remote_flow_grpo_reward(base_url)`` is the flow_grpo-style reward function (``rewards.FlowGRPOReward``)
scoring through the server, the way the RationalRewards / flow_grpo training scripts call a remote reward
server from the trainer (``base_url`` defaults to the ``REWARD_SERVER`` environment variable they use).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..images import to_data_url
from ..retry import parse_retry_after
from ..schema import Sample
from ..server.protocol import RewardResponse
from .rewards import FlowGRPOReward, ItemScore, TRLReward

log = logging.getLogger("rationalrewards.rl")

REWARD_SERVER_ENV = "REWARD_SERVER"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RewardClientError(RuntimeError):
    """The reward server refused the request, or kept failing after every retry."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class _Retry(Exception):
    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def normalize_base_url(base_url: str | None) -> str:
    """``host:port``, ``http://host:port`` or ``http://host:port/v1`` -> ``http://host:port``."""
    url = base_url or os.environ.get(REWARD_SERVER_ENV)
    if not url:
        raise ValueError(f"no reward server URL: pass base_url or set {REWARD_SERVER_ENV}")
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url.removesuffix("/v1")


def _image_field(image: Any) -> str:
    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    return to_data_url(image)


def encode_item(sample: Sample | Mapping[str, Any]) -> dict[str, Any]:
    """One ``/v1/reward`` item from a Sample or a ``{"request", "image", "source", "id"}`` dict."""
    if isinstance(sample, Sample):
        request, image, source, sid = sample.request, sample.image, sample.source, sample.id
    elif isinstance(sample, Mapping):
        unknown = sorted(set(sample) - {"request", "image", "source", "id"})
        if unknown:
            raise ValueError(f"unknown item field(s) {unknown}; items take request, image, source, id")
        request, image, source, sid = sample.get("request"), sample.get("image"), sample.get("source"), sample.get("id")
    else:
        raise TypeError(f"expected a Sample or a dict, got {type(sample).__name__}")
    if not request or image is None:
        raise ValueError("every item needs a request and an image")
    item: dict[str, Any] = {"request": request, "image": _image_field(image)}
    if source is not None:
        item["source"] = _image_field(source)
    if sid is not None:
        item["id"] = sid
    return item


class RewardClient:
    """Sync and async client of ``/v1/reward`` with retries and backoff (see the module docstring)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_items_per_request: int = 256,
        concurrency: int = 4,
    ):
        if max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {max_retries}")
        if max_items_per_request < 1 or concurrency < 1:
            raise ValueError("max_items_per_request and concurrency must be at least 1")
        self.base_url = normalize_base_url(base_url)
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_items_per_request = max_items_per_request
        self.concurrency = concurrency
        self.retries = 0  # retried attempts over this client's life
        self._client: Any = None
        self._aclients: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"RewardClient({self.base_url!r})"

    # ------------------------------------------------------------------ plumbing

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _sync(self) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self._headers)
        return self._client

    def _async(self) -> Any:
        import httpx

        loop = asyncio.get_running_loop()
        client = self._aclients.get(id(loop))
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
            self._aclients = {id(loop): client}  # a client is bound to its loop; forget older loops' clients
        return client

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_backoff_s, retry_after)
        return min(self.max_backoff_s, self.backoff_s * 2**attempt * random.uniform(0.5, 1.0))

    def _read(self, resp: Any, n_items: int) -> RewardResponse:
        if resp.status_code in RETRY_STATUSES:
            raise _Retry(
                f"HTTP {resp.status_code}: {_error_message(resp)}",
                resp.status_code,
                parse_retry_after(resp.headers.get("retry-after")),
            )
        if resp.status_code != 200:
            raise RewardClientError(
                f"reward server answered HTTP {resp.status_code}: {_error_message(resp)}", resp.status_code
            )
        try:
            out = RewardResponse.model_validate(resp.json())
        except ValueError as exc:
            raise _Retry(f"unreadable reward response: {str(exc)[:200]}", resp.status_code) from None
        if len(out.results) != n_items:
            raise RewardClientError(f"reward server returned {len(out.results)} results for {n_items} items", 200)
        return out

    def _give_up(self, last: _Retry, attempts: int) -> RewardClientError:
        return RewardClientError(
            f"reward request to {self.base_url} failed after {attempts} attempt(s): {last.reason}",
            last.status,
            attempts,
        )

    def _post_sync(self, payload: dict[str, Any]) -> RewardResponse:
        import httpx

        url = f"{self.base_url}/v1/reward"
        for attempt in range(self.max_retries + 1):
            try:
                return self._read(self._sync().post(url, json=payload), len(payload["items"]))
            except _Retry as exc:
                last = exc
            except httpx.TransportError as exc:
                last = _Retry(f"{type(exc).__name__}: {exc}")
            if attempt == self.max_retries:
                break
            delay = self._delay(attempt, last.retry_after)
            log.info("reward request failed (%s); retry %d in %.2f s", last.reason, attempt + 1, delay)
            self.retries += 1
            time.sleep(delay)
        raise self._give_up(last, self.max_retries + 1)

    async def _post_async(self, payload: dict[str, Any]) -> RewardResponse:
        import httpx

        url = f"{self.base_url}/v1/reward"
        for attempt in range(self.max_retries + 1):
            try:
                return self._read(await self._async().post(url, json=payload), len(payload["items"]))
            except _Retry as exc:
                last = exc
            except httpx.TransportError as exc:
                last = _Retry(f"{type(exc).__name__}: {exc}")
            if attempt == self.max_retries:
                break
            delay = self._delay(attempt, last.retry_after)
            log.info("reward request failed (%s); retry %d in %.2f s", last.reason, attempt + 1, delay)
            self.retries += 1
            await asyncio.sleep(delay)
        raise self._give_up(last, self.max_retries + 1)

    def _payloads(self, samples: Sequence[Any], return_critiques: bool) -> list[dict[str, Any]]:
        items = [encode_item(s) for s in samples]
        step = self.max_items_per_request
        return [
            {"items": items[i : i + step], "return_critiques": return_critiques} for i in range(0, len(items), step)
        ]

    @staticmethod
    def _merge(parts: list[RewardResponse]) -> RewardResponse:
        results = [r for p in parts for r in p.results]
        return RewardResponse(model=parts[0].model, results=results, n_failed=sum(p.n_failed for p in parts))

    # ------------------------------------------------------------------ public

    def score(self, samples: Sequence[Any], return_critiques: bool = False) -> RewardResponse:
        """Rewards for ``samples`` (one result per sample, in order)."""
        samples = list(samples)
        if not samples:
            raise ValueError("no samples to score")
        return self._merge([self._post_sync(p) for p in self._payloads(samples, return_critiques)])

    async def ascore(self, samples: Sequence[Any], return_critiques: bool = False) -> RewardResponse:
        """Async ``score``: requests of ``max_items_per_request`` items, ``concurrency`` at a time."""
        samples = list(samples)
        if not samples:
            raise ValueError("no samples to score")
        payloads = await asyncio.to_thread(self._payloads, samples, return_critiques)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(p: dict[str, Any]) -> RewardResponse:
            async with gate:
                return await self._post_async(p)

        return self._merge(list(await asyncio.gather(*(one(p) for p in payloads))))

    def item_scores(self, samples: list[Sample], return_critiques: bool = False) -> list[ItemScore]:
        """The scorer interface the reward-function adapters use."""
        out = self.score(samples, return_critiques=return_critiques)
        return [ItemScore(r.reward, dict(r.scores), r.parse_status, r.error, r.critique) for r in out.results]

    def metrics(self) -> dict[str, Any]:
        """The server's ``GET /metrics`` JSON."""
        resp = self._sync().get(f"{self.base_url}/metrics")
        if resp.status_code != 200:
            raise RewardClientError(f"GET /metrics answered HTTP {resp.status_code}: {_error_message(resp)}")
        return resp.json()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        for client in self._aclients.values():
            await client.aclose()
        self._aclients = {}

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self.close()


def _error_message(resp: Any) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("message", body["error"]))
    except ValueError:
        pass
    return resp.text[:200] or "(empty body)"


def remote_flow_grpo_reward(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    timeout: float = 300.0,
    max_retries: int = 5,
    **options: Any,
) -> FlowGRPOReward:
    """A flow_grpo / DiffusionNFT reward function scoring through a reward server (``options``: see
    ``rewards.FlowGRPOReward``). ``base_url`` defaults to ``$REWARD_SERVER``."""
    client = RewardClient(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
    return FlowGRPOReward(client, **options)


def remote_trl_reward(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    timeout: float = 300.0,
    max_retries: int = 5,
    **options: Any,
) -> TRLReward:
    """A TRL reward function scoring through a reward server (``options``: see ``rewards.TRLReward``)."""
    client = RewardClient(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
    return TRLReward(client, **options)
