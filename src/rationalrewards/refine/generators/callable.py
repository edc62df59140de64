"""Any Python function as a generator: for tests, dry runs, and generators with their own Python API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from ...images import load_image
from .base import Generator


class CallableGenerator(Generator):
    """``fn(request, seed, source) -> image`` per item (``batched=True``: ``fn(requests, seeds, sources) -> images``).

    Whatever ``images.load_image`` reads (PIL, PNG bytes, a path) is accepted as the returned image.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        supports_edit: bool = True,
        supports_t2i: bool = True,
        batched: bool = False,
    ):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"CallableGenerator needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or f"callable:{getattr(fn, '__qualname__', type(fn).__name__)}"
        self.supports_edit = supports_edit
        self.supports_t2i = supports_t2i
        self.batched = batched

    def _generate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        if self.batched:
            out = list(self.fn(requests, seeds, sources))
        else:
            out = [self.fn(r, s, src) for r, s, src in zip(requests, seeds, sources, strict=True)]
        return [load_image(img) for img in out]
