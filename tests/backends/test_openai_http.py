"""OpenAIBackend against real loopback HTTP servers that play a remote server's failure modes."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from PIL import Image

from rationalrewards.backends import GenerationConfig, load_backend
from rationalrewards.backends.openai_http import OpenAIBackend, OpenAIBackendError
from rationalrewards.conversation import Conversation, ImagePart
from rationalrewards.images import load_image
from rationalrewards.testing.loopback import (
    LoopbackProcess,
    RecordedRequest,
    ScriptedChatServer,
    answer,
    drop,
    error,
    garbage,
    hang,
    no_choices,
    no_content,
)

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}


def conv(text: str) -> Conversation:
    return Conversation().add("user", text)


def user_text(req: RecordedRequest) -> str:
    content = req.json["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def free_dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- payload ------------------------------------------------------------------------------------


def test_payload_roles_text_images_and_sampling_settings():
    red = Image.new("RGB", (8, 6), (200, 10, 10))
    blue = Image.new("RGB", (5, 5), (0, 0, 255))
    c = Conversation()
    c.add("system", "be a judge")
    c.add("user", "source:", ImagePart(red), "edited:", ImagePart(blue), "rate it")
    c.add("assistant", "ok")
    c.add("user", "again")
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="judge-8b", **FAST)
        out = b.generate([c], GenerationConfig(n=3, temperature=0.7, top_p=0.9, max_tokens=77, seed=11))
    assert out[0].ok and len(out[0].texts) == 3
    (req,) = srv.chat_requests
    body = req.json
    assert (body["model"], body["n"], body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        "judge-8b",
        3,
        0.7,
        0.9,
        77,
        11,
    )
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "be a judge"
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
    assert [p["text"] for p in parts if p["type"] == "text"] == ["source:", "edited:", "rate it"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert all(u.startswith("data:image/png;base64,") for u in urls)
    assert load_image(urls[0]).tobytes() == red.tobytes()
    assert load_image(urls[1]).size == (5, 5)
    assert req.path == "/v1/chat/completions"


def test_seed_left_out_when_none_and_extra_body_forwarded():
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="m", extra_body={"top_k": 20, "chat_template_kwargs": {"x": 1}}, **FAST)
        assert b.generate([conv("hi")])[0].texts == ["echo[0]: hi"]
    body = srv.chat_requests[0].json
    assert "seed" not in body
    assert body["top_k"] == 20 and body["chat_template_kwargs"] == {"x": 1} and body["n"] == 1


def test_results_keep_batch_order():
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="m", concurrency=4, **FAST)
        out = b.generate([conv(f"q{i}") for i in range(12)], GenerationConfig(n=2))
    assert [o.texts for o in out] == [[f"echo[0]: q{i}", f"echo[1]: q{i}"] for i in range(12)]


# -- auth and model discovery -------------------------------------------------------------------


def test_api_key_from_argument_and_from_env(monkeypatch):
    monkeypatch.setenv("MY_KEY_VAR", "sk-env")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedChatServer() as srv:
        OpenAIBackend(srv.url, model="m", api_key="sk-flag", api_key_env="MY_KEY_VAR").generate([conv("a")])
        OpenAIBackend(srv.url, model="m", api_key_env="MY_KEY_VAR").generate([conv("b")])
        OpenAIBackend(srv.url, model="m").generate([conv("c")])
    auth = [r.headers.get("authorization") for r in srv.chat_requests]
    assert auth == ["Bearer sk-flag", "Bearer sk-env", None]


def test_model_discovered_once_from_models_endpoint():
    with ScriptedChatServer(models=["served-model", "other"]) as srv:
        b = OpenAIBackend(srv.url, **FAST)
        assert b.model is None
        b.generate([conv("a")])
        b.generate([conv("b"), conv("c")])
    assert b.model == "served-model"
    assert b.name == f"openai:served-model@{srv.url}"
    assert [r.path for r in srv.requests if r.method == "GET"] == ["/v1/models"]
    assert {r.json["model"] for r in srv.chat_requests} == {"served-model"}


@pytest.mark.parametrize("models_reply", [error(404), error(500), garbage()])
def test_model_discovery_failure_is_a_clear_error(models_reply):
    with ScriptedChatServer(models=models_reply) as srv:
        b = OpenAIBackend(srv.url, max_retries=1, **{**FAST})
        with pytest.raises(OpenAIBackendError, match="could not discover the model.*pass model="):
            b.generate([conv("a")])
    assert srv.chat_requests == []


# -- retries ------------------------------------------------------------------------------------

FAILURES = {
    "http_500": error(500),
    "http_502": error(502),
    "http_503": error(503),
    "http_429": error(429),
    "http_408": error(408),
    "http_409": error(409),
    "timeout": hang(),
    "malformed-json": garbage(),
    "malformed-choices": no_choices(),
    "malformed-content": no_content(),
    "connection": drop(),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_each_failure_kind_is_retried_then_succeeds(kind):
    with ScriptedChatServer([FAILURES[kind], FAILURES[kind]]) as srv:
        b = OpenAIBackend(srv.url, model="m", max_retries=3, **{**FAST, "timeout_s": 0.5})
        out = b.generate([conv("hello")])
    assert out[0].ok, out[0].error
    assert out[0].texts == ["echo[0]: hello"]
    assert len(srv.chat_requests) == 3
    assert b.stats.retries == 2 and b.stats.requests == 3 and b.stats.successes == 1
    assert sum(b.stats.attempt_failures.values()) == 2
    assert list(b.stats.attempt_failures) == [kind.split("-")[0]]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    with ScriptedChatServer([error(status, "you asked wrong")]) as srv:
        b = OpenAIBackend(srv.url, model="m", max_retries=4, **FAST)
        (out,) = b.generate([conv("x")])
    assert len(srv.chat_requests) == 1
    assert not out.ok and out.texts == []
    assert f"HTTP {status}" in out.error and "you asked wrong" in out.error and "not retried" in out.error
    if status == 401:
        assert "API key" in out.error
    assert b.stats.retries == 0 and b.stats.item_failures == {f"http_{status}": 1}


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status):
    with ScriptedChatServer([error(status, retry_after=0.4)]) as srv:
        b = OpenAIBackend(srv.url, model="m", backoff_base_s=0.0, backoff_max_s=10)
        assert b.generate([conv("x")])[0].ok
    first, second = srv.chat_requests
    assert second.t_received - first.t_received >= 0.4


def test_exhausted_retries_fail_only_that_item():
    def script(req: RecordedRequest):
        return error(500, "model crashed") if user_text(req) == "poison" else answer()(req)

    prompts = ["a", "b", "poison", "c", "d"]
    with ScriptedChatServer(script) as srv:
        b = OpenAIBackend(srv.url, model="m", max_retries=2, **FAST)
        out = b.generate([conv(p) for p in prompts])
    assert [o.ok for o in out] == [True, True, False, True, True]
    assert [o.texts for i, o in enumerate(out) if i != 2] == [[f"echo[0]: {p}"] for p in "abcd"]
    assert "HTTP 500" in out[2].error and "model crashed" in out[2].error and "3 attempts" in out[2].error
    assert sum(user_text(r) == "poison" for r in srv.chat_requests) == 3
    assert b.stats.items_failed == 1 and b.stats.item_failures == {"http_500": 1}
    assert b.stats.attempt_failures == {"http_500": 3}


def test_timeout_exhausted_reports_timeout():
    with ScriptedChatServer(hang()) as srv:
        b = OpenAIBackend(srv.url, model="m", max_retries=1, **{**FAST, "timeout_s": 0.3})
        (out,) = b.generate([conv("x")])
    assert not out.ok and "timeout" in out.error and "2 attempts" in out.error
    assert len(srv.chat_requests) == 2


def test_unencodable_image_fails_only_its_item():
    bad = Conversation().add("user", "look", ImagePart(b"not an image at all"))
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)
        out = b.generate([conv("fine"), bad])
    assert out[0].ok and not out[1].ok and "could not encode" in out[1].error
    assert [user_text(r) for r in srv.chat_requests] == ["fine"]


# -- n not supported ----------------------------------------------------------------------------


def test_missing_samples_are_fetched_when_server_ignores_n():
    with ScriptedChatServer(answer(lambda payload, i: f"seed={payload.get('seed')}", n=1)) as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)
        (out,) = b.generate([conv("x")], GenerationConfig(n=3, seed=100))
    assert out.ok and sorted(out.texts) == ["seed=100", "seed=101", "seed=102"]
    asked = sorted((r.json["n"], r.json["seed"]) for r in srv.chat_requests)
    assert asked == [(1, 101), (1, 102), (3, 100)]
    assert b.stats.extra_requests == 2


def test_fewer_choices_without_seed_still_fills_n():
    with ScriptedChatServer([answer(n=2)]) as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)
        (out,) = b.generate([conv("x")], GenerationConfig(n=4))
    assert out.ok and len(out.texts) == 4
    assert sorted(r.json["n"] for r in srv.chat_requests) == [1, 1, 4]
    assert all("seed" not in r.json for r in srv.chat_requests)


# -- concurrency and routing --------------------------------------------------------------------


def test_concurrency_bound_is_respected():
    with ScriptedChatServer(answer(delay_s=0.05)) as srv:
        b = OpenAIBackend(srv.url, model="m", concurrency=3, **FAST)
        out = b.generate([conv(str(i)) for i in range(15)], GenerationConfig(n=2))
    assert all(o.ok for o in out)
    assert 2 <= srv.max_in_flight <= 3


def test_concurrency_bound_spans_all_urls():
    with ScriptedChatServer(answer(delay_s=0.05)) as s1, ScriptedChatServer(answer(delay_s=0.05)) as s2:
        b = OpenAIBackend([s1.url, s2.url], model="m", concurrency=2, **FAST)
        assert all(o.ok for o in b.generate([conv(str(i)) for i in range(10)]))
    assert s1.max_in_flight + s2.max_in_flight <= 3  # peaks need not coincide, but each is bounded by 2
    assert s1.max_in_flight <= 2 and s2.max_in_flight <= 2


def test_round_robin_uses_every_url_evenly():
    servers = [ScriptedChatServer().start() for _ in range(3)]
    try:
        b = load_backend("openai:" + ",".join(s.url for s in servers), model="m", routing="round-robin", **FAST)
        assert all(o.ok for o in b.generate([conv(str(i)) for i in range(9)]))
    finally:
        for s in servers:
            s.stop()
    assert [len(s.chat_requests) for s in servers] == [3, 3, 3]
    assert b.name == "openai:m@" + ",".join(s.url for s in servers)


def test_least_loaded_sends_less_to_a_slow_url():
    with ScriptedChatServer(answer(delay_s=0.3)) as slow, ScriptedChatServer(answer(delay_s=0.005)) as fast:
        b = OpenAIBackend([slow.url, fast.url], model="m", concurrency=4, routing="least-loaded", **FAST)
        assert all(o.ok for o in b.generate([conv(str(i)) for i in range(40)]))
    assert len(slow.chat_requests) + len(fast.chat_requests) == 40
    assert len(slow.chat_requests) * 2 < len(fast.chat_requests)


@pytest.mark.parametrize("routing", ["least-loaded", "round-robin"])
def test_failing_url_does_not_poison_the_others(routing):
    with ScriptedChatServer(error(500)) as bad, ScriptedChatServer() as good:
        b = OpenAIBackend([bad.url, good.url], model="m", routing=routing, max_retries=3, backoff_base_s=0.05)
        out = b.generate([conv(str(i)) for i in range(20)])
        assert all(o.ok for o in out), [o.error for o in out if not o.ok]
        assert len(good.chat_requests) == 20
        assert 0 < len(bad.chat_requests) < 20
        # a retry never went back to the URL that had just failed it
        assert len({user_text(r) for r in bad.chat_requests}) == len(bad.chat_requests)
        # and a URL that keeps failing is left alone for a while
        seen_bad = len(bad.chat_requests)
        assert all(o.ok for o in b.generate([conv(f"later {i}") for i in range(10)]))
        assert len(bad.chat_requests) == seen_bad and len(good.chat_requests) == 30


def test_dead_url_is_routed_around():
    with ScriptedChatServer() as good:
        b = OpenAIBackend([free_dead_url(), good.url], model="m", routing="round-robin", max_retries=2, **FAST)
        out = b.generate([conv(str(i)) for i in range(6)])
    assert all(o.ok for o in out)
    assert len(good.chat_requests) == 6 and b.stats.attempt_failures["connection"] >= 1


def test_all_urls_dead_gives_item_errors_not_exceptions():
    b = OpenAIBackend([free_dead_url()], model="m", max_retries=1, **FAST)
    out = b.generate([conv("a"), conv("b")])
    assert [o.ok for o in out] == [False, False]
    assert all("connection error" in o.error and "2 attempts" in o.error for o in out)
    assert b.stats.item_failures == {"connection": 2}


# -- sync facade, client reuse ------------------------------------------------------------------


def test_sync_generate_inside_a_running_event_loop():
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)

        async def main():
            return b.generate([conv("from inside a loop")])

        out = asyncio.run(main())
        again = b.generate([conv("plain")])
    assert out[0].texts == ["echo[0]: from inside a loop"] and again[0].texts == ["echo[0]: plain"]


def test_one_client_per_event_loop_is_reused_and_closed():
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)

        async def main():
            async with b:
                await b.agenerate([conv("one")])
                await b.agenerate([conv("two")])

        asyncio.run(main())
        b.generate([conv("three")])
        b.close()
    ports = [r.peer_port for r in srv.chat_requests]
    assert ports[0] == ports[1]  # kept-alive connection of the same client
    assert ports[2] != ports[0]  # a new loop gets a new client


def test_close_from_sync_code_after_async_use():
    with ScriptedChatServer() as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(b.agenerate([conv("x")]))[0].ok
            b.close()
            assert loop.run_until_complete(b.agenerate([conv("y")]))[0].ok  # a fresh client
            b.close()
        finally:
            loop.close()
    assert len(srv.chat_requests) == 2


def test_against_a_server_in_a_child_process():
    with LoopbackProcess(latency_s=0.01) as proc:
        b = OpenAIBackend(proc.url, model="m", concurrency=4, **FAST)
        out = b.generate([conv(f"p{i}") for i in range(6)], GenerationConfig(n=2))
        stats = proc.stats(reset=True)
    assert [o.texts for o in out] == [[f"echo[0]: p{i}", f"echo[1]: p{i}"] for i in range(6)]
    assert stats["chat_requests"] == 6 and 1 <= stats["max_in_flight"] <= 4
    with pytest.raises(httpx.ConnectError):  # the child is gone
        httpx.get(proc.url + "/models", timeout=5)


# -- construction -------------------------------------------------------------------------------


def test_spec_and_argument_validation(monkeypatch):
    b = load_backend("openai:http://h1:8000/v1/,https://h2/v1", model="x")
    assert isinstance(b, OpenAIBackend) and b.base_urls == ["http://h1:8000/v1", "https://h2/v1"]
    assert b.name == "openai:x@http://h1:8000/v1,https://h2/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env-host/v1")
    assert load_backend("openai:", model="x").base_urls == ["http://env-host/v1"]
    with pytest.raises(ValueError, match="http://"):
        OpenAIBackend("h1:8000/v1")
    with pytest.raises(ValueError, match="extra_body"):
        OpenAIBackend("http://h/v1", extra_body={"n": 4})
    with pytest.raises(ValueError, match="routing"):
        OpenAIBackend("http://h/v1", routing="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIBackend("http://h/v1", concurrency=0)
    with pytest.raises(ValueError, match="n must be"):
        OpenAIBackend("http://h/v1", model="x").generate([conv("a")], GenerationConfig(n=0))
    assert OpenAIBackend("http://h/v1", model="x").generate([]) == []


def test_stats_summary_counts_latency():
    with ScriptedChatServer([error(503)]) as srv:
        b = OpenAIBackend(srv.url, model="m", **FAST)
        b.generate([conv("a"), conv("b")])
    d = b.stats.as_dict()
    assert d["requests"] == 3 and d["successes"] == 2 and d["retries"] == 1 and d["items"] == 2
    assert d["attempt_failures"] == {"http_503": 1} and d["per_url"] == {srv.url: 3}
    assert d["latency_s"]["max"] >= d["latency_s"]["p50"] > 0
