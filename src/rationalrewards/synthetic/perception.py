"""Perception data: world images with what is truly visible in them, as classification targets.

A real RationalRewards student starts from a pretrained VLM that already sees; the embedded model
starts from random weights and, trained on critiques alone, barely uses its images. These labels
measure (``benchmarks/perception_probe.py``) and can pre-train what a from-scratch vision tower
picks up: the background, the colour intensity, whether any defect is visible, and which colours
and colour-shape combinations are present.
"""

from __future__ import annotations

from collections.abc import Iterator

from .generator import GenerationRecord
from .scene import is_cut, overlaps
from .truth import DULL_BELOW, GARISH_ABOVE, VIVID_PEAK
from .vocab import BACKGROUND_NAMES, COLOR_NAMES, SHAPES

# colour-intensity classes by upper bound of vividness (the last one has no bound)
INTENSITY: tuple[tuple[float, str], ...] = (
    (DULL_BELOW, "washed out"),
    (0.5, "soft"),
    (VIVID_PEAK, "rich"),
    (GARISH_ABOVE, "vivid"),
    (float("inf"), "garish"),
)
INTENSITY_NAMES: tuple[str, ...] = tuple(name for _, name in INTENSITY)
COLOR_SHAPES: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOR_NAMES for s in SHAPES)
# target -> class names; "multi" targets are sets of present names, the others one class per image
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "background": ("single", BACKGROUND_NAMES),
    "intensity": ("single", INTENSITY_NAMES),
    "defect": ("single", ("none", "some")),
    "colours": ("multi", COLOR_NAMES),
    "colour_shapes": ("multi", COLOR_SHAPES),
}


def intensity(vividness: float) -> str:
    return next(name for bound, name in INTENSITY if vividness < bound)


def has_defect(record: GenerationRecord) -> bool:
    """Whether a physical defect is visible: an artefact, a cut-off shape or two shapes overlapping."""
    objs = record.scene.objects
    return (
        bool(record.artefacts)
        or any(is_cut(o) for o in objs)
        or any(overlaps(a, b) for i, a in enumerate(objs) for b in objs[i + 1 :])
    )


def labels(record: GenerationRecord) -> dict[str, str | frozenset[str]]:
    """The value of every target in ``TARGETS`` for one image."""
    objs = record.scene.objects
    return {
        "background": record.scene.background,
        "intensity": intensity(record.vividness),
        "defect": "some" if has_defect(record) else "none",
        "colours": frozenset(o.color for o in objs),
        "colour_shapes": frozenset(o.name for o in objs),
    }


def perception_records(n: int, seed: int = 0) -> Iterator[GenerationRecord]:
    """``n`` distinct world images (generator outputs of both tasks and edit sources), deterministic in ``seed``.

    They come from fresh labelled-pair draws of their own world seed, so the vividness range and failure
    rates are those of the preference data.
    """
    from .labeler import make_pair
    from .world import World

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seen: set[str] = set()
    index = 0
    while len(seen) < n:
        world = World()
        make_pair(world, seed, index, "t2i" if index % 2 == 0 else "edit")
        index += 1
        for rec in world.registry:
            if rec.image_hash in seen:  # an edit source drawn again, or two identical generations
                continue
            seen.add(rec.image_hash)
            yield rec
            if len(seen) >= n:
                return
