"""Image inputs: encodings, corrupt data, counts, byte and pixel limits, decompression bombs, remote URLs."""

from __future__ import annotations

import base64
import resource

import pytest

from rationalrewards.images import image_hash
from rationalrewards.server import ServerLimits


def _error(resp, status: int = 400) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


def _msg(*urls: str, text: str = "look") -> dict:
    parts = [{"type": "text", "text": text}] + [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return {"messages": [{"role": "user", "content": parts}]}


def _post(client, body):
    return client.post("/v1/chat/completions", json=body)


def test_bare_base64_and_jpeg_data_urls_are_accepted(make_client, echo_backend, png):
    import io
    import json

    from PIL import Image

    raw = png((1, 2, 3), size=(10, 6))
    buf = io.BytesIO()
    Image.new("RGB", (7, 9), (90, 90, 90)).save(buf, format="JPEG")
    jpeg_url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    r = _post(make_client(echo_backend), _msg(base64.b64encode(raw).decode(), jpeg_url))
    assert r.status_code == 200, r.text
    seen = json.loads(r.json()["choices"][0]["message"]["content"])
    assert seen["images"][0] == image_hash(raw)
    assert seen["sizes"] == [[10, 6], [7, 9]]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("data:image/png;base64,!!!notbase64!!!", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"definitely not an image").decode(), "not a readable image"),
        ("data:image/png,rawbytes", "base64"),
        ("ftp://example.com/cat.png", "unsupported image reference"),
        ("/etc/passwd", "image"),
        ("data:image/png;base64,", "empty"),
    ],
)
def test_bad_image_data_is_400_naming_the_part(make_client, echo_backend, image_url, url, needle):
    r = _post(make_client(echo_backend), _msg(image_url(), url))
    err = _error(r)
    assert needle in err["message"]
    assert err["param"] == "messages[0].content[2].image_url"
    assert echo_backend.calls == []


def test_truncated_png_is_400(make_client, echo_backend, png, data_url):
    raw = png((5, 5, 5), size=(64, 64))
    err = _error(_post(make_client(echo_backend), _msg(data_url(raw[: len(raw) // 2]))))
    assert "image" in err["message"] and err["param"] == "messages[0].content[1].image_url"


def test_remote_urls_are_refused_unless_enabled_and_the_flag_is_named(make_client, echo_backend):
    err = _error(_post(make_client(echo_backend), _msg("https://example.com/cat.png")))
    assert "allow-remote-images" in err["message"] and "allow_remote_images" in err["message"]
    assert echo_backend.calls == []


def test_remote_urls_are_fetched_over_real_http_when_enabled(make_client, echo_backend, png):
    import json

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from rationalrewards.testing.servers import ThreadedServer

    raw = png((33, 66, 99), size=(12, 8))

    async def cat(request):
        return Response(raw, media_type="image/png")

    async def missing(request):
        return Response(b"gone", status_code=404)

    images = Starlette(routes=[Route("/cat.png", cat), Route("/missing.png", missing)])
    with ThreadedServer(images) as srv:
        client = make_client(echo_backend, allow_remote_images=True)
        r = _post(client, _msg(f"{srv.base_url}/cat.png"))
        assert r.status_code == 200, r.text
        assert json.loads(r.json()["choices"][0]["message"]["content"])["images"] == [image_hash(raw)]
        err = _error(_post(client, _msg(f"{srv.base_url}/missing.png")))
        assert "404" in err["message"]
        small = make_client(echo_backend, allow_remote_images=True, limits=ServerLimits(max_image_bytes=50))
        assert "max_image_bytes" in _error(_post(small, _msg(f"{srv.base_url}/cat.png")))["message"]


def test_too_many_images_per_message_and_per_request(make_client, echo_backend, image_url):
    limits = ServerLimits(max_images_per_message=2, max_images_per_request=3)
    client = make_client(echo_backend, limits=limits)
    u = image_url()
    err = _error(_post(client, _msg(u, u, u)))
    assert "max_images_per_message" in err["message"] and err["param"] == "messages[0]"
    two = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": u}}] * 2}
    err = _error(_post(client, {"messages": [two, two]}))
    assert "max_images_per_request" in err["message"]
    assert _post(client, _msg(u, u)).status_code == 200


def test_image_over_the_byte_limit_is_400(make_client, echo_backend, png, data_url):
    client = make_client(echo_backend, limits=ServerLimits(max_image_bytes=1000))
    big = png((1, 2, 3), size=(200, 200))
    noisy = bytes(range(256)) * 8  # incompressible filler appended to a valid PNG
    err = _error(_post(client, _msg(data_url(big + noisy))))
    assert "max_image_bytes" in err["message"]


def test_image_over_the_pixel_limit_is_400(make_client, echo_backend, image_url):
    client = make_client(echo_backend, limits=ServerLimits(max_image_pixels=32 * 32))
    err = _error(_post(client, _msg(image_url(size=(64, 64)))))
    assert "max_image_pixels" in err["message"] and "64x64" in err["message"]
    assert _post(client, _msg(image_url(size=(32, 32)))).status_code == 200


@pytest.mark.parametrize("side", [5000, 50000])
def test_decompression_bombs_are_refused_from_the_header(make_client, echo_backend, bomb_png, data_url, side):
    client = make_client(echo_backend)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = _error(_post(client, _msg(data_url(bomb_png(side, side)))))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert "pixels" in err["message"]
    assert err["param"] == "messages[0].content[1].image_url"
    # decoding would need side*side*3 bytes (75 MB / 7.5 GB); nothing close to that was allocated
    assert grown_kib * 1024 < side * side * 3 / 2
    assert echo_backend.calls == []
    assert client.get("/health").status_code == 200
