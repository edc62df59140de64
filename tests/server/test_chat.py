"""OpenAI-compatible chat completions, /v1/models, /health, auth and the error shape, over scripted backends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rationalrewards.images import image_hash


def _error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    return err


def _chat(messages, **kw) -> dict:
    return {"model": "scripted-echo", "messages": messages, **kw}


def test_importing_the_server_package_does_not_import_fastapi():
    code = "import sys, rationalrewards.server as s; assert 'fastapi' not in sys.modules; print(s.ServerLimits().max_n)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_health_reports_model_and_uptime(make_client, echo_backend):
    r = make_client(echo_backend).get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "scripted-echo"
    assert body["uptime_s"] >= 0 and body["version"]


def test_models_lists_the_served_model(make_client, echo_backend):
    r = make_client(echo_backend, served_model_name="tiny-judge").get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["tiny-judge"]
    assert body["data"][0]["object"] == "model"


def test_chat_completion_schema_and_images_arrive_intact(make_client, echo_backend, png):
    import base64

    raw = png((200, 10, 10), size=(24, 12))
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}],
        },
    ]
    r = make_client(echo_backend).post("/v1/chat/completions", json=_chat(messages))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "scripted-echo"
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    seen = json.loads(choice["message"]["content"])
    assert seen["roles"] == ["system", "user"]
    assert seen["texts"] == ["be brief", "what is this?"]
    assert seen["images"] == [image_hash(raw)]
    assert seen["sizes"] == [[24, 12]]


def test_chat_n_and_sampling_settings_reach_the_backend(make_client, echo_backend):
    client = make_client(echo_backend)
    body = _chat([{"role": "user", "content": "hi"}], n=3, temperature=0.7, top_p=0.9, max_tokens=33, seed=5)
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert [json.loads(c["message"]["content"])["sample"] for c in choices] == [0, 1, 2]
    cfg = echo_backend.configs[-1]
    assert (cfg.n, cfg.temperature, cfg.top_p, cfg.max_tokens, cfg.seed) == (3, 0.7, 0.9, 33, 5)


def test_harmless_or_default_extra_fields_are_accepted(make_client, echo_backend):
    body = _chat([{"role": "user", "content": "hi"}], user="u1", stop=None, logprobs=False, presence_penalty=0)
    assert make_client(echo_backend).post("/v1/chat/completions", json=body).status_code == 200


def test_chat_default_max_tokens_is_the_cap_and_model_may_be_omitted(make_client, echo_backend):
    from rationalrewards.server import ServerLimits

    client = make_client(echo_backend, limits=ServerLimits(max_tokens=77))
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert echo_backend.configs[-1].max_tokens == 77
    r = client.post("/v1/chat/completions", json=_chat([{"role": "user", "content": "hi"}], max_completion_tokens=9))
    assert r.status_code == 200 and echo_backend.configs[-1].max_tokens == 9


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        (_chat([{"role": "user", "content": "hi"}], stream=True), "stream", "stream"),
        (_chat([{"role": "user", "content": "hi"}], max_tokens=10**6), "max_tokens", "max_tokens"),
        (_chat([{"role": "user", "content": "hi"}], n=1000), "n", "max_n"),
        (_chat([{"role": "user", "content": "hi"}], n=0), "n", "n"),
        (_chat([{"role": "user", "content": "hi"}], temperature="hot"), "temperature", "temperature"),
        (_chat([{"role": "wizard", "content": "hi"}]), "messages", "role"),
        (_chat([{"role": "user", "content": 42}]), "messages", "content"),
        (_chat([{"role": "user", "content": [{"type": "audio", "x": 1}]}]), "messages", "audio"),
        (_chat([]), "messages", "messages"),
        ({"model": "scripted-echo"}, "messages", "messages"),
        (_chat([{"role": "user", "content": "hi"}], stop=["\n"]), "stop", "unsupported"),
        (_chat([{"role": "user", "content": "hi"}], top_k=5, logprobs=True), "logprobs", "top_k"),
    ],
)
def test_bad_chat_requests_get_400_naming_the_problem(make_client, echo_backend, body, param, needle):
    r = make_client(echo_backend).post("/v1/chat/completions", json=body)
    err = _error(r, 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert needle in err["message"]
    assert echo_backend.calls == []


def test_unknown_model_is_404(make_client, echo_backend):
    r = make_client(echo_backend).post(
        "/v1/chat/completions", json=_chat([{"role": "user", "content": "x"}]) | {"model": "gpt-17"}
    )
    err = _error(r, 404)
    assert "gpt-17" in err["message"] and "scripted-echo" in err["message"]
    assert err["param"] == "model"


def test_invalid_json_and_wrong_types_are_400(make_client, echo_backend):
    client = make_client(echo_backend)
    r = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert "not valid JSON" in _error(r, 400)["message"]
    r = client.post("/v1/chat/completions", json=[1, 2, 3])
    _error(r, 400)
    r = client.post("/v1/chat/completions", json={"messages": "hello"})
    assert _error(r, 400)["param"] == "messages"


def test_unknown_route_and_wrong_method_get_json_errors(make_client, echo_backend):
    client = make_client(echo_backend)
    assert "/v1/nope" in _error(client.get("/v1/nope"), 404)["message"]
    _error(client.get("/v1/chat/completions"), 405)


def test_body_too_large_is_413_with_and_without_content_length(make_client, echo_backend):
    from rationalrewards.server import ServerLimits

    client = make_client(echo_backend, limits=ServerLimits(max_body_bytes=2000))
    big = _chat([{"role": "user", "content": "x" * 5000}])
    err = _error(client.post("/v1/chat/completions", json=big), 413)
    assert "max_body_bytes" in err["message"]

    def chunks():
        for _ in range(10):
            yield b" " * 500

    r = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    _error(r, 413)
    small = _chat([{"role": "user", "content": "x" * 100}])
    assert client.post("/v1/chat/completions", json=small).status_code == 200
    assert len(echo_backend.calls) == 1


def test_api_key_guards_everything_but_health(make_client, echo_backend):
    client = make_client(echo_backend, api_key="s3cret")
    body = _chat([{"role": "user", "content": "hi"}])
    assert client.get("/health").status_code == 200
    err = _error(client.get("/v1/models"), 401)
    assert err["type"] == "authentication_error" and "Bearer" in err["message"]
    _error(client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer wrong"}), 401)
    _error(client.post("/v1/chat/completions", json=body, headers={"Authorization": "Basic s3cret"}), 401)
    _error(client.post("/v1/critique", json={"items": []}), 401)
    assert echo_backend.calls == []
    ok = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/models", headers=ok).status_code == 200
    assert client.post("/v1/chat/completions", json=body, headers=ok).status_code == 200


def test_no_api_key_means_open(make_client, echo_backend):
    client = make_client(echo_backend)
    r = client.post("/v1/chat/completions", json=_chat([{"role": "user", "content": "hi"}]))
    assert r.status_code == 200


def test_backend_item_error_is_a_500_json_and_the_server_keeps_serving(make_client):
    from rationalrewards.backends.scripted import ScriptedBackend

    def responder(conv, i):
        if "boom" in conv.messages[-1].text:
            raise ValueError("cannot answer that")
        return "fine"

    client = make_client(ScriptedBackend(responder, name="s"))
    err = _error(client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "boom"}]}), 500)
    assert err["type"] == "backend_error" and "cannot answer that" in err["message"]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "ok"}]})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "fine"


def test_backend_that_raises_gives_500_json_and_the_server_keeps_serving(make_client, exploding_backend):
    client = make_client(exploding_backend)
    err = _error(client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}), 500)
    assert err["type"] == "server_error" and "caught fire" in err["message"]
    assert client.get("/health").status_code == 200
    assert client.get("/v1/models").status_code == 200


def test_server_limits_reject_nonsense():
    from rationalrewards.server import ServerLimits

    with pytest.raises(ValueError, match="max_batch_items"):
        ServerLimits(max_batch_items=0)
    with pytest.raises(ValueError, match="max_tokens"):
        ServerLimits(max_tokens=-5)


def test_official_sdk_over_real_http_with_an_api_key(echo_backend, image_url):
    import openai

    from rationalrewards.server import create_app
    from rationalrewards.testing.servers import ThreadedServer

    with ThreadedServer(create_app(echo_backend, api_key="k-123")) as srv:
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url((9, 9, 9))}}]}]
        with openai.OpenAI(base_url=srv.api_base, api_key="k-123", max_retries=0) as client:
            resp = client.chat.completions.create(model="scripted-echo", messages=messages, n=2, max_tokens=5)
            assert [c.index for c in resp.choices] == [0, 1]
            assert len(json.loads(resp.choices[0].message.content)["images"]) == 1
            with pytest.raises(openai.BadRequestError, match="stream"):
                client.chat.completions.create(model="scripted-echo", messages=messages, stream=True)
        with (
            openai.OpenAI(base_url=srv.api_base, api_key="wrong", max_retries=0) as client,
            pytest.raises(openai.AuthenticationError, match="invalid API key"),
        ):
            client.models.list()


def test_serve_rejects_unknown_limits(echo_backend):
    from rationalrewards.server import serve

    with pytest.raises(TypeError, match="max_potatoes"):
        serve(echo_backend, port=1, max_potatoes=3)
