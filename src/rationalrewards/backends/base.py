"""The backend contract: a batch of conversations in, n texts per conversation out.

Backends know nothing of rubrics or templates. Per-item failure never fails the
batch: a failed item comes back as a ``Completion`` with ``error`` set.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..conversation import Conversation

T = TypeVar("T")


@dataclass
class GenerationConfig:
    """Sampling settings shared by every backend."""

    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 1024
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Completion:
    """The answer for one conversation: ``n`` texts, or an error saying why there are none."""

    texts: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Backend(ABC):
    """Turns conversations into texts. Implement ``agenerate``; ``generate`` is the sync facade."""

    #: short name recorded in every output record (e.g. "openai:http://host/v1 model=x")
    name: str = "backend"

    @abstractmethod
    async def agenerate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        """One ``Completion`` per conversation, in order."""

    def generate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        return run_sync(self.agenerate(conversations, config))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory; the default does nothing."""


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop already runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
