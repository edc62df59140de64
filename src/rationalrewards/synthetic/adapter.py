"""The world as a ``refine`` generator: request texts (and source images) in, images out, every image registered.

Spec: ``world`` or ``world:vividness=0.6&size=128&scale=1.5`` (``scale`` multiplies
every failure rate: > 1 a weaker generator, < 1 a stronger one). Without a
``world=`` keyword it uses ``world.default_world()``, the one the synthetic teacher
shares, so the teacher can find every image this generator made.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PIL import Image

from ..refine.generators.base import Generator, GeneratorError
from .generator import GenerationRecord
from .world import World, default_world


class WorldImageGenerator(Generator):
    supports_edit = True
    supports_t2i = True

    def __init__(self, world: World | None = None, vividness: float = 0.5):
        super().__init__()
        if not 0.0 <= vividness <= 1.0:
            raise ValueError(f"vividness must be in [0, 1], got {vividness}")
        self.world = world or default_world()
        self.vividness = vividness
        self.name = f"world(vividness={vividness})"
        self.records: list[GenerationRecord] = []

    def _generate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        out = []
        for text, seed, src in zip(requests, seeds, sources):
            if src is not None and self.world.lookup(src) is None:
                raise GeneratorError("the world can only edit images it made: source image not in its registry")
            gen = self.world.generate(text, seed, self.vividness, source=src, task="edit" if src is not None else "t2i")
            self.records.append(gen.record)
            out.append(gen.image)
        return out


def from_spec(rest: str = "", world: World | None = None, **kwargs: Any) -> WorldImageGenerator:
    opts: dict[str, str] = {}
    for part in filter(None, rest.lstrip("?").replace(",", "&").split("&")):
        k, sep, v = part.partition("=")
        if not sep:
            raise ValueError(f"world generator option {part!r} must be key=value")
        opts[k.strip()] = v.strip()
    unknown = set(opts) - {"vividness", "size", "scale"}
    if unknown:
        raise ValueError(f"unknown world generator options: {', '.join(sorted(unknown))} (known: vividness, size, scale)")
    if world is None and ("size" in opts or "scale" in opts):
        base = default_world()
        cfg = base.config
        if "scale" in opts:
            cfg = cfg.scaled(float(opts["scale"]))
        if "size" in opts:
            cfg = replace(cfg, size=int(opts["size"]))
        world = World(cfg, base.request_config, registry=base.registry)
    return WorldImageGenerator(world, vividness=float(opts.get("vividness", kwargs.get("vividness", 0.5))))
