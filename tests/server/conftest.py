"""Fixtures for the HTTP server tests: image factories and apps over real (scripted) backends."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable, Sequence

import pytest
from PIL import Image

from rationalrewards.backends.base import Backend, Completion, GenerationConfig
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.format import SCORE_A, render_critique, render_pairwise
from rationalrewards.images import image_hash, load_image
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique

FAIL_MARK = "<<fail this item>>"


def _png(color: tuple[int, int, int], size: tuple[int, int] = (16, 16), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def _data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def png() -> Callable[..., bytes]:
    """``png((r, g, b), size=(w, h))`` -> PNG bytes of a plain image."""
    return _png


@pytest.fixture
def image_url() -> Callable[..., str]:
    """``image_url((r, g, b), size=(w, h))`` -> a base64 PNG data URL."""
    return lambda color=(10, 20, 30), size=(16, 16): _data_url(_png(color, size))


@pytest.fixture
def data_url() -> Callable[..., str]:
    """``data_url(raw_bytes)`` -> a base64 data URL of any bytes."""
    return _data_url


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no pixel data (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def bomb_png() -> Callable[[int, int], bytes]:
    return png_header_only


def score_of(image) -> float:
    """The scripted critic's verdict: the red channel of the top-left pixel mapped onto 1-4."""
    r = load_image(image).getpixel((0, 0))[0]
    return round(1 + 3 * r / 255, 3)


def critic(conv: Conversation, sample_index: int) -> str:
    """A scripted reward model: scores follow the images' red channel, so tests can predict every number."""
    text = "\n".join(m.text for m in conv.messages)
    if FAIL_MARK in text:
        raise RuntimeError("scripted failure for this item")
    images = conv.images()
    if SCORE_A.label in text:  # a pairwise prompt: the last two images are A and B
        task = "edit" if len(images) == 3 else "t2i"
        sa, sb = score_of(images[-2]), score_of(images[-1])
        keys = [d.key for d in dimensions_for(task)]
        pref = "A" if sa > sb else "B" if sb > sa else "tie"
        pc = PairwiseCritique(
            task=task,
            scores_a=dict.fromkeys(keys, sa),
            scores_b=dict.fromkeys(keys, sb),
            justifications=dict.fromkeys(keys, "by the red channel"),
            winners=dict.fromkeys(keys, pref),
            preference=pref,
            summary="scripted",
        )
        return render_pairwise(pc)
    task = "edit" if len(images) == 2 else "t2i"
    s = score_of(images[-1])
    keys = [d.key for d in dimensions_for(task)]
    c = Critique(
        task=task,
        scores=dict.fromkeys(keys, s),
        justifications=dict.fromkeys(keys, "by the red channel"),
        summary="scripted",
        refinement_comments="none",
        refined_request="the same request, stated more explicitly",
    )
    return render_critique(c)


def echo(conv: Conversation, sample_index: int) -> str:
    """A scripted chat model that reports what it received, as JSON."""
    return json.dumps(
        {
            "roles": [m.role for m in conv.messages],
            "texts": [m.text for m in conv.messages],
            "images": [image_hash(i) for i in conv.images()],
            "sizes": [list(load_image(i).size) for i in conv.images()],
            "sample": sample_index,
        }
    )


class RecordingBackend(ScriptedBackend):
    """A scripted backend that also records the GenerationConfig of every call."""

    def __init__(self, responder, name: str = "scripted"):
        super().__init__(responder, name=name)
        self.configs: list[GenerationConfig] = []

    async def agenerate(self, conversations: Sequence[Conversation], config: GenerationConfig | None = None):
        self.configs.append(config or GenerationConfig())
        return await super().agenerate(conversations, config)


class ExplodingBackend(Backend):
    """A backend whose whole-batch call raises (a systemic failure, e.g. a bug or a lost GPU)."""

    name = "exploding"

    async def agenerate(self, conversations, config=None) -> list[Completion]:
        raise RuntimeError("the accelerator caught fire")


@pytest.fixture
def critic_backend() -> RecordingBackend:
    return RecordingBackend(critic, name="scripted-critic")


@pytest.fixture
def echo_backend() -> RecordingBackend:
    return RecordingBackend(echo, name="scripted-echo")


@pytest.fixture
def make_client():
    """``make_client(backend_or_model, **create_app_kwargs)`` -> a TestClient over ``create_app``."""
    from fastapi.testclient import TestClient

    from rationalrewards.server import create_app

    clients = []

    def make(model, **kwargs) -> TestClient:
        client = TestClient(create_app(model, **kwargs))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def exploding_backend() -> ExplodingBackend:
    return ExplodingBackend()
