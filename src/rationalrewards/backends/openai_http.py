"""Any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp server, hosted APIs), over httpx.

Async with a bound on requests in flight, per-request timeouts, retries with exponential backoff and full
jitter (``Retry-After`` honoured), several base URLs (round-robin or least-loaded, a failing URL is avoided
for a while), and per-item errors instead of failed batches. Spec: ``openai:URL[,URL...]``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import ssl
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ..conversation import Conversation
from ..retry import backoff_delay, parse_retry_after
from .base import Backend, Completion, GenerationConfig, run_sync

__all__ = ["OpenAIBackend", "OpenAIBackendError", "OpenAIStats", "from_spec"]

log = logging.getLogger(__name__)

Routing = Literal["least-loaded", "round-robin"]
RETRYABLE_4XX = frozenset({408, 409, 429})
MANAGED_KEYS = frozenset({"model", "messages", "n", "stream"})
# httpcore's pool does O(connections x requests) work on every request and response, so one pool per 8
# requests in flight keeps the client's cost per request flat as concurrency grows
SHARD_SIZE = 2


class OpenAIBackendError(RuntimeError):
    """The endpoint cannot be used at all (e.g. the model name could not be discovered)."""


@dataclass
class OpenAIStats:
    """Counters of one backend's traffic; read ``backend.stats`` at any time, ``as_dict()`` for a summary."""

    requests: int = 0  # HTTP requests sent to chat/completions
    successes: int = 0
    retries: int = 0
    extra_requests: int = 0  # sent because a server returned fewer choices than the n asked for
    items: int = 0
    items_failed: int = 0
    truncated: int = 0  # choices that ended with finish_reason == "length"
    attempt_failures: Counter = field(default_factory=Counter)  # reason -> failed attempts
    item_failures: Counter = field(default_factory=Counter)  # reason of the last failure -> failed items
    per_url: Counter = field(default_factory=Counter)  # base URL -> requests sent
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=10_000))  # successful requests, newest last

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)

        def q(p: float) -> float | None:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        return {
            "requests": self.requests,
            "successes": self.successes,
            "retries": self.retries,
            "extra_requests": self.extra_requests,
            "items": self.items,
            "items_failed": self.items_failed,
            "truncated": self.truncated,
            "attempt_failures": dict(self.attempt_failures),
            "item_failures": dict(self.item_failures),
            "per_url": dict(self.per_url),
            "latency_s": {
                "mean": statistics.fmean(lat) if lat else None,
                "p50": q(0.5),
                "p95": q(0.95),
                "max": lat[-1] if lat else None,
            },
        }


@dataclass
class _Failure:
    reason: str  # "http_503", "timeout", "connection", "malformed"
    detail: str
    retryable: bool = True
    retry_after: float | None = None


@dataclass
class _Health:
    in_flight: int = 0
    consecutive_failures: int = 0
    penalty_until: float = 0.0  # prefer other URLs until then
    blocked_until: float = 0.0  # the server asked us to wait (Retry-After)


@dataclass
class _Shard:
    client: httpx.AsyncClient
    in_flight: int = 0


@dataclass
class _LoopState:
    """What belongs to one event loop: the HTTP clients (sharded per base URL) and the semaphores."""

    make_client: Callable[[], httpx.AsyncClient]
    request_sem: asyncio.Semaphore
    item_sem: asyncio.Semaphore
    model_lock: asyncio.Lock
    shards: dict[str, list[_Shard]] = field(default_factory=dict)
    max_shards: int = 1

    def shard(self, base: str) -> _Shard:
        """The least busy client for ``base``; a new one while every client already has SHARD_SIZE in flight."""
        shards = self.shards.setdefault(base, [])
        best = min(shards, key=lambda sh: sh.in_flight, default=None)
        if best is None or (best.in_flight >= SHARD_SIZE and len(shards) < self.max_shards):
            best = _Shard(self.make_client())
            shards.append(best)
        return best

    def clients(self) -> list[httpx.AsyncClient]:
        return [sh.client for shards in self.shards.values() for sh in shards]

    async def aclose(self) -> None:
        clients, self.shards = self.clients(), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200].strip()
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"):
        return str(body["error"]["message"])[:200]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"][:200]
    return str(body)[:200]


def _choice_text(choice: Any) -> str | None:
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers answer with content parts
        texts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return content if isinstance(content, str) else None


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ValueError(f"base URL must start with http:// or https:// (e.g. http://localhost:8000/v1), got {url!r}")
    return url


class OpenAIBackend(Backend):
    """A chat-completions client over one or more base URLs (each usually ending in ``/v1``).

    ``concurrency`` bounds HTTP requests in flight across all URLs (per event loop); ``timeout_s`` bounds each
    request; failed attempts (429, 5xx, 408, 409, timeouts, connection errors, malformed bodies) are retried
    up to ``max_retries`` times after a full-jitter exponential backoff, or after ``Retry-After`` (capped at
    ``backoff_max_s``). When ``model`` is None it is read once from ``GET {base}/models``. If a server returns
    fewer choices than ``n``, the rest come from extra requests (with ``seed + k`` when a seed is set).
    An item that still fails gets ``Completion.error`` (reason, status, attempts; any samples it did get stay
    in ``texts``); the batch never raises for one item. ``stats`` counts requests, retries, failures by reason
    and latency. One set of HTTP clients per event loop; ``close()`` / ``aclose()`` release them.
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        model: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 64,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        routing: Routing = "least-loaded",
        extra_body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("OpenAIBackend needs at least one base URL")
        self.base_urls = [_normalise_url(u) for u in urls]
        if len(set(self.base_urls)) != len(self.base_urls):
            raise ValueError(f"duplicate base URLs: {self.base_urls}")
        if timeout is not None:  # alias
            timeout_s = timeout
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff_base_s < 0 or backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must be >= 0")
        if routing not in ("least-loaded", "round-robin"):
            raise ValueError(f"routing must be 'least-loaded' or 'round-robin', got {routing!r}")
        extra_body = dict(extra_body or {})
        if clash := sorted(MANAGED_KEYS & set(extra_body)):
            raise ValueError(f"extra_body may not set {clash}: use model= and GenerationConfig(n=...) instead")
        self._model = model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env) or None
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.routing: Routing = routing
        self.extra_body = extra_body
        self.stats = OpenAIStats()
        self._health = {u: _Health() for u in self.base_urls}
        self._rr = itertools.count()
        self._rng = random.Random()
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._states_lock = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None

    # -- identity ---------------------------------------------------------------------------------
    @property
    def model(self) -> str | None:
        """The model name sent with every request (None until discovered)."""
        return self._model

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"openai:{self._model or '?'}@{','.join(self.base_urls)}"

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.name!r}, concurrency={self.concurrency}, routing={self.routing!r})"

    # -- client per event loop ------------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._states_lock:
            st = self._states.get(loop)
            if st is None:
                for old in [lp for lp in self._states if lp.is_closed()]:
                    del self._states[old]  # its sockets went with its loop
                if self._ssl_context is None:  # ~30 ms to build; shared by every client this backend makes
                    self._ssl_context = httpx.create_ssl_context()
                st = _LoopState(
                    make_client=self._make_client,
                    request_sem=asyncio.Semaphore(self.concurrency),
                    item_sem=asyncio.Semaphore(2 * self.concurrency),
                    model_lock=asyncio.Lock(),
                    max_shards=-(-self.concurrency // SHARD_SIZE),
                )
                self._states[loop] = st
            return st

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=SHARD_SIZE)
        return httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(self.timeout_s), limits=limits, verify=self._ssl_context
        )

    async def aclose(self) -> None:
        """Close the clients that belong to the running event loop."""
        with self._states_lock:
            st = self._states.pop(asyncio.get_running_loop(), None)
        if st is not None:
            await st.aclose()

    def close(self) -> None:
        """Close every client this backend opened (each on its own loop where that loop still lives)."""
        with self._states_lock:
            states = list(self._states.items())
            self._states.clear()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, st in states:
            if loop.is_closed():
                continue
            if loop is running:
                task = loop.create_task(st.aclose())
                task.add_done_callback(lambda t: t.exception())
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(st.aclose(), loop).result(10)
            else:
                loop.run_until_complete(st.aclose())

    async def __aenter__(self) -> OpenAIBackend:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- public calls ---------------------------------------------------------------------------
    def generate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        async def run() -> list[Completion]:
            try:
                return await self.agenerate(conversations, config)
            finally:
                await self.aclose()  # the loop run_sync made dies with this call

        return run_sync(run())

    async def agenerate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        config = config or GenerationConfig()
        if config.n < 1:
            raise ValueError(f"GenerationConfig.n must be >= 1, got {config.n}")
        if not conversations:
            return []
        st = self._state()
        await self.aresolve_model()
        return list(await asyncio.gather(*(self._item(st, conv, config) for conv in conversations)))

    async def aresolve_model(self) -> str:
        """The model name, read once from ``GET {base}/models`` (first id) when not given."""
        if self._model:
            return self._model
        st = self._state()
        async with st.model_lock:
            if self._model:
                return self._model
            errors: list[str] = []
            for attempt in range(self.max_retries + 1):
                if attempt:
                    await asyncio.sleep(self._backoff(attempt))
                retryable = False
                for base in self.base_urls:
                    model, err, again = await self._discover(st, base)
                    if model:
                        self._model = model
                        log.info("openai backend: using model %r from %s/models", model, base)
                        return model
                    errors.append(err)
                    retryable = retryable or again
                if not retryable:
                    break
            raise OpenAIBackendError(
                f"could not discover the model name from GET <base>/models ({'; '.join(errors[-3:])}); "
                "pass model= (or --model) explicitly"
            )

    async def _discover(self, st: _LoopState, base: str) -> tuple[str | None, str, bool]:
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await st.shard(base).client.get(f"{base}/models")
        except (TimeoutError, httpx.TimeoutException):
            return None, f"{base}/models: timed out after {self.timeout_s:g}s", True
        except httpx.RequestError as exc:
            return None, f"{base}/models: {type(exc).__name__}: {exc}", True
        if resp.status_code != 200:
            retry = resp.status_code >= 500 or resp.status_code in RETRYABLE_4XX
            return None, f"{base}/models: HTTP {resp.status_code} {_error_text(resp)}", retry
        try:
            data = resp.json()["data"]
            model = data[0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None, f"{base}/models: no model id in {resp.text[:120]!r}", False
        if not isinstance(model, str) or not model:
            return None, f"{base}/models: bad model id {model!r}", False
        return model, "", False

    # -- one conversation -----------------------------------------------------------------------
    async def _item(self, st: _LoopState, conv: Conversation, config: GenerationConfig) -> Completion:
        async with st.item_sem:  # bounds encoded payloads held in memory for very large batches
            self.stats.items += 1
            try:
                has_images = bool(conv.images())
                messages = await asyncio.to_thread(conv.to_openai) if has_images else conv.to_openai()
            except Exception as exc:
                return self._failed_item("bad_input", f"could not encode the conversation: {type(exc).__name__}: {exc}")
            result = await self._request(st, messages, config, config.n, config.seed)
            if isinstance(result, _Failure):
                return self._failed_item(result.reason, result.detail)
            texts = result[: config.n]
            missing = config.n - len(texts)
            if missing <= 0:
                return Completion(texts=texts)
            # the server ignored n: ask for the rest one at a time, concurrently
            self.stats.extra_requests += missing
            seeds = [None if config.seed is None else config.seed + len(texts) + k for k in range(missing)]
            more = await asyncio.gather(*(self._request(st, messages, config, 1, s) for s in seeds))
            errors = [m for m in more if isinstance(m, _Failure)]
            for m in more:
                if not isinstance(m, _Failure):
                    texts.extend(m[:1])
            if errors:
                detail = f"got {len(texts)} of {config.n} samples; {errors[0].detail}"
                return self._failed_item(errors[0].reason, detail, texts)
            return Completion(texts=texts)

    def _failed_item(self, reason: str, detail: str, texts: list[str] | None = None) -> Completion:
        self.stats.items_failed += 1
        self.stats.item_failures[reason] += 1
        return Completion(texts=texts or [], error=detail)

    def _payload(self, messages: list[dict], config: GenerationConfig, n: int, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "n": n,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        body.update(self.extra_body)
        return body

    async def _request(
        self, st: _LoopState, messages: list[dict], config: GenerationConfig, n: int, seed: int | None
    ) -> list[str] | _Failure:
        """One chat-completions call with retries; the texts, or the last failure once retries are spent."""
        payload = self._payload(messages, config, n, seed)
        last: _Failure | None = None
        last_url: str | None = None
        attempts = 0
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self._retry_delay(attempt))
            async with st.request_sem:
                url = self._pick_url(avoid=last_url)
                result = await self._attempt(st, url, payload)
            attempts += 1
            if not isinstance(result, _Failure):
                return result
            self.stats.attempt_failures[result.reason] += 1
            last, last_url = result, url
            if not result.retryable:
                break
            self._penalise(url, result)
            log.debug("openai backend: attempt %d failed (%s), retrying", attempts, result.detail)
        assert last is not None
        word = "attempt" if attempts == 1 else "attempts"
        retry_note = "" if last.retryable else ", not retried"
        return _Failure(last.reason, f"{last.detail} ({attempts} {word}{retry_note})", last.retryable)

    async def _attempt(self, st: _LoopState, base: str, payload: dict[str, Any]) -> list[str] | _Failure:
        health = self._health[base]
        shard = st.shard(base)
        health.in_flight += 1
        shard.in_flight += 1
        self.stats.requests += 1
        self.stats.per_url[base] += 1
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await shard.client.post(f"{base}/chat/completions", json=payload)
        except (TimeoutError, httpx.TimeoutException):
            return _Failure("timeout", f"timeout: no answer within {self.timeout_s:g}s from {base}")
        except httpx.RequestError as exc:
            return _Failure("connection", f"connection error to {base}: {type(exc).__name__}: {exc}".rstrip(": "))
        finally:
            health.in_flight -= 1
            shard.in_flight -= 1
        latency = time.perf_counter() - t0
        code = resp.status_code
        if not 200 <= code < 300:
            retryable = code >= 500 or code in RETRYABLE_4XX
            detail = f"HTTP {code} from {base}: {_error_text(resp)}"
            if code in (401, 403):
                detail += f" (check the API key: pass api_key= or set ${self.api_key_env})"
            elif code == 404:
                detail += " (check the base URL: OpenAI-compatible servers usually serve under /v1)"
            retry_after = parse_retry_after(resp.headers.get("retry-after")) if code in (429, 503) else None
            return _Failure(f"http_{code}", detail, retryable, retry_after)
        try:
            data = resp.json()
        except ValueError:
            return _Failure("malformed", f"malformed reply from {base}: body is not JSON: {resp.text[:120]!r}")
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            return _Failure("malformed", f"malformed reply from {base}: no choices in {resp.text[:120]!r}")
        choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        texts = [_choice_text(c) for c in choices]
        if any(t is None for t in texts):
            return _Failure("malformed", f"malformed reply from {base}: a choice has no message content")
        self.stats.truncated += sum(1 for c in choices if c.get("finish_reason") == "length")
        self.stats.successes += 1
        self.stats.latencies_s.append(latency)
        health.consecutive_failures = 0
        health.penalty_until = 0.0
        return texts  # type: ignore[return-value]

    # -- routing and backoff --------------------------------------------------------------------
    def _pick_url(self, avoid: str | None = None) -> str:
        """Prefer URLs not asked to wait, not the one that just failed this request, and not recently failing."""
        urls = self.base_urls
        if len(urls) == 1:
            return urls[0]
        now = time.monotonic()
        free = [u for u in urls if self._health[u].blocked_until <= now]
        tiers = (
            [u for u in free if u != avoid and self._health[u].penalty_until <= now],
            [u for u in free if u != avoid],
            free,
            urls,
        )
        candidates = next(t for t in tiers if t)
        start = next(self._rr) % len(urls)
        ordered = [u for u in urls[start:] + urls[:start] if u in candidates]
        if self.routing == "round-robin":
            return ordered[0]
        return min(ordered, key=lambda u: self._health[u].in_flight)  # min keeps the first of equals

    def _penalise(self, base: str, failure: _Failure) -> None:
        health = self._health[base]
        health.consecutive_failures += 1
        now = time.monotonic()
        penalty = min(self.backoff_max_s, self.backoff_base_s * 2 ** (health.consecutive_failures - 1))
        health.penalty_until = max(health.penalty_until, now + penalty)
        if failure.retry_after is not None:
            health.blocked_until = max(health.blocked_until, now + min(failure.retry_after, self.backoff_max_s))

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(attempt-1))]."""
        return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, full_jitter=True, rng=self._rng)

    def _retry_delay(self, attempt: int) -> float:
        delay = self._backoff(attempt)
        now = time.monotonic()
        if all(self._health[u].blocked_until > now for u in self.base_urls):
            delay = max(delay, min(self._health[u].blocked_until for u in self.base_urls) - now)
        return delay


def from_spec(rest: str, **kwargs: Any) -> OpenAIBackend:
    """``openai:URL[,URL...]`` (``openai:`` alone reads ``$OPENAI_BASE_URL``); kwargs go to ``OpenAIBackend``."""
    urls = [u.strip() for u in rest.split(",") if u.strip()]
    if not urls and os.environ.get("OPENAI_BASE_URL"):
        urls = [os.environ["OPENAI_BASE_URL"]]
    if not urls:
        raise ValueError("spec 'openai:' needs base URLs, e.g. 'openai:http://localhost:8000/v1' (or $OPENAI_BASE_URL)")
    return OpenAIBackend(urls, **kwargs)
