"""The server's /v1/reward through the batcher, on a real uvicorn server: batching, 429 + Retry-After, 504, /metrics."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import httpx
import pytest
from PIL import Image

from rationalrewards.backends.base import Backend
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.rl.client import RewardClient
from rationalrewards.rl.service import RewardBatchConfig
from rationalrewards.server import create_app
from rationalrewards.testing.servers import ThreadedServer


def data_url(color=(10, 20, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def reward_of(tf: float) -> float:
    return ((tf + 3.0) / 2 - 1) / 3


class BlockingBackend(Backend):
    """The scripted critic behind a ``threading.Event`` the test opens (the server runs in another thread)."""

    name = "blocking"

    def __init__(self, responder):
        self.inner = ScriptedBackend(responder)
        self.gate = threading.Event()
        self.sizes: list[int] = []

    async def agenerate(self, conversations, config=None):
        self.sizes.append(len(conversations))
        await asyncio.to_thread(self.gate.wait, 30)
        return await self.inner.agenerate(conversations, config)


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_concurrent_requests_share_backend_calls_and_get_their_own_rewards(backend):
    config = RewardBatchConfig(max_batch=8, window_ms=5000)
    with ThreadedServer(create_app(backend, reward_batching=config)) as srv:
        client = RewardClient(srv.base_url, max_retries=0)

        async def one(k: int):
            tf = 1.0 + k * 0.25
            out = await client.ascore([{"request": f"score={tf} item {k}", "image": data_url(), "id": f"k{k}"}])
            return tf, out

        async def main():
            try:
                return await asyncio.gather(*(one(k) for k in range(8)))
            finally:
                await client.aclose()

        results = asyncio.run(main())
        metrics = httpx.get(f"{srv.base_url}/metrics").json()
    for k, (tf, out) in enumerate(results):
        assert out.results[0].id == f"k{k}" and out.results[0].reward == pytest.approx(reward_of(tf))
        assert out.results[0].scores["text_faithfulness"] == pytest.approx(tf)
    assert max(len(c) for c in backend.calls) > 1
    assert metrics["requests"] == 8 and metrics["items"] == 8 and metrics["batch_size"]["max"] > 1
    assert metrics["model"] == "scripted" and metrics["latency_ms"]["p99"] is not None


def test_full_queue_answers_429_with_retry_after_and_the_client_waits_it_out(critic):
    blocking = BlockingBackend(critic)
    config = RewardBatchConfig(max_batch=1, window_ms=0, max_queue=1)
    item = {"request": "score=2.0 x", "image": data_url()}
    with ThreadedServer(create_app(blocking, reward_batching=config)) as srv:
        url = f"{srv.base_url}/v1/reward"
        pending = []
        first = threading.Thread(target=lambda: pending.append(httpx.post(url, json={"items": [item]}, timeout=60)))
        first.start()
        wait_until(lambda: httpx.get(f"{srv.base_url}/metrics").json()["in_flight_batches"] == 1)
        second = threading.Thread(target=lambda: pending.append(httpx.post(url, json={"items": [item]}, timeout=60)))
        second.start()
        wait_until(lambda: httpx.get(f"{srv.base_url}/metrics").json()["queue_depth"] == 1)

        refused = httpx.post(url, json={"items": [item]})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"

        # a client that retries: refused once while the queue is full, then served once the gate opens
        retrying = RewardClient(srv.base_url, max_retries=3, max_backoff_s=1.0)
        out: list = []
        third = threading.Thread(target=lambda: out.append(retrying.score([item])))
        third.start()
        wait_until(lambda: httpx.get(f"{srv.base_url}/metrics").json()["rejections"] >= 2)
        blocking.gate.set()
        for t in (first, second, third):
            t.join(60)
        metrics = httpx.get(f"{srv.base_url}/metrics").json()
    assert [r.status_code for r in pending] == [200, 200]
    assert out[0].results[0].reward == pytest.approx(reward_of(2.0)) and retrying.retries >= 1
    assert metrics["rejections"] >= 2


def test_timeout_answers_504(critic):
    blocking = BlockingBackend(critic)
    config = RewardBatchConfig(max_batch=4, window_ms=0, timeout_s=0.2)
    with ThreadedServer(create_app(blocking, reward_batching=config)) as srv:
        r = httpx.post(f"{srv.base_url}/v1/reward", json={"items": [{"request": "x", "image": data_url()}]})
        blocking.gate.set()
        metrics = httpx.get(f"{srv.base_url}/metrics").json()
    assert r.status_code == 504
    assert r.json()["error"]["type"] == "timeout_error" and "0.2 s" in r.json()["error"]["message"]
    assert metrics["timeouts"] == 1


def test_metrics_formats_and_api_key(make_client_factory):
    client = make_client_factory(api_key="k")
    assert client.get("/metrics").status_code == 401
    auth = {"Authorization": "Bearer k"}
    body = {"items": [{"request": "score=3 a", "image": data_url()}, {"request": "FAILME", "image": data_url()}]}
    res = client.post("/v1/reward", json=body, headers=auth).json()
    assert res["n_failed"] == 1 and res["results"][1]["parse_status"] == "failed"
    m = client.get("/metrics", headers=auth).json()
    assert m["items"] == 2 and m["parse_failures"] == 1 and m["config"]["max_batch"] == 32
    text = client.get("/metrics?format=prometheus", headers=auth)
    assert text.headers["content-type"].startswith("text/plain")
    assert "rationalrewards_reward_parse_failures_total 1" in text.text
    bad = client.get("/metrics?format=xml", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "format"


def test_request_larger_than_the_queue_is_a_400(make_client_factory):
    client = make_client_factory(reward_batching=RewardBatchConfig(max_queue=2))
    items = [{"request": "score=3 a", "image": data_url()}] * 3
    r = client.post("/v1/reward", json={"items": items})
    assert r.status_code == 400 and "more than the reward queue holds (2)" in r.json()["error"]["message"]
    assert client.post("/v1/reward", json={"items": items[:2]}).status_code == 200


@pytest.fixture
def make_client_factory(backend):
    from fastapi.testclient import TestClient

    clients = []

    def make(**kwargs):
        c = TestClient(create_app(backend, **kwargs))
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
