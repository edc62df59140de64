"""Scenes: objects and an optional sign on a background, with a canonical JSON form and the geometry truth uses.

Coordinates are fractions of the canvas side (0..1, y grows downwards), so a scene
renders at any size. Object ids are stable across an edit: the output of an edit
keeps the ids of the source objects it carries over.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from .vocab import BACKGROUNDS, COLORS, SHAPES, SIZES, region_of

# glyph cell of the sign font (font.py: 6 x 7 font pixels drawn 1 x 1.5 canvas pixels per 64), as canvas fractions
GLYPH_W = 6 / 64
GLYPH_H = 10.5 / 64
SIGN_PAD_X = 0.035
SIGN_PAD_Y = 0.03

# inscribed-disc radius of each shape as a fraction of its nominal radius (what fits inside it)
INSCRIBED = {"circle": 1.0, "square": 0.88, "diamond": 0.72, "triangle": 0.55, "star": 0.45}
# an object counts as cut when this fraction of its radius or more lies outside the canvas
CUT_FRACTION = 0.3
# two objects overlap unnaturally when their centres are closer than this fraction of the radii sum
OVERLAP_FRACTION = 0.85
# a relation holds when the centres differ by at least this much along its axis
RELATION_MARGIN = 0.04


@dataclass(frozen=True)
class Obj:
    """One shape in a scene."""

    id: int
    shape: str
    color: str
    size: str
    x: float
    y: float

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {', '.join(SHAPES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}; known: {', '.join(COLORS)}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; known: {', '.join(SIZES)}")

    @property
    def r(self) -> float:
        return SIZES[self.size]

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def region(self) -> str:
        return region_of(self.x, self.y)

    def moved(self, x: float, y: float) -> Obj:
        return replace(self, x=round(x, 4), y=round(y, 4))


@dataclass(frozen=True)
class Sign:
    """A board with a word on it, centred at (x, y)."""

    text: str
    x: float
    y: float

    @property
    def width(self) -> float:
        return max(3, len(self.text)) * GLYPH_W + 2 * SIGN_PAD_X

    @property
    def height(self) -> float:
        return GLYPH_H + 2 * SIGN_PAD_Y

    def rect(self) -> tuple[float, float, float, float]:
        return (self.x - self.width / 2, self.y - self.height / 2, self.x + self.width / 2, self.y + self.height / 2)


@dataclass(frozen=True)
class Scene:
    """What is in a picture: a background colour, objects (drawn in order) and an optional sign."""

    background: str
    objects: tuple[Obj, ...] = ()
    sign: Sign | None = None

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; known: {', '.join(BACKGROUNDS)}")

    # -- queries
    def matching(self, shape: str | None = None, color: str | None = None) -> list[Obj]:
        return [o for o in self.objects if (shape is None or o.shape == shape) and (color is None or o.color == color)]

    def by_id(self) -> dict[int, Obj]:
        return {o.id: o for o in self.objects}

    def next_id(self) -> int:
        return max((o.id for o in self.objects), default=-1) + 1

    # -- canonical form
    def to_dict(self) -> dict[str, Any]:
        return {
            "background": self.background,
            "objects": [asdict(o) for o in self.objects],
            "sign": asdict(self.sign) if self.sign else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        sign = d.get("sign")
        return cls(
            background=d["background"],
            objects=tuple(Obj(**o) for o in d.get("objects", [])),
            sign=Sign(**sign) if sign else None,
        )

    @classmethod
    def from_json(cls, s: str) -> Scene:
        return cls.from_dict(json.loads(s))


# ---------------------------------------------------------------------------
# geometry


def distance(a: Obj, b: Obj) -> float:
    return math.hypot(a.x - b.x, a.y - b.y)


def contains(big: Obj, small: Obj) -> bool:
    """Whether ``small`` lies wholly inside ``big``'s shape."""
    return small.r < big.r and distance(big, small) + small.r <= big.r * INSCRIBED[big.shape] + 1e-6


def overlaps(a: Obj, b: Obj) -> bool:
    """Two objects overlap unnaturally: close enough to intersect, and neither holds the other."""
    if contains(a, b) or contains(b, a):
        return False
    return distance(a, b) < OVERLAP_FRACTION * (a.r + b.r)


def is_cut(o: Obj) -> bool:
    """The object runs off the canvas by a noticeable part of its radius."""
    lim = (1 - CUT_FRACTION) * o.r
    return o.x < lim or o.y < lim or o.x > 1 - lim or o.y > 1 - lim


def hits_sign(o: Obj, sign: Sign | None, pad: float = 0.0) -> bool:
    if sign is None:
        return False
    x0, y0, x1, y1 = sign.rect()
    cx = min(max(o.x, x0), x1)
    cy = min(max(o.y, y0), y1)
    return math.hypot(o.x - cx, o.y - cy) < o.r * 0.8 + pad


def relation_holds(a: Obj, relation: str, b: Obj) -> bool:
    if relation == "left_of":
        return a.x < b.x - RELATION_MARGIN
    if relation == "right_of":
        return a.x > b.x + RELATION_MARGIN
    if relation == "above":
        return a.y < b.y - RELATION_MARGIN
    if relation == "below":
        return a.y > b.y + RELATION_MARGIN
    if relation == "inside":
        return contains(b, a)
    raise ValueError(f"unknown relation {relation!r}")


def observed_relation(a: Obj, b: Obj) -> str:
    """A short true description of where ``a`` is relative to ``b`` (for findings)."""
    if contains(b, a):
        return "inside"
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left_of" if dx < 0 else "right_of"
    return "above" if dy < 0 else "below"
