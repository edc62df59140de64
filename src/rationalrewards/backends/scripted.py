"""A backend that answers from a Python function: for tests, dry runs and harness-overhead benchmarks.

Not a mock of a model: it is a real backend whose "model" is the callable you give it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..conversation import Conversation
from .base import Backend, Completion, GenerationConfig

Responder = Callable[[Conversation, int], str]


class ScriptedBackend(Backend):
    """``responder(conversation, sample_index) -> text``; an exception becomes that item's error.

    Records every conversation it was given in ``calls`` (one list per batch).
    """

    def __init__(self, responder: Responder, name: str = "scripted", delay_s: float = 0.0):
        self.responder = responder
        self.name = name
        self.delay_s = delay_s
        self.calls: list[list[Conversation]] = []

    async def agenerate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        config = config or GenerationConfig()
        self.calls.append(list(conversations))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = []
        for conv in conversations:
            try:
                out.append(Completion(texts=[self.responder(conv, i) for i in range(config.n)]))
            except Exception as exc:  # per-item failure never fails the batch
                out.append(Completion(error=f"{type(exc).__name__}: {exc}"))
        return out
