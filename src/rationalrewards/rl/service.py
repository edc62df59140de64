"""The RL-grade reward service: a micro-batching queue in front of one ``RationalRewardModel``.

``RewardBatcher.submit(samples)`` puts a request's samples on a bounded queue and waits for their scores. A
worker takes up to ``max_batch`` queued samples, from however many requests, into one backend call: it waits
at most ``window_ms`` after the oldest queued sample arrived for the batch to fill (``window_ms=0`` and
``max_batch=1`` make it unbatched). Up to ``max_concurrency`` backend calls run at once (raise it for a
backend that spreads calls over several servers).

- **Backpressure**: a request that would take the queue above ``max_queue`` samples is refused at once with
  ``QueueFullError`` (its ``retry_after_s`` estimates when room frees up); the server answers 429 with
  ``Retry-After``.
- **Timeout**: a request still unanswered after ``timeout_s`` raises ``RewardTimeoutError`` (the server
  answers 504); its samples still waiting in the queue are withdrawn and never scored.
- **Failures**: a critique that fails to parse is a result with ``reward=None`` (counted in the metrics); an
  exception raised by the backend for a whole batch is raised to every request in that batch.

``metrics()`` returns counters, the batch-size histogram and latency percentiles as a dict (the server's
``GET /metrics``); ``prometheus()`` renders the same in the Prometheus text format. One batcher belongs to
one running event loop at a time (it starts afresh when used from a new loop after the old one stopped).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..schema import Sample

if TYPE_CHECKING:
    from ..model import RationalRewardModel, Score


class QueueFullError(Exception):
    """The queue has no room for the request; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RewardTimeoutError(TimeoutError):
    """A request was not answered within its timeout."""


class RequestTooLargeError(ValueError):
    """A request has more samples than the whole queue holds (it could never be accepted)."""


class BatcherClosedError(RuntimeError):
    """The batcher was closed; no more requests are taken."""


@dataclass
class RewardBatchConfig:
    """How the reward server batches ``/v1/reward`` (``RewardBatcher``'s settings)."""

    max_batch: int = 32
    """Most samples in one backend call."""
    window_ms: float = 15.0
    """How long after the oldest queued sample arrived to wait for the batch to fill (0: no wait)."""
    max_queue: int = 1024
    """Most samples waiting; a request that does not fit is refused (HTTP 429 with Retry-After)."""
    timeout_s: float = 300.0
    """Per-request timeout (HTTP 504 after it)."""
    max_concurrency: int = 1
    """Backend calls running at once."""


@dataclass
class _Item:
    sample: Sample
    future: asyncio.Future
    enqueued: float


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    s = sorted(values)

    def rank(q: float) -> float:  # nearest-rank percentile
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]

    return {
        "p50": round(rank(0.50) * 1000, 3),
        "p95": round(rank(0.95) * 1000, 3),
        "p99": round(rank(0.99) * 1000, 3),
        "mean": round(sum(s) / len(s) * 1000, 3),
        "max": round(s[-1] * 1000, 3),
    }


class RewardBatcher:
    """Micro-batching, bounded, timed queue over ``model`` (a RationalRewardModel, a Backend or a spec string)."""

    def __init__(
        self,
        model: Any,
        max_batch: int = 32,
        window_ms: float = 15.0,
        max_queue: int = 1024,
        timeout_s: float = 300.0,
        max_concurrency: int = 1,
        latency_samples: int = 10_000,
    ):
        from ..backends import Backend
        from ..model import RationalRewardModel

        if isinstance(model, (str, Backend)):
            model = RationalRewardModel(model)
        if not hasattr(model, "ascore"):
            raise TypeError(f"RewardBatcher needs a RationalRewardModel, a Backend or a spec, got {type(model)}")
        for name, value in (("max_batch", max_batch), ("max_queue", max_queue), ("max_concurrency", max_concurrency)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if window_ms < 0:
            raise ValueError(f"window_ms must not be negative, got {window_ms}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.model: RationalRewardModel = model
        self.max_batch = max_batch
        self.window_s = window_ms / 1000.0
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self._queue: deque[_Item] = deque()
        self._arrived: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._worker: asyncio.Task | None = None
        self._batches: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._started = time.time()
        # metrics
        self._c: Counter[str] = Counter()
        self._status: Counter[str] = Counter()
        self._batch_sizes: Counter[int] = Counter()
        self._latency: deque[float] = deque(maxlen=latency_samples)
        self._batch_latency: deque[float] = deque(maxlen=latency_samples)
        self._queue_wait: deque[float] = deque(maxlen=latency_samples)
        self._in_flight = 0
        self._queue_peak = 0

    @classmethod
    def from_config(cls, model: Any, config: RewardBatchConfig | None = None) -> RewardBatcher:
        return cls(model, **asdict(config or RewardBatchConfig()))

    # ------------------------------------------------------------------ public

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    async def submit(self, samples: Sequence[Sample], timeout_s: float | None = None) -> list[Score]:
        """Score ``samples`` through the shared queue; one ``Score`` per sample, in order."""
        samples = list(samples)
        if self._closed:
            raise BatcherClosedError("the reward batcher is closed")
        if not samples:
            return []
        if len(samples) > self.max_queue:
            raise RequestTooLargeError(
                f"{len(samples)} samples in one request, more than the reward queue holds ({self.max_queue})"
            )
        self._ensure_worker()
        if len(self._queue) + len(samples) > self.max_queue:
            self._c["rejections"] += 1
            retry = self._retry_after(len(samples))
            raise QueueFullError(
                f"reward queue is full ({len(self._queue)} of {self.max_queue} samples queued); "
                f"retry after {retry:g} s",
                retry,
            )
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        items = [_Item(s, loop.create_future(), t0) for s in samples]
        self._queue.extend(items)
        self._queue_peak = max(self._queue_peak, len(self._queue))
        self._c["requests"] += 1
        self._c["items"] += len(items)
        assert self._arrived is not None
        self._arrived.set()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            results = await asyncio.wait_for(asyncio.gather(*(it.future for it in items)), timeout)
        except asyncio.TimeoutError:
            self._c["timeouts"] += 1
            raise RewardTimeoutError(f"reward request not answered within {timeout:g} s") from None
        except Exception:
            self._c["failed_requests"] += 1
            raise
        finally:
            if not all(it.future.done() and not it.future.cancelled() for it in items):
                for it in items:
                    it.future.cancel()  # withdrawn: the worker skips them
                self._queue = deque(it for it in self._queue if not it.future.done())
        self._latency.append(time.perf_counter() - t0)
        for r in results:
            self._status[r.critique.parse_status] += 1
            if r.reward is None:
                self._c["parse_failures"] += 1
        return list(results)

    def metrics(self) -> dict[str, Any]:
        """Counters, batch sizes, latencies (ms) and queue state, as JSON-ready values."""
        n_batches = sum(self._batch_sizes.values())
        n_batched = sum(size * count for size, count in self._batch_sizes.items())
        return {
            "requests": self._c["requests"],
            "items": self._c["items"],
            "batches": n_batches,
            "batch_size": {
                "mean": round(n_batched / n_batches, 3) if n_batches else None,
                "max": max(self._batch_sizes) if self._batch_sizes else None,
                "histogram": {str(k): v for k, v in sorted(self._batch_sizes.items())},
            },
            "latency_ms": _percentiles(self._latency),
            "batch_latency_ms": _percentiles(self._batch_latency),
            "queue_wait_ms": _percentiles(self._queue_wait),
            "queue_depth": len(self._queue),
            "queue_depth_max": self._queue_peak,
            "in_flight_batches": self._in_flight,
            "parse_failures": self._c["parse_failures"],
            "parse_status": dict(self._status),
            "rejections": self._c["rejections"],
            "timeouts": self._c["timeouts"],
            "batch_errors": self._c["batch_errors"],
            "failed_requests": self._c["failed_requests"],
            "config": {
                "max_batch": self.max_batch,
                "window_ms": self.window_s * 1000,
                "max_queue": self.max_queue,
                "timeout_s": self.timeout_s,
                "max_concurrency": self.max_concurrency,
            },
            "uptime_s": round(time.time() - self._started, 3),
        }

    def prometheus(self, prefix: str = "rationalrewards_reward") -> str:
        """The metrics in the Prometheus text exposition format."""
        m = self.metrics()
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
            lines.append(f"# HELP {prefix}_{name} {help_text}")
            lines.append(f"# TYPE {prefix}_{name} {kind}")
            suffix = "_bucket" if kind == "histogram" else ""
            for labels, value in samples:
                if value is not None:
                    lines.append(f"{prefix}_{name}{suffix}{labels} {value}")

        for name, help_text in (
            ("requests", "reward requests accepted"),
            ("items", "samples accepted"),
            ("batches", "backend calls made"),
            ("parse_failures", "samples whose critique gave no reward"),
            ("rejections", "requests refused because the queue was full"),
            ("timeouts", "requests that timed out"),
            ("batch_errors", "backend calls that raised"),
        ):
            metric(f"{name}_total", "counter", help_text, [("", m[name])])
        metric("queue_depth", "gauge", "samples waiting in the queue", [("", m["queue_depth"])])
        metric("in_flight_batches", "gauge", "backend calls running", [("", m["in_flight_batches"])])
        cumulative, buckets = 0, []
        for size in range(1, self.max_batch + 1):
            cumulative += self._batch_sizes.get(size, 0)
            buckets.append((f'{{le="{size}"}}', cumulative))
        buckets.append(('{le="+Inf"}', cumulative))
        n_batched = sum(size * count for size, count in self._batch_sizes.items())
        metric("batch_size", "histogram", "samples per backend call", buckets)
        lines.append(f"{prefix}_batch_size_sum {n_batched}")
        lines.append(f"{prefix}_batch_size_count {cumulative}")
        for key in ("latency_ms", "batch_latency_ms"):
            quantiles = [(f'{{quantile="0.{q[1:]}"}}', m[key][q]) for q in ("p50", "p95", "p99")]
            metric(key, "summary", f"{key.replace('_ms', '')} in milliseconds (recent window)", quantiles)
        return "\n".join(lines) + "\n"

    async def aclose(self) -> None:
        """Stop taking requests, fail the queued ones and stop the worker (running batches finish)."""
        self._closed = True
        while self._queue:
            it = self._queue.popleft()
            if not it.future.done():
                it.future.set_exception(BatcherClosedError("the reward batcher was closed"))
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._loop.is_running():
                raise RuntimeError("a RewardBatcher belongs to one running event loop; this is another")
            # first use, or the previous loop has stopped (e.g. one loop per call in a test client): start afresh
            self._loop = loop
            self._queue.clear()
            self._batches = set()
            self._in_flight = 0
            self._worker = None
            self._arrived = asyncio.Event()
            self._slots = asyncio.Semaphore(self.max_concurrency)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name="reward-batcher")

    def _retry_after(self, n: int) -> float:
        batches_ahead = math.ceil((len(self._queue) + n) / self.max_batch) / self.max_concurrency
        per_batch = sum(self._batch_latency) / len(self._batch_latency) if self._batch_latency else 1.0
        return float(min(60, max(1, math.ceil(batches_ahead * per_batch))))

    def _drop_done(self) -> None:
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()

    async def _collect(self) -> list[_Item]:
        assert self._arrived is not None
        while True:
            self._drop_done()
            if self._queue:
                break
            self._arrived.clear()
            await self._arrived.wait()
        deadline = self._queue[0].enqueued + self.window_s
        while len(self._queue) < self.max_batch:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        batch: list[_Item] = []
        while self._queue and len(batch) < self.max_batch:
            it = self._queue.popleft()
            if not it.future.done():
                batch.append(it)
        return batch

    async def _run(self) -> None:
        assert self._slots is not None
        while True:
            await self._slots.acquire()
            try:
                batch = await self._collect()
            except BaseException:
                self._slots.release()
                raise
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._process(batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _process(self, batch: list[_Item]) -> None:
        assert self._slots is not None
        self._in_flight += 1
        t0 = time.perf_counter()
        for it in batch:
            self._queue_wait.append(t0 - it.enqueued)
        try:
            scores = await self.model.ascore([it.sample for it in batch])
            if len(scores) != len(batch):
                raise RuntimeError(f"model returned {len(scores)} scores for {len(batch)} samples")
        except Exception as exc:
            self._c["batch_errors"] += 1
            for it in batch:
                if not it.future.done():
                    it.future.set_exception(exc)
        else:
            for it, s in zip(batch, scores, strict=True):
                if not it.future.done():
                    it.future.set_result(s)
        finally:
            self._batch_sizes[len(batch)] += 1
            self._batch_latency.append(time.perf_counter() - t0)
            self._in_flight -= 1
            self._slots.release()
