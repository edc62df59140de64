"""Placing objects on the canvas: no unplanned overlaps, clear of the sign, with relations kept or broken on purpose."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .scene import Obj, Sign, contains, distance, hits_sign, relation_holds
from .vocab import SIZES

GAP = 0.03  # free space between neighbouring objects
EDGE = 0.02  # free space between an object and the canvas edge
STRONG = 0.1  # planned relations hold (or fail) by at least this much


@dataclass
class Item:
    """An object to place: ``fixed`` items keep their position (edits)."""

    id: int
    shape: str
    color: str
    size: str
    x: float | None = None
    y: float | None = None
    fixed: bool = False

    @property
    def r(self) -> float:
        return SIZES[self.size]

    def obj(self) -> Obj:
        return Obj(self.id, self.shape, self.color, self.size, round(self.x, 4), round(self.y, 4))


@dataclass(frozen=True)
class PlannedRelation:
    a: int  # item ids
    relation: str
    b: int
    holds: bool


def place_sign(text: str, rng: random.Random, top: bool | None = None) -> Sign:
    probe = Sign(text, 0.5, 0.5)
    half = probe.width / 2
    lo, hi = half + EDGE, 1 - half - EDGE
    x = rng.uniform(lo, hi) if hi > lo else 0.5
    top = rng.random() < 0.5 if top is None else top
    y = probe.height / 2 + 0.04 if top else 1 - probe.height / 2 - 0.04
    return Sign(text, round(x, 4), round(y, 4))


def _strong(a: Obj, relation: str, b: Obj) -> bool:
    if relation == "left_of":
        return a.x < b.x - STRONG
    if relation == "right_of":
        return a.x > b.x + STRONG
    if relation == "above":
        return a.y < b.y - STRONG
    if relation == "below":
        return a.y > b.y + STRONG
    return relation_holds(a, relation, b)


_OPPOSITE = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}


def _ok(o: Obj, placed: dict[int, Obj], sign: Sign | None, rels: list[PlannedRelation], inside_pairs: set) -> bool:
    if hits_sign(o, sign, pad=0.02):
        return False
    for p in placed.values():
        if (o.id, p.id) in inside_pairs or (p.id, o.id) in inside_pairs:
            continue
        if distance(o, p) < o.r + p.r + GAP:
            return False
    for rel in rels:
        if rel.relation == "inside" or o.id not in (rel.a, rel.b):
            continue
        other = rel.b if o.id == rel.a else rel.a
        if other not in placed:
            continue
        a, b = (o, placed[other]) if o.id == rel.a else (placed[other], o)
        want = rel.relation if rel.holds else _OPPOSITE[rel.relation]
        if not _strong(a, want, b):
            return False
    return True


def layout(
    items: list[Item],
    rng: random.Random,
    sign: Sign | None = None,
    relations: list[PlannedRelation] | tuple[PlannedRelation, ...] = (),
    tries: int = 150,
    restarts: int = 12,
) -> list[Obj]:
    """Positions for every item (fixed ones stay); the best effort is returned if the canvas is too crowded."""
    rels = list(relations)
    inside = {(r.a, r.b) for r in rels if r.relation == "inside" and r.holds}
    by_id = {it.id: it for it in items}
    # items held inside another go after their container, at its centre
    contained = {a: b for a, b in inside if a in by_id and b in by_id}
    order = sorted(items, key=lambda it: (not it.fixed, it.id in contained, -it.r))
    best: tuple[int, dict[int, Obj]] | None = None
    for _ in range(restarts):
        placed: dict[int, Obj] = {}
        failures = 0
        for it in order:
            if it.fixed:
                placed[it.id] = Obj(it.id, it.shape, it.color, it.size, it.x, it.y)
                continue
            if it.id in contained and contained[it.id] in placed:
                c = placed[contained[it.id]]
                placed[it.id] = Obj(it.id, it.shape, it.color, it.size, c.x, c.y)
                continue
            lo = it.r + EDGE
            cand = None
            for _t in range(tries):
                x, y = rng.uniform(lo, 1 - lo), rng.uniform(lo, 1 - lo)
                o = Obj(it.id, it.shape, it.color, it.size, round(x, 4), round(y, 4))
                if _ok(o, placed, sign, rels, inside) and not _inside_conflict(o, placed, rels):
                    cand = o
                    break
            if cand is None:
                failures += 1
                cand = _least_bad(it, placed, sign, rng)
            placed[it.id] = cand
        if best is None or failures < best[0]:
            best = (failures, placed)
        if failures == 0:
            break
    assert best is not None
    return [best[1][it.id] for it in items]


def _inside_conflict(o: Obj, placed: dict[int, Obj], rels: list[PlannedRelation]) -> bool:
    """A planned-but-broken 'inside' must not end up inside by chance."""
    for r in rels:
        if r.relation == "inside" and not r.holds and o.id in (r.a, r.b):
            other = r.b if o.id == r.a else r.a
            if other in placed:
                a, b = (o, placed[other]) if o.id == r.a else (placed[other], o)
                if contains(b, a) or distance(a, b) < a.r + b.r + GAP:
                    return True
    return False


def _least_bad(it: Item, placed: dict[int, Obj], sign: Sign | None, rng: random.Random) -> Obj:
    lo = it.r + EDGE
    best, best_d = None, -math.inf
    for _ in range(200):
        o = Obj(
            it.id, it.shape, it.color, it.size, round(rng.uniform(lo, 1 - lo), 4), round(rng.uniform(lo, 1 - lo), 4)
        )
        d = min((distance(o, p) - o.r - p.r for p in placed.values()), default=1.0)
        if hits_sign(o, sign):
            d -= 1.0
        if d > best_d:
            best, best_d = o, d
    return best  # type: ignore[return-value]


def free_spot(
    it: Item,
    placed: list[Obj],
    sign: Sign | None,
    rng: random.Random,
    near: tuple[float, float] | None = None,
    spread: float = 0.075,
) -> Obj:
    """A position for one new or moved object that clears the others.

    With ``near``, the position stays within 1.8 x ``spread`` of that point along each axis; when
    nothing there is free it takes the least crowded spot found (a real overlap the truth reports).
    """
    lo = it.r + EDGE
    others = {p.id: p for p in placed if p.id != it.id}
    best, best_d = None, -math.inf
    for t in range(300):
        if near is not None:
            sp = spread * (1 + 0.4 * (t // 100))  # widen twice, staying near the point
            x = min(max(near[0] + rng.uniform(-sp, sp), lo), 1 - lo)
            y = min(max(near[1] + rng.uniform(-sp, sp), lo), 1 - lo)
        else:
            x, y = rng.uniform(lo, 1 - lo), rng.uniform(lo, 1 - lo)
        o = Obj(it.id, it.shape, it.color, it.size, round(x, 4), round(y, 4))
        if _ok(o, others, sign, [], set()):
            return o
        d = min((distance(o, p) - o.r - p.r for p in others.values()), default=1.0) - hits_sign(o, sign)
        if d > best_d:
            best, best_d = o, d
    if near is not None:
        return best  # type: ignore[return-value]
    return _least_bad(it, others, sign, rng)
