"""The imperfect generator: request text (or structure) and a seed in, an image and a full record of what it drew out.

Every failure is one Bernoulli decision with rate

    rate = base_rate * decay ** (level - baseline)

where ``level`` is the explicitness the world's parser reads for the matching
constraint (see ``request``), baseline 1 for content constraints (they are always
stated when they exist) and 0 for cleanliness and preservation. Misspelling
depends on length too: ``1 - (1 - misspelt_text) ** len(word)`` before the
explicitness factor. Extra unrequested objects have no matching constraint: no
wording prevents them.

Decisions draw their uniform number from a stream keyed by (seed, failure kind,
constraint), not from a shared sequence: with the same seed, a more explicit
request fails on a subset of the draws a less explicit one fails on (common
random numbers), so comparisons between phrasings are paired, not just averaged.
Each decision is logged in the record with the rate it used.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from PIL import Image

from ..images import image_hash
from .layout import Item, PlannedRelation, free_spot, layout, place_sign
from .parse import parse_request
from .render import Artefact, random_artefact, render_scene
from .request import Request
from .scene import Obj, Scene, Sign, distance, hits_sign, overlaps, relation_holds
from .vocab import BACKGROUND_NAMES, COLOR_NAMES, MOVE_TARGETS, SHAPES, SIZE_NAMES


@dataclass
class GeneratorConfig:
    """Base failure rates (at the baseline explicitness) and how wording lowers them."""

    wrong_count: float = 0.12  # per object group: one object too many or too few
    missing_object: float = 0.06  # per object group: the whole group left out
    extra_object: float = 0.06  # per image: an unrequested object (no wording prevents it)
    wrong_color: float = 0.1  # per coloured group: drawn in another colour
    ignored_negation: float = 0.45  # per negation: draws what it was told not to
    wrong_relation: float = 0.25  # per relation: the objects placed the other way round
    misspelt_text: float = 0.06  # per letter of the sign's word
    missing_text: float = 0.04  # per sign: the board is left blank
    wrong_background: float = 0.06  # per stated background: another background
    edit_not_applied: float = 0.12  # per edit: the operation is not carried out
    edit_wrong: float = 0.12  # per edit: carried out wrongly (wrong colour, count, place)
    unrequested_change: float = 0.08  # per kept element of an edit: changed anyway
    noise: float = 0.1  # per image: a noise blotch
    blur: float = 0.05  # per image: the whole picture blurred
    seam: float = 0.05  # per image: a visible seam
    cut: float = 0.05  # per text-to-image picture with objects: one runs off the canvas
    overlap: float = 0.06  # per text-to-image picture with a free object and another: they overlap unnaturally
    decay: float = 0.5  # factor per explicitness level above 1 for content constraints
    clean_decay: float = 0.6  # factor per cleanliness level
    preserve_decay: float = 0.5  # factor per preservation level
    size: int = 128  # image side in pixels
    supersample: int = 2  # drawing resolution multiplier (smooth edges)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("size", "supersample"):
                continue
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"GeneratorConfig.{f.name} must be in [0, 1], got {v}")

    @classmethod
    def perfect(cls, **overrides: Any) -> GeneratorConfig:
        """A generator that never fails (rates 0) unless ``overrides`` set some."""
        zero = {
            f.name: 0.0
            for f in fields(cls)
            if f.name not in ("decay", "clean_decay", "preserve_decay", "size", "supersample")
        }
        return cls(**{**zero, **overrides})

    def scaled(self, k: float) -> GeneratorConfig:
        """Every failure rate times ``k`` (capped at 1): a weaker (k > 1) or stronger (k < 1) generator."""
        rates = {
            f.name: min(1.0, getattr(self, f.name) * k)
            for f in fields(self)
            if f.name not in ("decay", "clean_decay", "preserve_decay", "size", "supersample")
        }
        return replace(self, **rates)

    def factor(self, kind: str, level: int) -> float:
        """``decay ** (level - baseline)`` for a constraint kind."""
        if kind == "clean":
            return self.clean_decay**level
        if kind == "preserve":
            return self.preserve_decay**level
        return self.decay ** max(0, level - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One failure draw: which failure, for which constraint, at what rate, and whether it fired."""

    kind: str
    key: str
    rate: float
    fired: bool


@dataclass
class GenerationRecord:
    """Everything about one image: what was asked, what was drawn, and every failure draw.

    ``kind`` is "generation" for generator outputs and "source" for the clean source
    images of edits (they have no request).
    """

    kind: str
    task: str | None
    scene: Scene
    vividness: float
    size: int
    seed: int | None = None
    request: Request | None = None
    request_text: str | None = None
    source: Scene | None = None
    source_vividness: float | None = None
    artefacts: tuple[Artefact, ...] = ()
    decisions: tuple[Decision, ...] = ()
    supersample: int = 2
    image_hash: str | None = None

    def fired(self, kind: str | None = None) -> list[Decision]:
        return [d for d in self.decisions if d.fired and (kind is None or d.kind == kind)]

    def render(self) -> Image.Image:
        return render_scene(self.scene, self.size, self.vividness, self.artefacts, self.supersample)

    def render_source(self) -> Image.Image | None:
        if self.source is None:
            return None
        return render_scene(self.source, self.size, self.source_vividness or 0.5, (), self.supersample)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "task": self.task,
            "scene": self.scene.to_dict(),
            "vividness": self.vividness,
            "size": self.size,
            "seed": self.seed,
            "request": self.request.to_dict() if self.request else None,
            "request_text": self.request_text,
            "source": self.source.to_dict() if self.source else None,
            "source_vividness": self.source_vividness,
            "artefacts": [a.to_dict() for a in self.artefacts],
            "decisions": [asdict(d) for d in self.decisions],
            "supersample": self.supersample,
            "image_hash": self.image_hash,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationRecord:
        return cls(
            kind=d["kind"],
            task=d.get("task"),
            scene=Scene.from_dict(d["scene"]),
            vividness=d["vividness"],
            size=d["size"],
            seed=d.get("seed"),
            request=Request.from_dict(d["request"]) if d.get("request") else None,
            request_text=d.get("request_text"),
            source=Scene.from_dict(d["source"]) if d.get("source") else None,
            source_vividness=d.get("source_vividness"),
            artefacts=tuple(Artefact(**a) for a in d.get("artefacts", ())),
            decisions=tuple(Decision(**x) for x in d.get("decisions", ())),
            supersample=d.get("supersample", 2),
            image_hash=d.get("image_hash"),
        )


@dataclass
class Generation:
    """An image and its record."""

    image: Image.Image | None  # None when generated with render=False
    record: GenerationRecord = field(repr=False)


def uniform(seed: int | str, *key: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and a key (independent of every other draw)."""
    h = hashlib.blake2b(f"{seed}|{'|'.join(key)}".encode(), digest_size=8).digest()
    return struct.unpack(">Q", h)[0] / 2**64


def _rng(seed: int | str, *key: str) -> random.Random:
    return random.Random(f"{seed}|{'|'.join(key)}")


def garble(word: str, rng: random.Random) -> str:
    """A misspelling of ``word``: swapped, dropped, doubled or replaced letters (never the word itself)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for _ in range(20):
        w = list(word)
        n_ops = 1 if len(word) < 6 or rng.random() < 0.6 else 2
        for _ in range(n_ops):
            op = rng.choice(("swap", "drop", "double", "replace"))
            i = rng.randrange(len(w))
            if op == "swap" and len(w) > 1:
                i = min(i, len(w) - 2)
                w[i], w[i + 1] = w[i + 1], w[i]
            elif op == "drop" and len(w) > 2:
                del w[i]
            elif op == "double" and len(w) < 9:
                w.insert(i, w[i])
            else:
                w[i] = rng.choice([c for c in letters if c != w[i]])
        out = "".join(w)
        if out != word:
            return out
    return word[::-1] if word[::-1] != word else word + "X"


class WorldGenerator:
    """The world's text-to-image and edit generator.

    ``vividness`` (0..1) is a style knob: colour saturation and brightness. People
    like more of it up to a point and then find the picture garish (see ``truth``).
    """

    def __init__(self, config: GeneratorConfig | None = None):
        self.config = config or GeneratorConfig()

    # ------------------------------------------------------------------ helpers
    def _decide(self, log: list[Decision], seed: int, kind: str, key: str, rate: float) -> bool:
        rate = min(1.0, max(0.0, rate))
        fired = uniform(seed, kind, key) < rate
        log.append(Decision(kind, key, round(rate, 6), fired))
        return fired

    def _artefacts(self, req: Request, seed: int, log: list[Decision]) -> list[Artefact]:
        cfg = self.config
        out = []
        for kind in ("noise", "blur", "seam"):
            rate = getattr(cfg, kind) * cfg.factor("clean", req.clean.level(kind))
            if self._decide(log, seed, kind, "image", rate):
                out.append(random_artefact(kind, _rng(seed, "artefact", kind)))
        return out

    # ------------------------------------------------------------------ text-to-image
    def _t2i(self, req: Request, seed: int, log: list[Decision]) -> tuple[Scene, list[Artefact]]:
        cfg = self.config
        plan_rng = _rng(seed, "plan")
        negs = req.negations
        group_keys = {(g.shape, g.color) for g in req.groups}
        wild_shapes = {g.shape for g in req.groups if g.color is None}

        def negated(shape: str, color: str) -> bool:
            return any(n.target.matches(shape, color) for n in negs)

        items: list[Item] = []
        ids_by_group: dict[str, list[int]] = {}
        for g in req.groups:
            f_count = cfg.factor("count", g.count_e)
            n = g.count
            if g.count_alt:
                n = _rng(seed, "conflict", g.key).choice((g.count, *g.count_alt))
            if self._decide(log, seed, "missing_object", g.key, cfg.missing_object * f_count):
                n = 0
            elif self._decide(log, seed, "wrong_count", g.key, cfg.wrong_count * f_count):
                n = n + 1 if n == 1 or uniform(seed, "count_dir", g.key) < 0.5 else n - 1
            color = g.color
            if color is None:
                allowed = [c for c in COLOR_NAMES if not negated(g.shape, c)] or list(COLOR_NAMES)
                color = plan_rng.choice(allowed)
            else:
                if g.color_alt:
                    color = _rng(seed, "conflict-color", g.key).choice((g.color, *g.color_alt))
                if self._decide(log, seed, "wrong_color", g.key, cfg.wrong_color * cfg.factor("color", g.color_e)):
                    # never the colour of another group of this shape: that would read as a count error
                    taken = {c for s_, c in group_keys if s_ == g.shape}
                    others = [c for c in COLOR_NAMES if c not in taken and not negated(g.shape, c)]
                    color = _rng(seed, "wrong_color", g.key).choice(others)
            size = g.size or plan_rng.choice(("small", "medium", "medium"))
            ids_by_group[g.key] = []
            for _ in range(n):
                ids_by_group[g.key].append(len(items))
                items.append(Item(len(items), g.shape, color, size))
        for neg in negs:
            if self._decide(
                log, seed, "ignored_negation", neg.key, cfg.ignored_negation * cfg.factor("negation", neg.e)
            ):
                r = _rng(seed, "negation", neg.key)
                shapes = [s for s in SHAPES if neg.target.shape in (None, s)]
                colors = [c for c in COLOR_NAMES if neg.target.color in (None, c)]
                cands = [(s, c) for s in shapes for c in colors if (s, c) not in group_keys and s not in wild_shapes]
                if cands:
                    s, c = r.choice(cands)
                    items.append(Item(len(items), s, c, r.choice(("small", "medium"))))
        if self._decide(log, seed, "extra_object", "image", cfg.extra_object):
            r = _rng(seed, "extra")
            cands = [
                (s, c) for s in SHAPES for c in COLOR_NAMES
                if (s, c) not in group_keys and s not in wild_shapes and not negated(s, c)
            ]  # fmt: skip
            s, c = r.choice(cands)
            items.append(Item(len(items), s, c, r.choice(("small", "medium"))))
        rels: list[PlannedRelation] = []
        for rel in req.relations:
            a_ids = ids_by_group.get(rel.subject.key, [])
            b_ids = ids_by_group.get(rel.object.key, [])
            fails = self._decide(
                log, seed, "wrong_relation", rel.key, cfg.wrong_relation * cfg.factor("relation", rel.e)
            )
            if rel.conflicted:
                fails = fails or uniform(seed, "conflict", rel.key) < 0.5
            if a_ids and b_ids:
                if rel.relation == "inside":
                    # the content must be small and the container large for one to hold the other
                    items[a_ids[0]].size, items[b_ids[0]].size = "small", "large"
                rels.append(PlannedRelation(a_ids[0], rel.relation, b_ids[0], not fails))
        sign = None
        if req.text is not None:
            word = req.text.text
            if req.text.alt:
                word = _rng(seed, "conflict", "text").choice((word, *req.text.alt))
            f = cfg.factor("text", req.text.e)
            if self._decide(log, seed, "missing_text", "text", cfg.missing_text * f):
                word = ""
            else:
                p = (1 - (1 - cfg.misspelt_text) ** len(word)) * f
                if self._decide(log, seed, "misspelt_text", "text", p):
                    word = garble(word, _rng(seed, "garble"))
            sign = place_sign(word, _rng(seed, "sign"))
        lay_rng = _rng(seed, "layout")
        objs = layout(items, lay_rng, sign=sign, relations=rels)
        objs = self._geometry_artefacts(req, seed, log, objs, sign, rels)
        bg = self._background(req, seed, log, plan_rng)
        scene = Scene(bg, tuple(objs), sign)
        return scene, self._artefacts(req, seed, log)

    def _background(self, req: Request, seed: int, log: list[Decision], plan_rng: random.Random) -> str:
        if req.background is None:
            return plan_rng.choice(BACKGROUND_NAMES)
        bg = req.background.color
        if req.background.alt:
            bg = _rng(seed, "conflict", "background").choice((bg, *req.background.alt))
        rate = self.config.wrong_background * self.config.factor("background", req.background.e)
        if self._decide(log, seed, "wrong_background", "background", rate):
            bg = _rng(seed, "wrong_background").choice([b for b in BACKGROUND_NAMES if b != req.background.color])
        return bg

    def _geometry_artefacts(
        self,
        req: Request,
        seed: int,
        log: list[Decision],
        objs: list[Obj],
        sign: Sign | None,
        rels: list[PlannedRelation],
    ) -> list[Obj]:
        """Cut and overlap artefacts: move one object, keeping every planned relation as it was planned."""
        cfg = self.config
        objs = list(objs)
        in_rel = {r.a for r in rels} | {r.b for r in rels}

        def relations_kept(cand: list[Obj]) -> bool:
            by = {o.id: o for o in cand}
            return all(relation_holds(by[r.a], r.relation, by[r.b]) == r.holds for r in rels if r.a in by and r.b in by)

        order = [i for i, o in enumerate(objs) if o.id not in in_rel] + [
            i for i, o in enumerate(objs) if o.id in in_rel
        ]
        index = {o.id: i for i, o in enumerate(objs)}
        glued: dict[int, list[int]] = {}  # object id -> indices of the objects it is nested with
        for r in rels:
            if r.relation == "inside" and r.holds and r.a in index and r.b in index:
                glued.setdefault(r.a, []).append(index[r.b])
                glued.setdefault(r.b, []).append(index[r.a])
        rate = cfg.cut * cfg.factor("clean", req.clean.level("cut"))
        if objs and self._decide(log, seed, "cut", "image", rate):
            r = _rng(seed, "cut")
            best = None
            for t in range(80):
                i = order[0] if t < 40 or len(order) == 1 else r.choice(order)
                o = objs[i]
                edge = r.choice(("left", "right", "top", "bottom"))
                inset = o.r * r.uniform(0.05, 0.35)
                along = r.uniform(0.15, 0.85)
                x, y = {
                    "left": (inset, along), "right": (1 - inset, along),
                    "top": (along, inset), "bottom": (along, 1 - inset),
                }[edge]  # fmt: skip
                cand = o.moved(x, y)
                trial = objs[:i] + [cand] + objs[i + 1 :]
                # what is held inside it (or holds it) moves along
                for k in glued.get(o.id, ()):
                    q = trial[k]
                    trial[k] = q.moved(q.x + cand.x - o.x, q.y + cand.y - o.y)
                moved = {i, *glued.get(o.id, ())}
                bad = sum(
                    overlaps(trial[m], p) or distance(trial[m], p) < trial[m].r + p.r
                    for m in moved
                    for j, p in enumerate(objs)
                    if j not in moved
                )
                bad += hits_sign(cand, sign) + 10 * (not relations_kept(trial))
                if best is None or bad < best[0]:
                    best = (bad, trial)
                if bad == 0:
                    break
            objs = best[1]
        rate = cfg.overlap * cfg.factor("clean", req.clean.level("overlap"))
        movable = [i for i in order if objs[i].id not in glued]  # a shape held inside another stays put
        if len(objs) >= 2 and movable and self._decide(log, seed, "overlap", "image", rate):
            r = _rng(seed, "overlap")
            best = None
            for t in range(80):
                i = movable[0] if t < 40 else r.choice(movable)
                j = r.choice([k for k in range(len(objs)) if k != i])
                a, b = objs[i], objs[j]
                ang = r.uniform(0, 2 * math.pi)
                d = r.uniform(0.45, 0.65) * (a.r + b.r)
                x = min(max(b.x + d * math.cos(ang), a.r), 1 - a.r)
                y = min(max(b.y + d * math.sin(ang), a.r), 1 - a.r)
                cand = a.moved(x, y)
                trial = objs[:i] + [cand] + objs[i + 1 :]
                bad = 5 * (not overlaps(cand, b)) + 10 * (not relations_kept(trial)) + hits_sign(cand, sign)
                bad += sum(overlaps(cand, p) for k, p in enumerate(objs) if k not in (i, j))
                if best is None or bad < best[0]:
                    best = (bad, trial)
                if bad == 0:
                    break
            objs = best[1]
        return objs

    # ------------------------------------------------------------------ edits
    def _edit(self, req: Request, source: Scene, seed: int, log: list[Decision]) -> tuple[Scene, list[Artefact]]:
        cfg = self.config
        ed = req.edit
        objs: dict[int, Obj] = {o.id: o for o in source.objects}
        sign = source.sign
        bg = source.background
        f = cfg.factor(ed.op, ed.e)
        targets = [o.id for o in source.objects if ed.target is not None and ed.target.matches(o.shape, o.color)]
        r = _rng(seed, "edit")
        value = ed.value
        if ed.alt:
            value = _rng(seed, "conflict", "edit").choice((value, *ed.alt))
        applied = ed.op != "none" and not self._decide(log, seed, "edit_not_applied", ed.op, cfg.edit_not_applied * f)
        wrong = applied and ed.op != "none" and self._decide(log, seed, "edit_wrong", ed.op, cfg.edit_wrong * f)
        if applied and ed.op == "recolor" and ed.color:
            new = value if value in COLOR_NAMES else ed.color
            if wrong:
                old_colors = {objs[i].color for i in targets}
                new = r.choice([c for c in COLOR_NAMES if c != ed.color and c not in old_colors])
            for i in targets:
                objs[i] = replace(objs[i], color=new)
        elif applied and ed.op == "remove":
            if not wrong:
                for i in targets:
                    objs.pop(i, None)
            elif len(targets) > 1:
                for i in targets[1:]:  # a botched removal leaves one behind
                    objs.pop(i, None)
            elif targets:
                # a botched removal of one object leaves it in place, shrunk or pushed aside
                o = objs[targets[0]]
                k = SIZE_NAMES.index(o.size)
                objs[o.id] = (
                    replace(o, size=SIZE_NAMES[k - 1])
                    if k > 0
                    else o.moved(min(max(o.x + (0.12 if o.x < 0.5 else -0.12), o.r), 1 - o.r), o.y)
                )
        elif applied and ed.op == "move" and targets:
            region = value if value in MOVE_TARGETS else ed.region
            o = objs[targets[0]]
            if wrong:
                tx, ty = MOVE_TARGETS[ed.region]
                far = [
                    k for k, (x, y) in MOVE_TARGETS.items()
                    if math.hypot(x - tx, y - ty) > 0.45 and math.hypot(x - o.x, y - o.y) > 0.25
                ]  # fmt: skip
                region = r.choice(far or [k for k in MOVE_TARGETS if k != ed.region])
            it = Item(o.id, o.shape, o.color, o.size)
            objs[o.id] = free_spot(it, list(objs.values()), sign, r, near=MOVE_TARGETS[region])
        elif applied and ed.op == "add" and ed.group:
            g = ed.group
            n = value if isinstance(value, int) else g.count
            if wrong:
                n = n + 1 if n == 1 or r.random() < 0.5 else n - 1
            nid = max(objs, default=-1) + 1
            size = g.size or r.choice(("small", "medium"))
            color = g.color or r.choice(COLOR_NAMES)
            for k in range(n):
                it = Item(nid + k, g.shape, color, size)
                objs[nid + k] = free_spot(it, list(objs.values()), sign, r)
        elif applied and ed.op == "text":
            word = str(value or ed.text)
            if self._decide(log, seed, "missing_text", "text", cfg.missing_text * f):
                word = ""
            elif wrong or self._decide(
                log, seed, "misspelt_text", "text", (1 - (1 - cfg.misspelt_text) ** len(word)) * f
            ):
                word = garble(word, _rng(seed, "garble"))
            sign = Sign(word, sign.x, sign.y) if sign is not None else place_sign(word, _rng(seed, "sign"))
        elif applied and ed.op == "background":
            bg = value if value in BACKGROUND_NAMES else ed.color
            if wrong:
                bg = r.choice([b for b in BACKGROUND_NAMES if b not in (ed.color, source.background)])
        # unrequested changes to what should be kept
        uc_rng = _rng(seed, "unrequested")
        for o in source.objects:
            if o.id in targets and ed.op in ("recolor", "remove", "move"):
                continue
            keys = (f"{o.color} {o.shape}", f"* {o.shape}", f"{o.color} *")
            rate = cfg.unrequested_change * cfg.factor("preserve", req.preserve.level(keys))
            if o.id in objs and self._decide(log, seed, "unrequested_change", f"object:{o.id}", rate):
                new = self._disturb(objs[o.id], list(objs.values()), sign, uc_rng)
                if new is None:
                    del objs[o.id]
                else:
                    objs[o.id] = new
        if source.sign is not None and ed.op != "text":
            rate = cfg.unrequested_change * cfg.factor("preserve", req.preserve.level(("sign",)))
            if self._decide(log, seed, "unrequested_change", "sign", rate):
                sign = Sign(garble(source.sign.text, uc_rng), source.sign.x, source.sign.y)
        if ed.op != "background":
            rate = cfg.unrequested_change * cfg.factor("preserve", req.preserve.level(("background",)))
            if self._decide(log, seed, "unrequested_change", "background", rate):
                bg = uc_rng.choice([b for b in BACKGROUND_NAMES if b != source.background])
        ordered = sorted(objs.values(), key=lambda o: o.id)
        return Scene(bg, tuple(ordered), sign), self._artefacts(req, seed, log)

    @staticmethod
    def _disturb(o: Obj, placed: list[Obj], sign: Sign | None, rng: random.Random) -> Obj | None:
        """An unrequested change to a kept object: recoloured, shifted, resized, or gone (None)."""
        how = rng.choice(("recolor", "recolor", "shift", "shift", "vanish", "resize"))
        if how == "recolor":
            return replace(o, color=rng.choice([c for c in COLOR_NAMES if c != o.color]))
        if how == "resize":
            return replace(o, size=rng.choice([s for s in SIZE_NAMES if s != o.size]))
        if how == "vanish":
            return None
        it = Item(o.id, o.shape, o.color, o.size)
        for _ in range(30):
            moved = free_spot(it, placed, sign, rng)
            if distance(moved, o) > 0.15:
                return moved
        return o.moved(min(max(1 - o.x, o.r), 1 - o.r), o.y)

    # ------------------------------------------------------------------ public
    def generate(
        self,
        request: Request | str,
        seed: int,
        vividness: float = 0.5,
        source: Scene | None = None,
        source_vividness: float | None = None,
        task: str | None = None,
        render: bool = True,
    ) -> Generation:
        """Draw an image for ``request`` (text is read by the world's parser) with ``seed``.

        Edits need the ``source`` scene (find it from a source image with ``World.lookup``).
        ``render=False`` skips drawing (image None, no hash): for fast statistics over many draws.
        """
        if not 0.0 <= vividness <= 1.0:
            raise ValueError(f"vividness must be in [0, 1], got {vividness}")
        text = None
        if isinstance(request, str):
            text = request
            request = parse_request(text, task or ("edit" if source is not None else "t2i"))
        request = request.canonical()
        if request.task == "edit" and source is None:
            raise ValueError("an edit request needs the source scene (source=...)")
        if request.task == "t2i" and source is not None:
            raise ValueError("a text-to-image request takes no source scene")
        log: list[Decision] = []
        seed = int(seed)
        if request.task == "edit":
            scene, arts = self._edit(request, source, seed, log)
        else:
            scene, arts = self._t2i(request, seed, log)
        rec = GenerationRecord(
            kind="generation",
            task=request.task,
            scene=scene,
            vividness=round(float(vividness), 4),
            size=self.config.size,
            seed=seed,
            request=request,
            request_text=text,
            source=source,
            source_vividness=source_vividness if source is not None else None,
            artefacts=tuple(arts),
            decisions=tuple(log),
            supersample=self.config.supersample,
        )
        if not render:
            return Generation(None, rec)
        img = rec.render()
        rec.image_hash = image_hash(img)
        return Generation(img, rec)

    def source_image(self, scene: Scene, vividness: float = 0.5) -> Generation:
        """Render a clean source scene for an edit, with its record (kind "source")."""
        rec = GenerationRecord(
            kind="source", task=None, scene=scene, vividness=round(float(vividness), 4), size=self.config.size,
            supersample=self.config.supersample,
        )  # fmt: skip
        img = rec.render()
        rec.image_hash = image_hash(img)
        return Generation(img, rec)
