"""RewardClient against a real failing reward server on loopback: retries, Retry-After, chunking, remote rewards."""

from __future__ import annotations

import asyncio
import email.utils
import time

import numpy as np
import pytest
from PIL import Image

from rationalrewards.rl.client import (
    RewardClient,
    RewardClientError,
    normalize_base_url,
    parse_retry_after,
    remote_flow_grpo_reward,
    remote_trl_reward,
)
from rationalrewards.schema import Sample
from rationalrewards.testing.reward_server import (
    ScriptedRewardServer,
    drop,
    error,
    garbage,
    hang,
    reward_answer,
    text_reward,
)

IMAGE = Image.new("RGB", (8, 8), (200, 10, 10))
REQUESTS = ["a red square", "two blue circles", "the word HELLO", "a cat", "a green triangle"]


def samples(n: int = 3) -> list[Sample]:
    return [Sample(request=r, image=IMAGE, id=f"s{i}") for i, r in enumerate(REQUESTS[:n])]


def client(server: ScriptedRewardServer, **kwargs) -> RewardClient:
    kwargs.setdefault("backoff_s", 0.01)
    return RewardClient(server.base_url, **kwargs)


def test_success_returns_the_server_structure():
    with ScriptedRewardServer() as server, client(server) as c:
        out = c.score(samples(3))
    assert [r.reward for r in out.results] == pytest.approx([text_reward(r) for r in REQUESTS[:3]])
    assert [r.id for r in out.results] == ["s0", "s1", "s2"] and out.n_failed == 0
    body = server.reward_requests[0].json
    assert body["items"][0]["image"].startswith("data:image/png;base64,") and body["return_critiques"] is False


@pytest.mark.parametrize("failure", [error(503), error(500), error(502), drop(), garbage()])
def test_transient_failures_are_retried(failure):
    with ScriptedRewardServer([failure, failure]) as server, client(server) as c:
        out = c.score(samples(2))
        assert c.retries == 2
    assert len(server.reward_requests) == 3
    assert out.results[1].reward == pytest.approx(text_reward(REQUESTS[1]))


def test_retry_after_is_honoured():
    with ScriptedRewardServer([error(429, retry_after=0.3)]) as server, client(server, backoff_s=0.001) as c:
        c.score(samples(1))
    first, second = server.reward_requests
    assert second.t_received - first.t_received >= 0.3  # waited at least what the server asked


def test_hung_server_times_out_and_is_retried():
    with ScriptedRewardServer([hang()]) as server, client(server, timeout=0.3) as c:
        out = c.score(samples(1))
    assert len(server.reward_requests) == 2 and out.results[0].reward is not None


def test_client_errors_are_not_retried():
    server = ScriptedRewardServer([error(400, "items[0].image: not a readable image")])
    with server, client(server) as c, pytest.raises(RewardClientError, match="HTTP 400: items\\[0\\].image") as info:
        c.score(samples(1))
    assert info.value.status == 400 and len(server.reward_requests) == 1


def test_giving_up_after_max_retries():
    server = ScriptedRewardServer(default=error(503, "overloaded"))
    expected = "after 3 attempt\\(s\\): HTTP 503: overloaded"
    with server, client(server, max_retries=2) as c, pytest.raises(RewardClientError, match=expected) as info:
        c.score(samples(1))
    assert info.value.attempts == 3 and len(server.reward_requests) == 3


def test_async_chunks_keep_order_and_retry():
    def failing_reward(item, i):
        return None if "cat" in item["request"] else text_reward(item["request"])

    script = [error(503), reward_answer(failing_reward)]
    with ScriptedRewardServer(script, default=reward_answer(failing_reward)) as server:
        c = client(server, max_items_per_request=2, concurrency=2, api_key="sekrit")

        async def main():
            async with c:
                return await c.ascore(samples(5))

        out = asyncio.run(main())
    assert len(server.reward_requests) == 4  # three chunks, one retried
    assert all(r.headers["authorization"] == "Bearer sekrit" for r in server.reward_requests)
    expected = [None if "cat" in r else pytest.approx(text_reward(r)) for r in REQUESTS]
    assert [r.reward for r in out.results] == expected
    assert out.n_failed == 1 and [r.id for r in out.results] == [f"s{i}" for i in range(5)]


def test_remote_flow_grpo_reward_scores_through_the_server():
    with ScriptedRewardServer() as server:
        fn = remote_flow_grpo_reward(server.base_url + "/v1", max_retries=1)
        images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
        rewards, meta = fn(images, REQUESTS[:2], [{}, {}])
    np.testing.assert_allclose(rewards["avg"], [text_reward(r) for r in REQUESTS[:2]])
    np.testing.assert_allclose(rewards["text_faithfulness"], [1 + 3 * text_reward(r) for r in REQUESTS[:2]])
    assert meta["failed_indices"] == []


def test_remote_rewards_apply_the_failure_policy():
    answer = reward_answer(lambda item, i: None if i == 1 else 0.5)
    with ScriptedRewardServer(default=answer) as server:
        flow = remote_flow_grpo_reward(server.base_url, on_failure="value", failure_value=-1.0)
        rewards, meta = flow([IMAGE, IMAGE], ["a", "b"], [{}, {}])
        trl = remote_trl_reward(server.base_url)
        out = trl(["a", "b"], [IMAGE, IMAGE])
    assert rewards["avg"].tolist() == [0.5, -1.0] and meta["filled_indices"] == [1]
    assert out == [0.5, None] and trl.stats.failed == 1


def test_url_and_retry_after_parsing(monkeypatch):
    assert normalize_base_url("localhost:12341") == "http://localhost:12341"
    assert normalize_base_url("http://h:1/v1/") == "http://h:1"
    monkeypatch.setenv("REWARD_SERVER", "10.0.0.2:9000")
    assert normalize_base_url(None) == "http://10.0.0.2:9000"
    monkeypatch.delenv("REWARD_SERVER")
    with pytest.raises(ValueError, match="REWARD_SERVER"):
        normalize_base_url(None)
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= parse_retry_after(later) <= 61
    c = RewardClient("h:1", max_backoff_s=5)
    assert c._delay(0, 2.0) == 2.0 and c._delay(0, 100.0) == 5.0 and c._delay(10, None) <= 5.0
