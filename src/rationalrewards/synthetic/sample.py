"""Random requests and source scenes: the distribution the datasets and benchmarks are drawn from."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .layout import Item, layout, place_sign
from .request import (
    BackgroundSpec,
    Clean,
    Edit,
    Group,
    Negation,
    Preserve,
    Ref,
    Relation,
    Request,
    TextSpec,
)
from .scene import Scene
from .vocab import (
    ARTEFACTS,
    BACKGROUND_NAMES,
    COLOR_NAMES,
    CONTAINERS,
    MOVE_TARGETS,
    RELATIONS,
    SHAPES,
    SIZE_NAMES,
    WORDS,
)


@dataclass
class RequestConfig:
    """How requests are drawn (probabilities per request unless said otherwise)."""

    max_groups: int = 3
    max_objects: int = 6
    p_relation: float = 0.35
    p_text: float = 0.4
    p_background: float = 0.5
    p_negation: float = 0.35
    p_any_color: float = 0.1  # a group whose colour is left open ("two circles")
    p_size: float = 0.3  # a group whose size is stated
    p_clean: float = 0.15  # the generic wish for a clean picture
    p_clean_named: float = 0.04  # per artefact kind, naming it as unwanted
    explicitness: tuple[float, float, float] = (0.6, 0.28, 0.12)  # weights of levels 1, 2, 3
    p_preserve: float = 0.3  # edits: "keep everything else unchanged"
    p_preserve_named: float = 0.12  # edits: per kept element, naming it
    edit_ops: tuple[tuple[str, float], ...] = (
        ("recolor", 0.22), ("add", 0.18), ("remove", 0.16), ("move", 0.16), ("text", 0.14), ("background", 0.14),
    )  # fmt: skip


def _e(rng: random.Random, cfg: RequestConfig) -> int:
    return rng.choices((1, 2, 3), weights=cfg.explicitness)[0]


def _count(rng: random.Random, room: int) -> int:
    n = rng.choices((1, 2, 3, 4), weights=(0.38, 0.32, 0.22, 0.08))[0]
    return max(1, min(n, room))


def _clean(rng: random.Random, cfg: RequestConfig) -> Clean:
    return Clean(rng.random() < cfg.p_clean, tuple(a for a in ARTEFACTS if rng.random() < cfg.p_clean_named))


def sample_t2i_request(rng: random.Random, cfg: RequestConfig | None = None) -> Request:
    cfg = cfg or RequestConfig()
    n_groups = rng.choices(range(1, cfg.max_groups + 1), weights=(0.35, 0.4, 0.25)[: cfg.max_groups])[0]
    groups: list[Group] = []
    relations: list[Relation] = []
    keys: set[tuple[str, str | None]] = set()
    if n_groups >= 2 and rng.random() < cfg.p_relation:
        rel = rng.choice(RELATIONS)
        if rel == "inside":
            sb, sa = rng.choice(CONTAINERS), rng.choice(SHAPES)
            za, zb = "small", "large"
        else:
            sa, sb = rng.choice(SHAPES), rng.choice(SHAPES)
            za = rng.choice(SIZE_NAMES[:2]) if rng.random() < cfg.p_size else None
            zb = rng.choice(SIZE_NAMES[:2]) if rng.random() < cfg.p_size else None
        ca = rng.choice(COLOR_NAMES)
        cb = rng.choice([c for c in COLOR_NAMES if (sb, c) != (sa, ca)])
        ga = Group(sa, ca, 1, za, count_e=_e(rng, cfg))
        gb = Group(sb, cb, 1, zb, count_e=_e(rng, cfg))
        groups += [ga, gb]
        keys |= {(sa, ca), (sb, cb)}
        relations.append(Relation(ga.ref, rel, gb.ref, e=_e(rng, cfg)))
    wild_shapes: set[str] = set()
    while len(groups) < n_groups:
        room = cfg.max_objects - sum(g.count for g in groups)
        if room <= 0:
            break
        used_shapes = {s for s, _ in keys}
        if rng.random() < cfg.p_any_color:
            free = [s for s in SHAPES if s not in used_shapes]
            if not free:
                continue
            shape, color = rng.choice(free), None
            wild_shapes.add(shape)
        else:
            shape = rng.choice([s for s in SHAPES if s not in wild_shapes])
            color = rng.choice(COLOR_NAMES)
            if (shape, color) in keys:
                continue
        size = rng.choice(SIZE_NAMES) if rng.random() < cfg.p_size else None
        n = _count(rng, min(room, 2 if size == "large" else 4))
        groups.append(Group(shape, color, n, size, count_e=_e(rng, cfg)))
        keys.add((shape, color))
    # colour restatements only where the shape names one group
    shape_n = {s: sum(g.shape == s for g in groups) for s in SHAPES}
    groups = [
        g
        if g.color is None or shape_n[g.shape] > 1
        else Group(g.shape, g.color, g.count, g.size, g.count_e, _e(rng, cfg))
        for g in groups
    ]
    negations: list[Negation] = []
    if rng.random() < cfg.p_negation:
        neg = _sample_negation(rng, groups)
        if neg is not None:
            negations.append(Negation(neg, e=_e(rng, cfg)))
    text = TextSpec(rng.choice(WORDS), e=_e(rng, cfg)) if rng.random() < cfg.p_text else None
    bg = BackgroundSpec(rng.choice(BACKGROUND_NAMES), e=_e(rng, cfg)) if rng.random() < cfg.p_background else None
    return Request(
        task="t2i",
        groups=tuple(groups),
        relations=tuple(relations),
        negations=tuple(negations),
        text=text,
        background=bg,
        clean=_clean(rng, cfg),
    ).canonical()


def _sample_negation(rng: random.Random, groups: list[Group]) -> Ref | None:
    used_colors = {g.color for g in groups}
    used_shapes = {g.shape for g in groups}
    kinds = rng.sample(("color", "shape", "both"), 3)
    for kind in kinds:
        if kind == "color":
            free = [c for c in COLOR_NAMES if c not in used_colors]
            if free:
                return Ref(None, rng.choice(free))
        elif kind == "shape":
            free = [s for s in SHAPES if s not in used_shapes]
            if free:
                return Ref(rng.choice(free), None)
        else:
            wild = {g.shape for g in groups if g.color is None}
            cands = [
                (s, c)
                for s in SHAPES
                for c in COLOR_NAMES
                if s not in wild and (s, c) not in {(g.shape, g.color) for g in groups}
            ]
            s, c = rng.choice(cands)
            return Ref(s, c)
    return None


def sample_source_scene(rng: random.Random, p_sign: float = 0.5) -> Scene:
    """A clean scene to edit: two to five objects, maybe a sign."""
    items: list[Item] = []
    n_kinds = rng.choice((2, 2, 3, 3, 4))
    kinds: list[tuple[str, str]] = []
    while len(kinds) < n_kinds:
        k = (rng.choice(SHAPES), rng.choice(COLOR_NAMES))
        if k not in kinds:
            kinds.append(k)
    for shape, color in kinds:
        n = 2 if rng.random() < 0.2 and len(items) < 4 else 1
        for _ in range(n):
            items.append(Item(len(items), shape, color, rng.choice(("small", "medium", "medium", "large"))))
    sign = place_sign(rng.choice(WORDS), rng) if rng.random() < p_sign else None
    objs = layout(items, rng, sign=sign)
    return Scene(rng.choice(BACKGROUND_NAMES), tuple(objs), sign)


def sample_edit_request(rng: random.Random, source: Scene, cfg: RequestConfig | None = None) -> Request:
    cfg = cfg or RequestConfig()
    ops = dict(cfg.edit_ops)
    if source.sign is None:
        ops.pop("text", None)
    if not source.objects:
        for k in ("recolor", "remove", "move"):
            ops.pop(k, None)
    unique = [o for o in source.objects if len(source.matching(o.shape, o.color)) == 1]
    if not unique:
        ops.pop("move", None)
    if len(source.objects) >= 7:
        ops.pop("add", None)
    op = rng.choices(list(ops), weights=list(ops.values()))[0]
    e = _e(rng, cfg)
    targeted: set[int] = set()
    ed: Edit
    if op in ("recolor", "remove", "move"):
        o = rng.choice(unique if op == "move" else list(source.objects))
        n_match = len(source.matching(o.shape, o.color))
        shape_unique = len(source.matching(o.shape)) == 1
        ref = Ref(o.shape, None if shape_unique and rng.random() < 0.3 else o.color)
        targeted = {x.id for x in source.objects if ref.matches(x.shape, x.color)}
        if op == "recolor":
            new = rng.choice([c for c in COLOR_NAMES if c != o.color])
            ed = Edit("recolor", target=ref, plural=n_match > 1, color=new, e=e)
        elif op == "remove":
            ed = Edit("remove", target=ref, plural=n_match > 1, e=e)
        else:
            far = [r for r, (x, y) in MOVE_TARGETS.items() if abs(x - o.x) + abs(y - o.y) > 0.35]
            ed = Edit("move", target=ref, plural=False, region=rng.choice(far or list(MOVE_TARGETS)), e=e)
    elif op == "add":
        present = {(o.shape, o.color) for o in source.objects}
        while True:
            shape, color = rng.choice(SHAPES), rng.choice(COLOR_NAMES)
            if (shape, color) not in present:
                break
        size = rng.choice(SIZE_NAMES[:2]) if rng.random() < cfg.p_size else None
        ed = Edit("add", group=Group(shape, color, rng.choice((1, 1, 2)), size), e=e)
    elif op == "text":
        ed = Edit("text", text=rng.choice([w for w in WORDS if w != source.sign.text]), e=e)
    else:
        ed = Edit("background", color=rng.choice([b for b in BACKGROUND_NAMES if b != source.background]), e=e)
    kept: list[str] = []
    for o in source.objects:
        if o.id not in targeted:
            k = Ref(o.shape, o.color).key
            if k not in kept and not (ed.target is not None and ed.target.matches(o.shape, o.color)):
                kept.append(k)
    if source.sign is not None and op != "text":
        kept.append("sign")
    if op != "background":
        kept.append("background")
    named = tuple(k for k in kept if rng.random() < cfg.p_preserve_named)
    return Request(
        task="edit",
        edit=ed,
        preserve=Preserve(rng.random() < cfg.p_preserve, named),
        clean=_clean(rng, cfg),
    ).canonical()
