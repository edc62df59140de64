"""/v1/critique, /v1/compare and /v1/reward over a scripted critic whose scores follow the images' red channel."""

from __future__ import annotations

import pytest

from rationalrewards.rubric import DIMENSION_KEYS, dimensions_for, normalize
from rationalrewards.server import ServerLimits

FAIL_MARK = "<<fail this item>>"  # the scripted critic raises for requests containing it (see conftest)


def _error(resp, status: int = 400) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


def _score(red: int) -> float:
    return round(1 + 3 * red / 255, 3)


def test_critique_returns_one_critique_per_item_in_order(make_client, critic_backend, image_url):
    client = make_client(critic_backend)
    reds = [255, 0, 128]
    items = [
        {"request": f"a red square number {i}", "image": image_url((r, 0, 0)), "id": f"x{i}"}
        for i, r in enumerate(reds)
    ]
    r = client.post("/v1/critique", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "critique.list" and body["model"] == "scripted-critic"
    assert len(body["critiques"]) == 3
    keys = [d.key for d in dimensions_for("t2i")]
    for red, c in zip(reds, body["critiques"], strict=True):
        assert c["parse_status"] == "ok" and c["parse_ok"] is True
        assert c["task"] == "t2i"
        assert c["scores"] == dict.fromkeys(keys, _score(red))
        assert c["reward"] == pytest.approx(normalize(_score(red)))
        assert c["template"] and c["template_version"]
        assert c["refined_request"]
    assert len(critic_backend.calls) == 1 and len(critic_backend.calls[0]) == 3


def test_critique_of_an_edit_uses_the_source(make_client, critic_backend, image_url):
    client = make_client(critic_backend)
    item = {"request": "make it red", "image": image_url((255, 0, 0)), "source": image_url((0, 0, 255))}
    c = client.post("/v1/critique", json={"items": [item]}).json()["critiques"][0]
    assert c["task"] == "edit"
    assert "image_faithfulness" in c["scores"]
    assert c["scores"]["text_faithfulness"] == _score(255)


def test_compare_prefers_the_redder_image_and_checks_both_orders(make_client, critic_backend, image_url):
    client = make_client(critic_backend)
    pairs = [
        {"request": "red", "image_a": image_url((250, 0, 0)), "image_b": image_url((10, 0, 0))},
        {"request": "red", "image_a": image_url((10, 0, 0)), "image_b": image_url((250, 0, 0))},
    ]
    r = client.post("/v1/compare", json={"pairs": pairs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "pairwise_critique.list"
    assert [c["preference"] for c in body["critiques"]] == ["A", "B"]
    assert body["critiques"][0]["scores_a"]["text_faithfulness"] == _score(250)
    assert body["critiques"][0]["position_consistent"] is None
    r = client.post("/v1/compare", json={"pairs": pairs, "both_orders": True})
    both = r.json()["critiques"]
    assert [c["preference"] for c in both] == ["A", "B"]
    assert all(c["position_consistent"] is True for c in both)
    assert len(critic_backend.calls[-1]) == 4  # each pair judged in both orders


def test_reward_returns_rewards_vectors_and_optional_critiques(make_client, critic_backend, image_url):
    client = make_client(critic_backend)
    items = [{"request": "red", "image": image_url((r, 0, 0))} for r in (0, 255)]
    r = client.post("/v1/reward", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "reward.list" and body["n_failed"] == 0
    low, high = body["results"]
    assert low["reward"] == pytest.approx(0.0) and high["reward"] == pytest.approx(1.0)
    assert set(high["scores"]) == set(DIMENSION_KEYS)
    assert high["scores"]["image_faithfulness"] is None  # not applicable to text-to-image
    assert high["scores"]["text_faithfulness"] == 4.0
    assert high["parse_ok"] is True and high["error"] is None and high["critique"] is None
    r = client.post("/v1/reward", json={"items": items, "return_critiques": True})
    assert r.json()["results"][1]["critique"]["scores"]["physical_quality"] == 4.0


def test_a_failing_item_fails_alone(make_client, critic_backend, image_url):
    client = make_client(critic_backend)
    items = [
        {"request": "red", "image": image_url((255, 0, 0))},
        {"request": f"red {FAIL_MARK}", "image": image_url((255, 0, 0))},
        {"request": "red", "image": image_url((0, 0, 0))},
    ]
    body = client.post("/v1/reward", json={"items": items}).json()
    assert body["n_failed"] == 1
    rewards = [res["reward"] for res in body["results"]]
    assert rewards[0] == pytest.approx(1.0) and rewards[1] is None and rewards[2] == pytest.approx(0.0)
    failed = body["results"][1]
    assert failed["parse_status"] == "failed" and "scripted failure" in failed["error"]
    assert all(v is None for v in failed["scores"].values())
    crit = client.post("/v1/critique", json={"items": items}).json()["critiques"]
    assert [c["parse_status"] for c in crit] == ["ok", "failed", "ok"]
    assert any("scripted failure" in e for e in crit[1]["parse_errors"])


@pytest.mark.parametrize(
    ("path", "body", "param", "needle"),
    [
        ("/v1/critique", {"items": [{"request": "x"}]}, "items[0].image", "Field required"),
        ("/v1/critique", {"items": [{"image": "AAAA"}]}, "items[0].request", "Field required"),
        ("/v1/critique", {"items": {"request": "x"}}, "items", "list"),
        ("/v1/critique", {"items": []}, "items", "at least 1"),
        ("/v1/critique", {"items": [{"request": 5, "image": "AAAA"}]}, "items[0].request", "string"),
        ("/v1/critique", {"items": [{"request": "x", "image": "AAAA", "colour": 1}]}, "items[0].colour", "Extra"),
        ("/v1/compare", {"pairs": [{"request": "x", "image_a": "AAAA"}]}, "pairs[0].image_b", "Field required"),
        ("/v1/compare", {"pairs": [], "both_orders": "maybe"}, "pairs", ""),
        (
            "/v1/reward",
            {"items": [{"request": "x", "image": "AAAA"}], "return_critiques": "yes please"},
            "return_critiques",
            "boolean",
        ),
        ("/v1/reward", {}, "items", "Field required"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(make_client, critic_backend, path, body, param, needle):
    err = _error(make_client(critic_backend).post(path, json=body))
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert needle in err["message"]
    assert critic_backend.calls == []


@pytest.mark.parametrize("path", ["/v1/critique", "/v1/reward"])
def test_bad_images_in_a_batch_are_400_naming_the_item(make_client, critic_backend, image_url, path):
    items = [
        {"request": "x", "image": image_url()},
        {"request": "x", "image": image_url(), "source": "bm90IGFuIGltYWdl"},
    ]
    err = _error(make_client(critic_backend).post(path, json={"items": items}))
    assert err["param"] == "items[1].source" and "not a readable image" in err["message"]
    assert critic_backend.calls == []


def test_bad_image_in_a_pair_is_400_naming_it(make_client, critic_backend, image_url):
    pairs = [{"request": "x", "image_a": image_url(), "image_b": "data:image/png;base64,@@@"}]
    err = _error(make_client(critic_backend).post("/v1/compare", json={"pairs": pairs}))
    assert err["param"] == "pairs[0].image_b" and "base64" in err["message"]


def test_batch_limits(make_client, critic_backend, image_url):
    client = make_client(critic_backend, limits=ServerLimits(max_batch_items=2, max_images_per_request=3))
    u = image_url()
    err = _error(client.post("/v1/critique", json={"items": [{"request": "x", "image": u}] * 3}))
    assert "max_batch_items" in err["message"] and err["param"] == "items"
    err = _error(client.post("/v1/reward", json={"items": [{"request": "x", "image": u, "source": u}] * 2}))
    assert "max_images_per_request" in err["message"]
    err = _error(client.post("/v1/compare", json={"pairs": [{"request": "x", "image_a": u, "image_b": u}] * 2}))
    assert "max_images_per_request" in err["message"]
    assert critic_backend.calls == []
    assert client.post("/v1/critique", json={"items": [{"request": "x", "image": u}] * 2}).status_code == 200


def test_remote_image_in_a_batch_is_refused_naming_the_flag(make_client, critic_backend):
    items = [{"request": "x", "image": "http://127.0.0.1:9/cat.png"}]
    err = _error(make_client(critic_backend).post("/v1/critique", json={"items": items}))
    assert "allow-remote-images" in err["message"] and err["param"] == "items[0].image"


@pytest.mark.parametrize("path", ["/v1/critique", "/v1/reward"])
def test_backend_that_raises_is_a_500_json_and_the_server_survives(make_client, exploding_backend, image_url, path):
    client = make_client(exploding_backend)
    r = client.post(path, json={"items": [{"request": "x", "image": image_url()}]})
    err = _error(r, 500)
    assert "caught fire" in err["message"]
    assert client.get("/health").json()["status"] == "ok"


def test_create_app_accepts_a_reward_model(make_client, critic_backend, image_url):
    from rationalrewards.model import RationalRewardModel

    rm = RationalRewardModel(critic_backend, weights={"text_faithfulness": 1.0})
    client = make_client(rm, served_model_name="judge")
    body = client.post("/v1/reward", json={"items": [{"request": "x", "image": image_url((255, 0, 0))}]}).json()
    assert body["model"] == "judge" and body["results"][0]["reward"] == pytest.approx(1.0)
    assert client.get("/v1/models").json()["data"][0]["id"] == "judge"


def test_create_app_rejects_other_things():
    from rationalrewards.server import create_app

    with pytest.raises(TypeError, match="RationalRewardModel"):
        create_app(42)
    with pytest.raises(ValueError, match="unknown backend"):
        create_app("nonsense:thing")
