"""One contract, every backend: the tiny transformers backend directly, the project's ``openai`` backend and the
official ``openai`` SDK, both against the project's own server running the same tiny model in a real subprocess.

Contract: one Completion per conversation, in order; ``n`` texts each; greedy (and seeded sampling) is
deterministic and equal across backends for the same model; ``max_tokens`` bounds the output; images travel
intact; a conversation with a corrupt image fails alone; a served model is listed by ``/v1/models``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from PIL import Image

from rationalrewards.backends.base import Backend, Completion, GenerationConfig
from rationalrewards.conversation import Conversation, ImagePart
from rationalrewards.images import to_data_url

SHORT = 12  # tokens: keeps the suite fast


class OpenAISDKBackend(Backend):
    """A thin backend over the official ``openai`` SDK (``client.chat.completions.create``), one call per item."""

    def __init__(self, base_url: str, api_key: str = "unused", model: str | None = None):
        self.base_url = base_url
        self.api_key = api_key
        self.model = model
        self.name = f"openai-sdk:{base_url}"

    async def agenerate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        from openai import AsyncOpenAI

        config = config or GenerationConfig()
        async with AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0, timeout=120) as client:
            model = self.model or (await client.models.list()).data[0].id
            return list(await asyncio.gather(*(self._one(client, model, c, config) for c in conversations)))

    async def _one(self, client, model: str, conv: Conversation, config: GenerationConfig) -> Completion:
        extra = {} if config.seed is None else {"seed": config.seed}
        try:
            resp = await client.chat.completions.create(
                model=model,
                messages=conv.to_openai(),
                n=config.n,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_tokens,
                **extra,
            )
        except Exception as exc:  # per-item failure: the SDK raises APIStatusError subclasses
            return Completion(error=f"{type(exc).__name__}: {exc}")
        choices = sorted(resp.choices, key=lambda c: c.index)
        return Completion(texts=[c.message.content or "" for c in choices])


# ---------------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def tiny_server(tiny_vlm_path):
    """The project's server on the tiny model, in a real subprocess on a free loopback port (CPU, like the direct
    backend, so that greedy outputs can be compared)."""
    from rationalrewards.testing.servers import running_server

    with running_server(f"transformers:{tiny_vlm_path}", env={"CUDA_VISIBLE_DEVICES": ""}) as srv:
        yield srv


@pytest.fixture(params=["transformers", "openai-backend", "openai-sdk"])
def backend(request) -> Backend:
    if request.param == "transformers":
        return request.getfixturevalue("tiny_backend")
    server = request.getfixturevalue("tiny_server")
    if request.param == "openai-backend":
        from rationalrewards.backends.openai_http import OpenAIBackend

        b = OpenAIBackend(server.api_base, max_retries=1, timeout_s=120, backoff_base_s=0.05)
        request.addfinalizer(b.close)
        return b
    return OpenAISDKBackend(server.api_base)


def _image(color: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", (64, 64), color)
    img.putpixel((3, 5), (255 - color[0], 255 - color[1], 255 - color[2]))
    return img


@pytest.fixture(scope="module")
def conversations() -> list[Conversation]:
    """Text-only, one image as a data URL, one PIL image, two images, a system prompt."""
    return [
        Conversation().add("user", "a red circle above a blue square"),
        Conversation().add("user", "describe the picture", ImagePart(to_data_url(_image((250, 20, 20))))),
        Conversation().add("user", "describe the picture", ImagePart(_image((20, 20, 250)))),
        Conversation()
        .add("system", "you judge images")
        .add("user", ImagePart(_image((20, 200, 20))), "compare", ImagePart(_image((200, 200, 20)))),
    ]


@pytest.fixture(scope="module")
def reference(tiny_backend, conversations) -> list[str]:
    """Greedy texts of the direct transformers backend, one conversation at a time."""
    out = [tiny_backend.generate([c], GenerationConfig(max_tokens=SHORT))[0] for c in conversations]
    assert all(c.ok for c in out), out
    texts = [c.texts[0] for c in out]
    # the same request with a different image must read differently, or image checks below would prove nothing
    assert texts[1] != texts[2]
    assert len(set(texts)) == len(texts)
    return texts


def _corrupt() -> Conversation:
    return Conversation().add("user", "describe", ImagePart("data:image/png;base64,bm90IGFuIGltYWdlIGF0IGFsbA=="))


# ---------------------------------------------------------------------------------------------------------------
# the contract


def test_one_completion_per_conversation_in_order(backend, conversations, reference):
    out = backend.generate(conversations, GenerationConfig(max_tokens=SHORT))
    assert len(out) == len(conversations)
    assert all(isinstance(c, Completion) and c.ok for c in out), [c.error for c in out]
    assert [len(c.texts) for c in out] == [1] * len(conversations)
    assert [c.texts[0] for c in out] == reference


def test_greedy_is_deterministic_and_equal_across_backends(backend, conversations, reference):
    first = backend.generate(conversations[:2], GenerationConfig(max_tokens=SHORT))
    again = backend.generate(conversations[:2], GenerationConfig(max_tokens=SHORT))
    assert [c.texts for c in first] == [c.texts for c in again]
    assert [c.texts[0] for c in first] == reference[:2]


def test_n_texts_each(backend, conversations):
    out = backend.generate(conversations[:2], GenerationConfig(n=3, temperature=1.0, max_tokens=6, seed=11))
    assert [len(c.texts) for c in out] == [3, 3]
    assert all(isinstance(t, str) for c in out for t in c.texts)
    greedy = backend.generate(conversations[:1], GenerationConfig(n=2, max_tokens=6))
    assert len(greedy[0].texts) == 2 and greedy[0].texts[0] == greedy[0].texts[1]


def test_seeded_sampling_is_reproducible_and_equal_across_backends(backend, tiny_backend, conversations):
    config = GenerationConfig(n=2, temperature=1.0, max_tokens=8, seed=7)
    expected = [c.texts for c in tiny_backend.generate(conversations[1:3], config)]
    got = [c.texts for c in backend.generate(conversations[1:3], config)]
    assert got == expected
    assert backend.generate(conversations[1:2], config)[0].texts == expected[0]


def test_max_tokens_bounds_the_output(backend, conversations):
    short = backend.generate(conversations, GenerationConfig(max_tokens=2))
    long = backend.generate(conversations, GenerationConfig(max_tokens=SHORT))
    cut = 0
    for s, g in zip(short, long, strict=True):
        a, b = s.texts[0], g.texts[0]
        stem = a.rstrip("\ufffd")  # a token cut mid-character decodes to U+FFFD until the next token completes it
        assert b.startswith(stem), (a, b)
        cut += a != b
    assert cut > 0  # the bound actually shortened something


def test_images_travel_intact(backend, conversations, reference):
    # the PIL image and the data-URL image reach the model with the same pixels as in the direct backend
    out = backend.generate(conversations[1:4], GenerationConfig(max_tokens=SHORT))
    assert [c.texts[0] for c in out] == reference[1:4]


def test_a_corrupt_image_fails_its_own_conversation_only(backend, conversations, reference):
    convs = [conversations[0], _corrupt(), conversations[1]]
    out = backend.generate(convs, GenerationConfig(max_tokens=SHORT))
    assert len(out) == 3
    assert out[1].error and not out[1].texts
    assert "image" in out[1].error.lower()
    assert out[0].ok and out[2].ok
    assert [out[0].texts[0], out[2].texts[0]] == [reference[0], reference[1]]


def test_models_endpoint_lists_the_served_model(tiny_server, tiny_vlm_path):
    import httpx
    from openai import OpenAI

    r = httpx.get(f"{tiny_server.api_base}/models", timeout=30)
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert len(ids) == 1 and str(tiny_vlm_path) in ids[0]
    with OpenAI(base_url=tiny_server.api_base, api_key="unused", max_retries=0) as client:
        assert [m.id for m in client.models.list().data] == ids
        with pytest.raises(Exception) as info:
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        assert getattr(info.value, "status_code", None) == 404
