"""The synthetic world as a ``refine`` generator: request texts (and world source images) in, world images out.

Every image it makes is registered in its world's registry, so the privileged teacher (and the truth)
find the scene behind it by content hash. Without ``world=`` it shares ``synthetic.default_world()``'s
registry, which is what the ``synthetic-teacher`` backend looks images up in by default.

Seeds: the loop gives image ``j`` of *every* item seed ``seed + j``. The world keys each failure draw by
(seed, failure kind, constraint), so raw seeds would give every item with the same seed the same
artefact draws (all noisy or none). With ``mix_seeds`` (the default) the world seed is a hash of the
loop's seed and the request's *content* (what it asks for, without how explicitly it says it; plus the
source scene for edits): items draw independently, while a refined request for the same item keeps the
same random stream (common random numbers: it fails on a subset of the draws the original failed on).

Spec: ``world`` or ``world:seed=3&vividness=0.5&scale=1.5&size=128&mix_seeds=false`` (``scale``
multiplies every failure rate; ``seed`` offsets every seed).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import replace
from typing import Any

from PIL import Image

from ...synthetic.generator import GenerationRecord, GeneratorConfig
from ...synthetic.parse import parse_request
from ...synthetic.request import Request
from ...synthetic.truth import Truth
from ...synthetic.world import World, default_world
from ..constraints import ConstraintCheck
from .base import Generator, GeneratorError, coerce, parse_spec_query

__all__ = ["WORLD_CONSTRAINT_CHECK", "WorldGenerator", "from_spec", "content_key"]

# The GCR loop's constraint check for world requests: the world's refined requests rephrase the whole
# request, so the framing noun ("picture", "image") and a "do not touch X" (restated "keep X unchanged")
# change wording, not constraints; quoted text, counts and colours are still checked.
WORLD_CONSTRAINT_CHECK = ConstraintCheck(noun=False, negation=False)

# fields that say how explicitly a constraint is stated, not what it asks for
_LEVEL_FIELDS = frozenset({"e", "count_e", "color_e", "conflicted", "count_alt", "color_alt", "alt"})


def _strip_levels(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strip_levels(v) for k, v in sorted(x.items()) if k not in _LEVEL_FIELDS}
    if isinstance(x, (list, tuple)):
        return [_strip_levels(v) for v in x]
    return x


def content_key(request: Request) -> str:
    """What a request asks for, without explicitness, cleanliness or preservation wording (a stable string)."""
    d = request.to_dict()
    d.pop("clean", None)
    d.pop("preserve", None)
    return repr(_strip_levels(d))


class WorldGenerator(Generator):
    """Text-to-image and edits in the synthetic world; ``truth_of`` gives evaluation-only ground truth.

    ``world``: the world to draw and register in (default: a world sharing ``default_world()``'s
    registry, built from ``config`` when given). ``vividness``: the colour-style knob of every image.
    ``seed``: an offset added to every seed. ``mix_seeds``: see the module docstring.
    """

    supports_edit = True
    supports_t2i = True

    def __init__(
        self,
        world: World | None = None,
        config: GeneratorConfig | None = None,
        vividness: float = 0.5,
        seed: int = 0,
        mix_seeds: bool = True,
    ):
        super().__init__()
        if world is not None and config is not None:
            raise ValueError("give either world= or config= (a world carries its own generator config)")
        if not 0.0 <= vividness <= 1.0:
            raise ValueError(f"vividness must be in [0, 1], got {vividness}")
        if world is None:
            base = default_world()
            world = base if config is None else World(config, base.request_config, registry=base.registry)
        self.world = world
        self.vividness = float(vividness)
        self.seed = int(seed)
        self.mix_seeds = bool(mix_seeds)
        # hash -> what this generator drew; the world's registry keeps the first record per pixel hash, which
        # for an edit that changed nothing is the source image's record, not the generation's
        self._made: dict[str, GenerationRecord] = {}
        cfg = world.config
        default = GeneratorConfig()
        tag = "" if cfg == default else f",config={_config_tag(cfg, default)}"
        self.name = f"world(vividness={self.vividness:g},seed={self.seed}{tag}{'' if mix_seeds else ',raw-seeds'})"

    def world_seed(self, request: Request, seed: int, source: GenerationRecord | None = None) -> int:
        """The seed the world draws with for ``request`` at loop seed ``seed``."""
        seed = int(seed) + self.seed
        if not self.mix_seeds:
            return seed
        src = source.image_hash if source is not None else ""
        h = hashlib.blake2b(f"{seed}|{src}|{content_key(request)}".encode(), digest_size=8).digest()
        return struct.unpack(">Q", h)[0] % 2**31

    def _generate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        out = []
        for text, seed, src in zip(requests, seeds, sources, strict=True):
            src_rec = None
            if src is not None:
                src_rec = self.world.lookup(src)
                if src_rec is None:
                    raise GeneratorError(
                        "the world can only edit images it made: the source image is not in its registry "
                        "(make the bench with this generator's world, or load its registry with World.load_registry)"
                    )
            task = "edit" if src is not None else "t2i"
            req = parse_request(text, task)
            gen = self.world.generate(
                text, self.world_seed(req, seed, src_rec), self.vividness, source=src_rec, task=task, register=True
            )
            self._made.setdefault(gen.record.image_hash, gen.record)
            out.append(gen.image)
        return out

    # -- evaluation only: none of this may reach a critic
    def record_of(self, image: Any) -> GenerationRecord:
        """The world's record of an image this generator made (any form ``images.load_image`` reads, or its hash)."""
        if isinstance(image, str) and image in self._made:
            return self._made[image]
        rec = self.world.lookup(image)
        if rec is None:
            raise KeyError("image is not in the world's registry (not made by this world)")
        return self._made.get(rec.image_hash or "", rec)

    def truth_of(self, image: Any, original_request: str | Request) -> Truth:
        """True per-dimension scores, findings and hidden human utility of ``image`` for the user's original request.

        Evaluation only: the critic must never see it.
        """
        rec = self.record_of(image)
        if rec.kind != "generation":
            raise ValueError("a source image has no request to be judged against")
        return self.world.truth(rec, original_request)


def _config_tag(cfg: GeneratorConfig, default: GeneratorConfig) -> str:
    diff = {k: v for k, v in cfg.to_dict().items() if default.to_dict().get(k) != v}
    return hashlib.blake2b(repr(sorted(diff.items())).encode(), digest_size=4).hexdigest()


_OPTIONS = ("seed", "vividness", "scale", "size", "mix_seeds")


def from_spec(rest: str = "", world: World | None = None, **kwargs: Any) -> WorldGenerator:
    """``world[:key=value&...]`` (a leading ``?`` is allowed): options seed, vividness, scale, size, mix_seeds."""
    _, opts = parse_spec_query("?" + rest.lstrip("?").replace(",", "&"))
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown world generator option(s): {', '.join(unknown)} (known: {', '.join(_OPTIONS)})")
    values = {k: coerce(v) for k, v in opts.items()}
    config = None
    if "scale" in values or "size" in values:
        if world is not None:
            raise ValueError("scale= and size= build a world; they cannot be combined with world=")
        config = default_world().config
        if "scale" in values:
            config = config.scaled(float(values["scale"]))
        if "size" in values:
            config = replace(config, size=int(values["size"]))
    params: dict[str, Any] = {"world": world, "config": config}
    for k in ("seed", "vividness", "mix_seeds"):
        if k in values:
            params[k] = values[k]
        elif k in kwargs:
            params[k] = kwargs.pop(k)
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s) for the world generator: {', '.join(sorted(kwargs))}")
    return WorldGenerator(**params)
