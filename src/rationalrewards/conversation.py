"""The one neutral message type that templates produce and every backend consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .images import load_image, to_data_url

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    image: Any  # anything images.load_image reads

    def pil(self):
        return load_image(self.image)


Part = Union[TextPart, ImagePart]


@dataclass
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass
class Conversation:
    """An ordered list of messages; images are parts of user messages."""

    messages: list[Message] = field(default_factory=list)

    def add(self, role: Role, *parts: str | Part) -> Conversation:
        self.messages.append(Message(role, [TextPart(p) if isinstance(p, str) else p for p in parts]))
        return self

    def images(self) -> list[Any]:
        return [p.image for m in self.messages for p in m.parts if isinstance(p, ImagePart)]

    def to_openai(self) -> list[dict[str, Any]]:
        """OpenAI chat-completions messages; images become data-URL ``image_url`` parts."""
        out: list[dict[str, Any]] = []
        for m in self.messages:
            if all(isinstance(p, TextPart) for p in m.parts):
                out.append({"role": m.role, "content": m.text})
                continue
            content = []
            for p in m.parts:
                if isinstance(p, TextPart):
                    content.append({"type": "text", "text": p.text})
                else:
                    content.append({"type": "image_url", "image_url": {"url": to_data_url(p.image)}})
            out.append({"role": m.role, "content": content})
        return out

    def to_hf(self) -> list[dict[str, Any]]:
        """Messages for a Hugging Face processor's chat template (``{"type": "image"}`` placeholders, in order)."""
        out: list[dict[str, Any]] = []
        for m in self.messages:
            content = []
            for p in m.parts:
                if isinstance(p, TextPart):
                    content.append({"type": "text", "text": p.text})
                else:
                    content.append({"type": "image"})
            out.append({"role": m.role, "content": content})
        return out

    @classmethod
    def from_openai(cls, messages: list[dict[str, Any]]) -> Conversation:
        """Parse OpenAI-style messages (string or part-list content) back into a Conversation.

        Image URLs stay as given (``data:`` URLs decode later through ``images.load_image``);
        raises ValueError on a malformed message.
        """
        conv = cls()
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise ValueError(f"message {i}: needs a role of system, user or assistant")
            content = m.get("content")
            if isinstance(content, str):
                conv.add(m["role"], content)
                continue
            if not isinstance(content, list):
                raise ValueError(f"message {i}: content must be a string or a list of parts")
            parts: list[Part] = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    parts.append(TextPart(part["text"]))
                elif kind == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    if not isinstance(url, str):
                        raise ValueError(f"message {i} part {j}: image_url needs a url string")
                    parts.append(ImagePart(url))
                else:
                    raise ValueError(f"message {i} part {j}: unsupported part {kind!r}")
            conv.messages.append(Message(m["role"], parts))
        return conv
