"""The generator contract: a batch of requests (and, for edits, source images) in, one image per request out.

Every adapter counts what it made: ``images_made`` is the generator-call count that budgets and
test-time-scaling plots use (one call = one image), ``batches`` the number of batched invocations.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from PIL import Image

__all__ = ["Generator", "GeneratorError", "load_generator", "GENERATORS"]


class GeneratorError(RuntimeError):
    """A generator could not produce an image."""


class Generator(ABC):
    """Turns requests into images. Implement ``_generate``; call ``generate``."""

    #: short name recorded in every trajectory (e.g. "diffusers:black-forest-labs/FLUX.1-dev")
    name: str = "generator"
    #: whether the generator takes a source image (instruction editing)
    supports_edit: bool = False
    #: whether the generator can make an image from text alone
    supports_t2i: bool = True

    def __init__(self) -> None:
        self.images_made = 0
        self.batches = 0

    @abstractmethod
    def _generate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        """One RGB image per request, in order; inputs are already validated."""

    def generate(
        self, requests: Sequence[str], seeds: Sequence[int], sources: Sequence[Any | None] | None = None
    ) -> list[Image.Image]:
        """One image per request; ``seeds[i]`` seeds item ``i``; ``sources[i]`` is its source image or None."""
        requests = list(requests)
        seeds = [int(s) for s in seeds]
        sources = [None] * len(requests) if sources is None else list(sources)
        if not (len(requests) == len(seeds) == len(sources)):
            raise ValueError(
                f"generate needs one seed and one source per request: got {len(requests)} requests, "
                f"{len(seeds)} seeds, {len(sources)} sources"
            )
        for i, r in enumerate(requests):
            if not isinstance(r, str) or not r.strip():
                raise ValueError(f"request {i} is empty or not a string")
        if any(s is not None for s in sources) and not self.supports_edit:
            raise ValueError(f"generator {self.name!r} does not take source images (no edit support)")
        if any(s is None for s in sources) and not self.supports_t2i:
            raise ValueError(f"generator {self.name!r} needs a source image for every request (edit only)")
        if not requests:
            return []
        images = self._generate(requests, seeds, sources)
        if len(images) != len(requests):
            raise GeneratorError(f"{self.name}: made {len(images)} images for {len(requests)} requests")
        self.images_made += len(images)
        self.batches += 1
        return [img if img.mode == "RGB" else img.convert("RGB") for img in images]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory or connections; the default does nothing."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# prefix -> "module:factory"; the factory takes (rest_of_spec, **kwargs) and returns a Generator
GENERATORS: dict[str, str] = {
    "diffusers": "rationalrewards.refine.generators.diffusers_gen:from_spec",
    "openai-images": "rationalrewards.refine.generators.openai_images:from_spec",
    "world": "rationalrewards.refine.generators.world:from_spec",
}


def load_generator(spec: str | Generator, **kwargs: Any) -> Generator:
    """A generator from a spec string.

    ``diffusers:PATH_OR_ID[?edit&device=cuda&dtype=bfloat16&batch_size=4&num_inference_steps=28...]``,
    ``openai-images:URL[?model=gpt-image-1&size=1024x1024]``, ``world[:OPTIONS]`` (the synthetic world).
    """
    if isinstance(spec, Generator):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("generator spec must be a non-empty string, e.g. 'diffusers:black-forest-labs/FLUX.1-dev'")
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if prefix not in GENERATORS:
        raise ValueError(f"unknown generator {prefix!r} in spec {spec!r}; known: {', '.join(sorted(GENERATORS))}")
    module_name, _, attr = GENERATORS[prefix].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(
                f"generator {prefix!r} is not available in this install ({module_name} is missing)"
            ) from None
        raise
    return getattr(module, attr)(rest, **kwargs)


def parse_spec_query(rest: str) -> tuple[str, dict[str, str]]:
    """Split ``PATH?key=value&flag`` into the path and a dict (a bare flag maps to "true")."""
    from urllib.parse import parse_qsl

    path, _, query = rest.partition("?")
    opts: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        if "=" in part:
            opts.update(parse_qsl(part, keep_blank_values=True))
        else:
            opts[part] = "true"
    return path, opts


def coerce(value: str) -> Any:
    """A query-string value as bool, int, float or str."""
    low = value.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
