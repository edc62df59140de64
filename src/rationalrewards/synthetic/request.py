"""Requests: what a user asks the generator for, as a structure with the constraints it states.

A request is either text-to-image (object groups, spatial relations, negations, a
sign's text, a background, a wish for a clean picture) or an edit of a source
scene (one operation, plus what to keep). Every constraint carries an
**explicitness level** read from the request text by the world's own parser
(``parse.parse_request``):

- content constraints (count, colour, negation, relation, text, background and the
  edit operation) are 1 when stated, +1 with a precision marker attached to the
  same content ("exactly three circles", "absolutely no red shapes", "directly
  left of", "reads exactly 'OPEN'"), +1 when restated consistently elsewhere
  ("three red circles in total", "the circles must be red", "spelled O-P-E-N");
  at most 3. A restatement that disagrees with the first statement marks the
  constraint *conflicted*: its level drops to 1 and the generator follows one of
  the stated values at random.
- cleanliness (per artefact kind) and preservation (per kept element of an edit)
  need not be stated: 0 when absent, 1 for a generic wish ("a clean image",
  "keep everything else unchanged"), 2 when the specific artefact or element is
  named ("no blur", "keep the blue square as it is"), 3 for both.

The generator's failure rate for each constraint is ``base_rate * decay ** (level - baseline)``
(see ``generator.GeneratorConfig``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .vocab import ARTEFACTS, plural

MAX_E = 3
CONTENT_KINDS = ("count", "color", "negation", "relation", "text", "background")
# "none": an instruction the parser found no operation in (the generator then changes nothing on purpose)
EDIT_OPS = ("recolor", "add", "remove", "move", "text", "background", "none")
# which constraint kind an edit operation is
EDIT_KIND = {
    "recolor": "color",
    "add": "count",
    "remove": "negation",
    "move": "relation",
    "text": "text",
    "background": "background",
}


def _check_e(e: int, lo: int = 1) -> None:
    if not lo <= e <= MAX_E:
        raise ValueError(f"explicitness must be in {lo}..{MAX_E}, got {e}")


@dataclass(frozen=True)
class Ref:
    """Names objects by shape and/or colour ("the red circle", "red shapes", "circles")."""

    shape: str | None = None
    color: str | None = None

    def matches(self, shape: str, color: str) -> bool:
        return (self.shape is None or self.shape == shape) and (self.color is None or self.color == color)

    def words(self, n: int = 1) -> str:
        noun = plural(self.shape, n) if self.shape else ("shape" if n == 1 else "shapes")
        return f"{self.color} {noun}" if self.color else noun

    @property
    def key(self) -> str:
        return f"{self.color or '*'} {self.shape or '*'}"


@dataclass(frozen=True)
class Group:
    """``count`` objects of one shape (and colour, unless ``color`` is None: any colour)."""

    shape: str
    color: str | None
    count: int
    size: str | None = None
    count_e: int = 1
    color_e: int = 1
    count_alt: tuple[int, ...] = ()  # other counts a conflicting restatement gave
    color_alt: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a group needs a count of at least 1, got {self.count}")
        _check_e(self.count_e)
        _check_e(self.color_e)

    @property
    def ref(self) -> Ref:
        return Ref(self.shape, self.color)

    @property
    def key(self) -> str:
        return self.ref.key


@dataclass(frozen=True)
class Relation:
    subject: Ref
    relation: str
    object: Ref
    e: int = 1
    conflicted: bool = False

    @property
    def key(self) -> str:
        return f"{self.subject.key}|{self.relation}|{self.object.key}"


@dataclass(frozen=True)
class Negation:
    """Nothing matching ``target`` may appear."""

    target: Ref
    e: int = 1
    conflicted: bool = False

    @property
    def key(self) -> str:
        return self.target.key


@dataclass(frozen=True)
class TextSpec:
    text: str
    e: int = 1
    alt: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackgroundSpec:
    color: str
    e: int = 1
    alt: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clean:
    """A wish for a clean picture: generic, and/or naming artefact kinds to avoid."""

    generic: bool = False
    named: tuple[str, ...] = ()

    def level(self, artefact: str) -> int:
        return int(self.generic) + 2 * int(artefact in self.named)


@dataclass(frozen=True)
class Preserve:
    """What an edit instruction says to keep: generic ("everything else") and/or named elements.

    Element keys: a ``Ref.key`` ("blue square", "* star"), "sign" or "background".
    """

    generic: bool = False
    named: tuple[str, ...] = ()

    def level(self, element_keys: tuple[str, ...] | list[str]) -> int:
        return int(self.generic) + 2 * int(any(k in self.named for k in element_keys))


@dataclass(frozen=True)
class Edit:
    """One edit operation on a source scene."""

    op: str
    target: Ref | None = None  # recolor, remove, move
    plural: bool = False  # the target names several objects ("the red circles")
    color: str | None = None  # recolor: new colour; background: new background
    group: Group | None = None  # add: what to add
    region: str | None = None  # move: a key of vocab.MOVE_TARGETS
    text: str | None = None  # text: the new word
    e: int = 1
    alt: tuple[Any, ...] = ()  # conflicting values a restatement gave

    def __post_init__(self) -> None:
        if self.op not in EDIT_OPS:
            raise ValueError(f"unknown edit op {self.op!r}; known: {', '.join(EDIT_OPS)}")
        _check_e(self.e)

    @property
    def value(self) -> Any:
        return {
            "recolor": self.color,
            "background": self.color,
            "add": self.group.count if self.group else None,
            "move": self.region,
            "text": self.text,
            "remove": None,
            "none": None,
        }[self.op]


@dataclass(frozen=True)
class Constraint:
    """One thing a request states, with how explicitly (see the module docstring)."""

    kind: str  # count | color | negation | relation | text | background | clean | preserve
    key: str
    explicitness: int
    conflicted: bool = False
    target: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Request:
    """A structured request (text-to-image or edit); ``parse.parse_request`` reads one from text."""

    task: str = "t2i"
    groups: tuple[Group, ...] = ()
    relations: tuple[Relation, ...] = ()
    negations: tuple[Negation, ...] = ()
    text: TextSpec | None = None
    background: BackgroundSpec | None = None
    clean: Clean = Clean()
    edit: Edit | None = None
    preserve: Preserve = Preserve()

    def __post_init__(self) -> None:
        if self.task not in ("t2i", "edit"):
            raise ValueError(f"task must be 't2i' or 'edit', got {self.task!r}")
        if self.task == "edit" and self.edit is None:
            raise ValueError("an edit request needs an edit operation")

    # -- what it asks for
    @property
    def asks_text(self) -> bool:
        """Whether the request asks for text in the image (text_rendering applies)."""
        return self.text is not None or (self.edit is not None and self.edit.op == "text")

    def group_for(self, shape: str, color: str | None) -> Group | None:
        for g in self.groups:
            if g.shape == shape and g.color == color:
                return g
        return None

    def constraints(self) -> list[Constraint]:
        """Every constraint the request states, with its explicitness level."""
        out: list[Constraint] = []
        for g in self.groups:
            tgt = {"shape": g.shape, "color": g.color, "count": g.count}
            out.append(Constraint("count", f"count:{g.key}", g.count_e, bool(g.count_alt), tgt))
            if g.color is not None:
                out.append(Constraint("color", f"color:{g.key}", g.color_e, bool(g.color_alt), tgt))
        for r in self.relations:
            tgt = {"subject": asdict(r.subject), "relation": r.relation, "object": asdict(r.object)}
            out.append(Constraint("relation", f"relation:{r.key}", r.e, r.conflicted, tgt))
        for n in self.negations:
            out.append(Constraint("negation", f"negation:{n.key}", n.e, n.conflicted, asdict(n.target)))
        if self.text is not None:
            out.append(Constraint("text", "text", self.text.e, bool(self.text.alt), {"text": self.text.text}))
        if self.background is not None:
            b = self.background
            out.append(Constraint("background", "background", b.e, bool(b.alt), {"color": b.color}))
        if self.edit is not None and self.edit.op != "none":
            ed = self.edit
            kind = EDIT_KIND[ed.op]
            tgt = {"op": ed.op, "value": ed.value}
            if ed.target is not None:
                tgt["target"] = asdict(ed.target)
            if ed.group is not None:
                tgt["group"] = asdict(ed.group)
            out.append(Constraint(kind, f"edit:{ed.op}", ed.e, bool(ed.alt), tgt))
        for a in ARTEFACTS:
            lvl = self.clean.level(a)
            if lvl:
                out.append(Constraint("clean", f"clean:{a}", lvl, False, {"artefact": a}))
        if self.preserve.generic:
            out.append(Constraint("preserve", "preserve:*", 1, False, {"element": "*"}))
        for k in self.preserve.named:
            out.append(Constraint("preserve", f"preserve:{k}", self.preserve.level([k]), False, {"element": k}))
        return out

    def explicitness(self) -> dict[str, int]:
        return {c.key: c.explicitness for c in self.constraints()}

    # -- canonical form
    def canonical(self) -> Request:
        """The same request with unordered parts sorted (two requests are equal iff their canonical forms are)."""
        return replace(
            self,
            groups=tuple(sorted(self.groups, key=lambda g: (g.shape, g.color or ""))),
            relations=tuple(sorted(self.relations, key=lambda r: r.key)),
            negations=tuple(sorted(self.negations, key=lambda n: n.key)),
            clean=Clean(self.clean.generic, tuple(sorted(set(self.clean.named)))),
            preserve=Preserve(self.preserve.generic, tuple(sorted(set(self.preserve.named)))),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples) of the canonical form."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(asdict(self.canonical()), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Request:
        def ref(x):
            return Ref(**x) if x else None

        def group(x):
            if not x:
                return None
            x = dict(x)
            x["count_alt"] = tuple(x.get("count_alt", ()))
            x["color_alt"] = tuple(x.get("color_alt", ()))
            return Group(**x)

        edit = d.get("edit")
        if edit:
            edit = dict(edit)
            edit["target"] = ref(edit.get("target"))
            edit["group"] = group(edit.get("group"))
            edit["alt"] = tuple(edit.get("alt", ()))
            edit = Edit(**edit)
        text = d.get("text")
        bg = d.get("background")
        return cls(
            task=d.get("task", "t2i"),
            groups=tuple(group(g) for g in d.get("groups", ())),
            relations=tuple(
                Relation(ref(r["subject"]), r["relation"], ref(r["object"]), r.get("e", 1), r.get("conflicted", False))
                for r in d.get("relations", ())
            ),
            negations=tuple(
                Negation(ref(n["target"]), n.get("e", 1), n.get("conflicted", False)) for n in d.get("negations", ())
            ),
            text=TextSpec(text["text"], text.get("e", 1), tuple(text.get("alt", ()))) if text else None,
            background=BackgroundSpec(bg["color"], bg.get("e", 1), tuple(bg.get("alt", ()))) if bg else None,
            clean=Clean(**{**d.get("clean", {}), "named": tuple(d.get("clean", {}).get("named", ()))}),
            edit=edit,
            preserve=Preserve(**{**d.get("preserve", {}), "named": tuple(d.get("preserve", {}).get("named", ()))}),
        )

    @classmethod
    def from_json(cls, s: str) -> Request:
        return cls.from_dict(json.loads(s))

    # -- derived requests
    def with_levels(self, levels: dict[str, int]) -> Request:
        """A copy with the explicitness of the named constraint keys set (``Constraint.key`` -> level).

        Clean and preserve keys take levels 0..3 and set the generic / named flags that give that level
        (the generic flag is shared by every artefact kind / element). Unknown keys raise.
        """
        req = self
        known = {c.key for c in self.constraints()}
        for key, lvl in levels.items():
            if key.startswith("clean:"):
                req = _set_clean(req, key.split(":", 1)[1], lvl)
                continue
            if key.startswith("preserve:"):
                req = _set_preserve(req, key.split(":", 1)[1], lvl)
                continue
            if key not in known:
                raise KeyError(f"request has no constraint {key!r}; it has: {', '.join(sorted(known))}")
            _check_e(lvl)
            kind, _, rest = key.partition(":")
            if kind in ("count", "color"):
                groups = tuple(replace(g, **{f"{kind}_e": lvl}) if g.key == rest else g for g in req.groups)
                req = replace(req, groups=groups)
            elif kind == "relation":
                req = replace(req, relations=tuple(replace(r, e=lvl) if r.key == rest else r for r in req.relations))
            elif kind == "negation":
                req = replace(req, negations=tuple(replace(n, e=lvl) if n.key == rest else n for n in req.negations))
            elif kind == "text":
                req = replace(req, text=replace(req.text, e=lvl))
            elif kind == "background":
                req = replace(req, background=replace(req.background, e=lvl))
            elif kind == "edit":
                req = replace(req, edit=replace(req.edit, e=lvl))
        return req


def _set_clean(req: Request, artefact: str, lvl: int) -> Request:
    if artefact not in ARTEFACTS:
        raise KeyError(f"unknown artefact {artefact!r}; known: {', '.join(ARTEFACTS)}")
    _check_e(lvl, 0)
    generic = lvl in (1, 3)  # the generic wish is shared by every artefact kind
    named = set(req.clean.named)
    if lvl >= 2:
        named.add(artefact)
    else:
        named.discard(artefact)
    return replace(req, clean=Clean(generic, tuple(sorted(named))))


def _set_preserve(req: Request, element: str, lvl: int) -> Request:
    _check_e(lvl, 0)
    if element == "*":
        return replace(req, preserve=Preserve(lvl >= 1, req.preserve.named))
    generic = lvl in (1, 3)  # the generic wish is shared by every element
    named = set(req.preserve.named)
    if lvl >= 2:
        named.add(element)
    else:
        named.discard(element)
    return replace(req, preserve=Preserve(generic, tuple(sorted(named))))


__all__ = [
    "Clean",
    "Constraint",
    "Edit",
    "Group",
    "Negation",
    "Preserve",
    "Ref",
    "Relation",
    "Request",
    "TextSpec",
    "BackgroundSpec",
    "CONTENT_KINDS",
    "EDIT_OPS",
    "EDIT_KIND",
    "MAX_E",
]
