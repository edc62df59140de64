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
    return bool(artefact_kinds(record))


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


# ---------------------------------------------------------------------------- dense (per image token) targets

ARTEFACT_KINDS: tuple[str, ...] = ("noise", "blur", "seam", "cut", "overlap")


def artefact_kinds(record: GenerationRecord) -> frozenset[str]:
    """Which physical defects an image shows, by kind (the parts of ``has_defect``)."""
    objs = record.scene.objects
    kinds = {a.kind for a in record.artefacts}
    if any(is_cut(o) for o in objs):
        kinds.add("cut")
    if any(overlaps(a, b) for i, a in enumerate(objs) for b in objs[i + 1 :]):
        kinds.add("overlap")
    return frozenset(kinds)


def cell_labels(record: GenerationRecord, grid: int) -> dict[str, list]:
    """Per-cell targets on a ``grid`` x ``grid`` partition of the canvas (row-major, one cell per image token).

    ``colour`` / ``shape``: the class index (0 = none, else 1 + index in ``COLOR_NAMES`` / ``SHAPES``) of
    the object centred in the cell, the one drawn last if several are (so counting cells counts objects,
    and colour and shape are bound by place); ``cover``: which colours cover the cell's centre point
    (within an object's nominal radius); ``sign``: whether the sign's board covers it.
    """
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    n = grid * grid
    colour, shape = [0] * n, [0] * n
    cover = [[0.0] * len(COLOR_NAMES) for _ in range(n)]
    sign = [[0.0] for _ in range(n)]
    points = [((col + 0.5) / grid, (row + 0.5) / grid) for row in range(grid) for col in range(grid)]

    def cell(v: float) -> int:
        return min(grid - 1, max(0, int(v * grid)))

    for o in record.scene.objects:  # drawing order: a later object covers an earlier one
        i = cell(o.y) * grid + cell(o.x)
        colour[i], shape[i] = 1 + COLOR_NAMES.index(o.color), 1 + SHAPES.index(o.shape)
        for j, (cx, cy) in enumerate(points):
            if (cx - o.x) ** 2 + (cy - o.y) ** 2 <= o.r**2:
                cover[j][COLOR_NAMES.index(o.color)] = 1.0
    if record.scene.sign is not None:
        x0, y0, x1, y1 = record.scene.sign.rect()
        for j, (cx, cy) in enumerate(points):
            if x0 <= cx <= x1 and y0 <= cy <= y1:
                sign[j][0] = 1.0
    return {"colour": colour, "shape": shape, "cover": cover, "sign": sign}


# per-cell target -> (kind, class names): "single" is one class per cell (index 0 = none), "multi" a set
DENSE_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "colour": ("single", ("none", *COLOR_NAMES)),
    "shape": ("single", ("none", *SHAPES)),
    "cover": ("multi", COLOR_NAMES),
    "sign": ("multi", ("sign",)),
}
