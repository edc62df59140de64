"""The world: generator, request sampler and the image registry that lets anyone recover the scene behind an image.

Lookup is by content hash of the decoded pixels (``images.image_hash``): the same
picture is found whether it arrives as PNG bytes, a data URL, a path or a PIL
image. Every image the world makes is registered; a dataset saved to disk writes
its registry next to it (``pairs.parquet`` -> ``pairs.world.jsonl``, one record a
line) and ``World.load_registry`` reads it back. Nothing is hidden in the PNGs.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from ..images import ImageError, image_hash
from .generator import Generation, GenerationRecord, GeneratorConfig, WorldGenerator
from .phrase import phrase_request
from .request import Request
from .sample import RequestConfig, sample_edit_request, sample_source_scene, sample_t2i_request
from .scene import Scene
from .truth import Truth, judge

SOURCE_VIVIDNESS = 0.5
_HASH_LEN = 16


def registry_path(dataset_path: str | Path) -> Path:
    """Where the registry of a dataset file lives: ``x.parquet`` / ``x.jsonl`` -> ``x.world.jsonl``."""
    p = Path(dataset_path)
    return p.with_name(p.name.split(".")[0] + ".world.jsonl")


class Registry:
    """Image content hash -> the records of what the world drew with exactly those pixels.

    Identical pixels mean an identical drawn scene, but not always one record: an edit that
    changed nothing looks exactly like its source. ``get`` returns the first record
    registered for a picture; ``get_all`` every distinct one (see ``World.edit_record``).
    """

    def __init__(self, records: Iterable[GenerationRecord] = ()):
        self._records: dict[str, list[GenerationRecord]] = {}
        for r in records:
            self.add(r)

    def add(self, record: GenerationRecord) -> None:
        if not record.image_hash:
            raise ValueError("record has no image_hash; render it through the world first")
        same = self._records.setdefault(record.image_hash, [])
        if all(r.to_dict() != record.to_dict() for r in same):
            same.append(record)

    def _hash(self, image: Any) -> str | None:
        if isinstance(image, str) and len(image) == _HASH_LEN and all(c in "0123456789abcdef" for c in image):
            return image
        try:
            return image_hash(image)
        except ImageError:
            return None

    def get(self, image: Any) -> GenerationRecord | None:
        """The first record of an image (any form ``images.load_image`` reads, or its hash); None if unknown."""
        recs = self.get_all(image)
        return recs[0] if recs else None

    def get_all(self, image: Any) -> list[GenerationRecord]:
        h = self._hash(image)
        return list(self._records.get(h, [])) if h else []

    def __contains__(self, image: Any) -> bool:
        return self.get(image) is not None

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[GenerationRecord]:
        return (r for recs in self._records.values() for r in recs)

    def update(self, other: Registry | Iterable[GenerationRecord]) -> None:
        for r in other:
            self.add(r)

    def save(self, path: str | Path) -> Path:
        """Write every record as one JSON line, atomically (sorted: the same content, the same file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                lines = sorted(json.dumps(r.to_dict(), sort_keys=True, separators=(",", ":")) for r in self)
                for line in lines:
                    f.write(line + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no world registry at {path}")
        reg = cls()
        with path.open() as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    reg.add(GenerationRecord.from_dict(json.loads(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{i}: not a world record: {exc}") from None
        return reg


class World:
    """The synthetic world: sample requests, generate (text-to-image and edits), look images up, judge them."""

    def __init__(
        self,
        config: GeneratorConfig | None = None,
        request_config: RequestConfig | None = None,
        registry: Registry | None = None,
    ):
        self.config = config or GeneratorConfig()
        self.request_config = request_config or RequestConfig()
        self.generator = WorldGenerator(self.config)
        self.registry = registry if registry is not None else Registry()

    # -- requests
    def sample_request(self, seed: int | str, task: str = "t2i", source: Scene | None = None) -> tuple[Request, str]:
        """A random request and its text; edits need the source scene (see ``sample_source``)."""
        rng = random.Random(f"request|{seed}")
        if task == "edit":
            if source is None:
                raise ValueError("an edit request is drawn for a source scene (source=...)")
            req = sample_edit_request(rng, source, self.request_config)
        elif task == "t2i":
            req = sample_t2i_request(rng, self.request_config)
        else:
            raise ValueError(f"task must be 't2i' or 'edit', got {task!r}")
        return req, phrase_request(req, random.Random(f"phrase|{seed}"))

    def sample_source(self, seed: int | str, vividness: float = SOURCE_VIVIDNESS, register: bool = True) -> Generation:
        """A clean source image for an edit (registered, so its scene can be found from its pixels)."""
        scene = sample_source_scene(random.Random(f"source|{seed}"))
        gen = self.generator.source_image(scene, vividness)
        if register:
            self.registry.add(gen.record)
        return gen

    # -- generation
    def generate(
        self,
        request: Request | str,
        seed: int,
        vividness: float = 0.5,
        source: Any = None,
        task: str | None = None,
        register: bool = True,
        render: bool = True,
    ) -> Generation:
        """Generate for a request (text or structure). ``source``: a Scene, a record, or a world image.

        ``render=False`` only simulates (no image, nothing registered): for statistics over many draws.
        """
        src_scene, src_viv = self.resolve_source(source)
        gen = self.generator.generate(request, seed, vividness, src_scene, src_viv, task, render=render)
        if register and render:
            self.registry.add(gen.record)
        return gen

    def resolve_source(self, source: Any) -> tuple[Scene | None, float | None]:
        if source is None:
            return None, None
        if isinstance(source, Scene):
            return source, SOURCE_VIVIDNESS
        if isinstance(source, GenerationRecord):
            return source.scene, source.vividness
        if isinstance(source, Generation):
            return source.record.scene, source.record.vividness
        rec = self.lookup(source)
        if rec is None:
            raise ValueError("the source image is not one the world made (not in its registry); load the registry "
                             "of the dataset it came from with World.load_registry")  # fmt: skip
        return rec.scene, rec.vividness

    # -- lookup and truth
    def lookup(self, image: Any) -> GenerationRecord | None:
        """The record of a world image from its pixels (PNG bytes, data URL, path, PIL) or hash; None if unknown."""
        return self.registry.get(image)

    def edit_record(self, output: Any, source: Any, request: Request | str | None = None) -> GenerationRecord | None:
        """The record of an edit's output given its source image (what an edit judge needs).

        Picks the generation record whose source is ``source``'s scene (and, when given, whose
        request equals ``request``); when the output is pixel-identical to the source and no
        such record is registered, returns an "unchanged" edit record built from the source.
        """
        src = self.lookup(source)
        if src is None:
            return None
        if isinstance(request, str):
            from .parse import parse_request

            request = parse_request(request, "edit")
        cands = [r for r in self.registry.get_all(output) if r.kind == "generation" and r.source == src.scene]
        if request is not None:
            exact = [r for r in cands if r.request == request.canonical()]
            cands = exact or cands
        if cands:
            return cands[0]
        if self.registry._hash(output) == src.image_hash and request is not None:
            return GenerationRecord(
                kind="generation", task="edit", scene=src.scene, vividness=src.vividness, size=src.size,
                request=request.canonical(), source=src.scene, source_vividness=src.vividness,
                supersample=src.supersample, image_hash=src.image_hash,
            )  # fmt: skip
        return None

    def truth(self, image_or_record: Any, request: Request | str | None = None) -> Truth:
        """Ground truth for a world image (or record) against ``request`` (default: the one it was made for)."""
        rec = image_or_record if isinstance(image_or_record, GenerationRecord) else self.lookup(image_or_record)
        if rec is None:
            raise ValueError("image is not in the world's registry")
        return judge(rec, request)

    def load_registry(self, path: str | Path) -> int:
        """Add the records of a saved registry (or of the registry next to a dataset file); returns how many."""
        p = Path(path)
        if not p.name.endswith(".world.jsonl"):
            p = registry_path(p)
        reg = Registry.load(p)
        self.registry.update(reg)
        return len(reg)

    def image(self, record: GenerationRecord) -> Image.Image:
        return record.render()


_DEFAULT: World | None = None


def default_world() -> World:
    """The process-wide world that the ``world`` generator spec and the teacher share unless given another."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = World()
    return _DEFAULT
