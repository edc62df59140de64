"""RewardBatcher: routing under concurrent clients, batching, backpressure, timeouts, failures and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from PIL import Image

from rationalrewards.backends.base import Backend, Completion, GenerationConfig
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.model import RationalRewardModel
from rationalrewards.rl.service import QueueFullError, RequestTooLargeError, RewardBatcher, RewardTimeoutError
from rationalrewards.schema import Sample

IMAGE = Image.new("RGB", (8, 8), (40, 80, 120))


def sample(tf: float, tag: str = "") -> Sample:
    return Sample(request=f"score={tf} {tag}", image=IMAGE)


def reward_of(tf: float) -> float:
    return ((tf + 3.0) / 2 - 1) / 3  # physical quality is always 3 (see conftest), text rendering N/A


class GatedBackend(Backend):
    """Answers like the scripted critic, but only once ``gate`` is opened; ``started`` is set on each call."""

    name = "gated"

    def __init__(self, responder):
        self.inner = ScriptedBackend(responder)
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.sizes: list[int] = []
        self.requests: list[str] = []

    async def agenerate(self, conversations: Sequence[Conversation], config: GenerationConfig | None = None):
        self.sizes.append(len(conversations))
        self.requests += ["\n".join(m.text for m in c.messages) for c in conversations]
        self.started.set()
        await self.gate.wait()
        return await self.inner.agenerate(conversations, config)


class RaisingBackend(Backend):
    name = "raising"

    def __init__(self, responder):
        self.inner = ScriptedBackend(responder)
        self.raise_next = True

    async def agenerate(self, conversations, config=None) -> list[Completion]:
        if self.raise_next:
            self.raise_next = False
            raise RuntimeError("the backend fell over")
        return await self.inner.agenerate(conversations, config)


def test_concurrent_clients_get_their_own_results_in_batches(backend):
    batcher = RewardBatcher(RationalRewardModel(backend), max_batch=8, window_ms=20)

    async def client(k: int) -> tuple[list[float], list]:
        wanted = [1.0 + ((k * 7 + j) % 31) / 10 for j in range(1 + k % 3)]
        scores = await batcher.submit([sample(tf, f"client{k}") for tf in wanted])
        return wanted, scores

    async def main():
        out = await asyncio.gather(*(client(k) for k in range(20)))
        await batcher.aclose()
        return out

    for wanted, scores in asyncio.run(main()):
        assert [s.reward for s in scores] == pytest.approx([reward_of(tf) for tf in wanted])
        assert [s.vector["text_faithfulness"] for s in scores] == pytest.approx(wanted)
    sizes = [len(c) for c in backend.calls]
    m = batcher.metrics()
    assert sum(sizes) == m["items"] == sum(1 + k % 3 for k in range(20))
    assert max(sizes) > 1 and max(sizes) <= 8
    assert m["requests"] == 20 and m["batches"] == len(sizes)
    assert sum(int(k) * v for k, v in m["batch_size"]["histogram"].items()) == m["items"]
    assert m["latency_ms"]["p50"] is not None and m["latency_ms"]["p50"] <= m["latency_ms"]["p99"]
    assert m["parse_failures"] == 0 and m["queue_depth"] == 0


def test_unbatched_configuration_sends_one_sample_per_call(backend):
    batcher = RewardBatcher(RationalRewardModel(backend), max_batch=1, window_ms=0)

    async def main():
        return await asyncio.gather(*(batcher.submit([sample(2.0, str(k))]) for k in range(6)))

    asyncio.run(main())
    assert [len(c) for c in backend.calls] == [1] * 6
    assert batcher.metrics()["batch_size"]["histogram"] == {"1": 6}


def test_queue_full_is_refused_with_a_retry_hint(critic):
    gated = GatedBackend(critic)
    batcher = RewardBatcher(RationalRewardModel(gated), max_batch=2, window_ms=0, max_queue=4)

    async def main():
        first = asyncio.create_task(batcher.submit([sample(2.0, "a"), sample(3.0, "b")]))
        await gated.started.wait()  # the worker holds the first batch; the queue is empty again
        second = asyncio.create_task(batcher.submit([sample(4.0, f"c{i}") for i in range(4)]))
        await asyncio.sleep(0)
        assert batcher.queue_depth == 4
        with pytest.raises(QueueFullError) as info:
            await batcher.submit([sample(1.0, "d")])
        assert info.value.retry_after_s >= 1
        gated.gate.set()
        return await first, await second

    first, second = asyncio.run(main())
    assert [s.reward for s in first] == pytest.approx([reward_of(2.0), reward_of(3.0)])
    assert [s.reward for s in second] == pytest.approx([reward_of(4.0)] * 4)
    m = batcher.metrics()
    assert m["rejections"] == 1 and m["requests"] == 2 and m["queue_depth_max"] == 4
    with pytest.raises(RequestTooLargeError, match="more than the reward queue holds"):
        asyncio.run(batcher.submit([sample(1.0)] * 5))


def test_timeout_raises_and_withdraws_queued_samples(critic):
    gated = GatedBackend(critic)
    batcher = RewardBatcher(RationalRewardModel(gated), max_batch=1, window_ms=0, timeout_s=30)

    async def main():
        running = asyncio.create_task(batcher.submit([sample(2.0, "running")]))
        await gated.started.wait()
        with pytest.raises(RewardTimeoutError):
            await batcher.submit([sample(3.0, "never-scored")], timeout_s=0.05)
        assert batcher.queue_depth == 0
        gated.gate.set()
        done = await running
        after = await batcher.submit([sample(4.0, "after")])
        return done, after

    done, after = asyncio.run(main())
    assert done[0].reward == pytest.approx(reward_of(2.0)) and after[0].reward == pytest.approx(reward_of(4.0))
    assert not any("never-scored" in r for r in gated.requests)
    assert batcher.metrics()["timeouts"] == 1


def test_parse_failures_are_results_and_batch_errors_reach_every_caller(critic):
    raising = RaisingBackend(critic)
    batcher = RewardBatcher(RationalRewardModel(raising), max_batch=8, window_ms=5)

    async def main():
        results = await asyncio.gather(
            batcher.submit([sample(2.0, "x")]), batcher.submit([sample(3.0, "y")]), return_exceptions=True
        )
        later = await batcher.submit([sample(2.0, "ok"), Sample(request="FAILME", image=IMAGE)])
        return results, later

    results, later = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "fell over" in str(r) for r in results)
    assert later[0].reward == pytest.approx(reward_of(2.0))
    assert later[1].reward is None and later[1].critique.parse_status == "failed"
    m = batcher.metrics()
    assert m["batch_errors"] == 1 and m["failed_requests"] == 2 and m["parse_failures"] == 1
    assert m["parse_status"] == {"ok": 1, "failed": 1}


def test_metrics_render_as_prometheus_text(backend):
    batcher = RewardBatcher(RationalRewardModel(backend), max_batch=4, window_ms=0)
    asyncio.run(batcher.submit([sample(2.0, str(i)) for i in range(3)]))
    text = batcher.prometheus()
    assert "rationalrewards_reward_items_total 3" in text
    assert 'rationalrewards_reward_batch_size_bucket{le="3"} 1' in text
    assert 'rationalrewards_reward_batch_size_bucket{le="+Inf"} 1' in text
    assert "rationalrewards_reward_batch_size_sum 3" in text
    assert "# TYPE rationalrewards_reward_latency_ms summary" in text


def test_configuration_is_checked(backend):
    model = RationalRewardModel(backend)
    for kwargs in ({"max_batch": 0}, {"max_queue": 0}, {"window_ms": -1}, {"timeout_s": 0}):
        with pytest.raises(ValueError):
            RewardBatcher(model, **kwargs)
    with pytest.raises(TypeError):
        RewardBatcher(object())
