"""The neutral conversation type: OpenAI and Hugging Face views, and parsing OpenAI messages back."""

import io

import numpy as np
import pytest
from PIL import Image

from rationalrewards.conversation import Conversation, ImagePart, Message, TextPart
from rationalrewards.images import load_image


def _img(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _conv() -> Conversation:
    return (
        Conversation()
        .add("system", "You judge images.")
        .add("user", "Request: a cat. ", "Output:", ImagePart(_img(0)), "Source:", ImagePart(_png(_img(1))))
        .add("assistant", "## Analysis", "\nfine")
    )


def test_add_and_images():
    c = _conv()
    assert [m.role for m in c.messages] == ["system", "user", "assistant"]
    assert isinstance(c.messages[1].parts[0], TextPart)
    assert c.messages[1].text == "Request: a cat. Output:Source:"
    assert len(c.images()) == 2


def test_to_openai_text_only_messages_are_strings():
    out = _conv().to_openai()
    assert out[0] == {"role": "system", "content": "You judge images."}
    assert out[2] == {"role": "assistant", "content": "## Analysis\nfine"}


def test_to_openai_parts_with_data_urls_in_order():
    out = _conv().to_openai()
    content = out[1]["content"]
    assert out[1]["role"] == "user"
    assert [p["type"] for p in content] == ["text", "text", "image_url", "text", "image_url"]
    assert content[0]["text"] == "Request: a cat. "
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    assert all(u.startswith("data:image/png;base64,") for u in urls)
    for url, seed in zip(urls, (0, 1), strict=True):
        assert np.array_equal(np.asarray(load_image(url)), np.asarray(_img(seed)))


def test_to_hf_placeholders_in_order():
    out = _conv().to_hf()
    assert out[0] == {"role": "system", "content": [{"type": "text", "text": "You judge images."}]}
    types = [p["type"] for p in out[1]["content"]]
    assert types == ["text", "text", "image", "text", "image"]
    assert out[1]["content"][2] == {"type": "image"}  # no pixels in the template view
    assert [p["text"] for p in out[2]["content"]] == ["## Analysis", "\nfine"]


def test_from_openai_round_trip():
    conv = _conv()
    back = Conversation.from_openai(conv.to_openai())
    assert [m.role for m in back.messages] == ["system", "user", "assistant"]
    assert [m.text for m in back.messages] == [m.text for m in conv.messages]
    assert back.to_hf()[1] == conv.to_hf()[1]
    for got, want in zip(back.images(), conv.images(), strict=True):
        assert isinstance(got, str) and got.startswith("data:")
        assert np.array_equal(np.asarray(load_image(got)), np.asarray(load_image(want)))
    assert back.to_openai() == conv.to_openai()


def test_from_openai_accepts_bare_url_string_part():
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": "http://host/x.png"}]}]
    conv = Conversation.from_openai(msgs)
    assert conv.messages[0].parts == [ImagePart("http://host/x.png")]


def test_from_openai_empty():
    assert Conversation.from_openai([]).messages == []


@pytest.mark.parametrize(
    "messages,match",
    [
        (["hello"], "message 0: needs a role"),
        ([{"content": "x"}], "message 0: needs a role"),
        ([{"role": "tool", "content": "x"}], "message 0: needs a role"),
        ([{"role": "user", "content": "ok"}, {"role": "user"}], "message 1: content must be"),
        ([{"role": "user", "content": 5}], "message 0: content must be"),
        ([{"role": "user", "content": {"type": "text", "text": "x"}}], "content must be"),
        ([{"role": "user", "content": ["plain string part"]}], "message 0 part 0: unsupported part None"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], "unsupported part 'input_audio'"),
        ([{"role": "user", "content": [{"type": "text", "text": 3}]}], "unsupported part 'text'"),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}],
            "message 0 part 1: image_url needs a url",
        ),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"u": "x"}}]}], "needs a url"),
    ],
)
def test_from_openai_malformed(messages, match):
    with pytest.raises(ValueError, match=match):
        Conversation.from_openai(messages)


def test_message_text_ignores_images():
    m = Message("user", [TextPart("a"), ImagePart(b""), TextPart("b")])
    assert m.text == "ab"


def test_image_part_pil():
    assert np.array_equal(np.asarray(ImagePart(_png(_img(3))).pil()), np.asarray(_img(3)))
