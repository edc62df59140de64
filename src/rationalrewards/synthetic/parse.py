"""The world's request parser: request text back into a ``Request`` with an explicitness level per constraint.

The generator reads every request through this parser, so a rewritten request
(from a critique's refinement, or a person) helps exactly as much as the
constraints it actually carries. The rules (see ``request`` for the levels):

- a group is introduced by an indefinite mention ("three red circles",
  "a small blue square"); a later mention of the same shape and colour with a
  count ("3 red circles in total") restates its count; "exactly"/"precisely"
  before the number is its precision marker; a later assertion ("the circles
  must be red") restates its colour;
- relations ("a red circle to the left of a blue square") are restated by the
  same or the converse relation between the same two objects;
- negations ("with no red shapes", "without any circles") are emphasised by
  "absolutely", "at all", "a single", and restated by a second negation of the
  same target;
- quoted text ('OPEN') is the sign's word; "exactly" just before the quote is its
  precision marker; spelling it out ("spelled O-P-E-N") or quoting it again
  restates it;
- a later statement with a different value marks the constraint conflicted.

It never raises on text: what it cannot read is listed in ``ParseResult.unparsed``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

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
from .vocab import BACKGROUND_NAMES, COLOR_NAMES, CONVERSE, MOVE_TARGETS, NUMBER_WORDS, SHAPES, SIZE_SYNONYMS

_C = "|".join(COLOR_NAMES)
_S = "|".join(SHAPES)
_SZ = "small|medium|large|tiny|big|medium-sized"
_NUM = r"a\s+single|an|a|one|two|three|four|five|six|seven|eight|nine|ten|\d+"
_BG = "|".join(sorted(BACKGROUND_NAMES, key=len, reverse=True))
_REG = "|".join(sorted(MOVE_TARGETS, key=len, reverse=True))

MENTION = re.compile(
    rf"\b(?:(?P<prec>exactly|precisely)\s+)?(?P<num>{_NUM})\s+(?P<new>new\s+)?(?:(?P<size>{_SZ})\s+)?"
    rf"(?:(?P<color>{_C})\s+)?(?P<shape>{_S})(?P<pl>s)?\b"
)
DEF_REF = re.compile(rf"\bthe\s+(?:(?P<size>{_SZ})\s+)?(?:(?P<color>{_C})\s+)?(?P<shape>{_S}|shape|object)(?P<pl>s)?\b")
REF = rf"the\s+(?:(?P<size>{_SZ})\s+)?(?:(?P<color>{_C})\s+)?(?P<shape>{_S}|shape|object)(?P<pl>s)?"
QUOTE = re.compile(
    r"(?<![A-Za-z0-9])['\"\u2018\u2019\u201c\u201d]([^'\"\u2018\u2019\u201c\u201d\n]{1,30}?)['\"\u2018\u2019\u201c\u201d](?![A-Za-z0-9])"
)
SPELL = re.compile(r"\bspel(?:led|t)\s+(?:out\s+)?(?:as\s+)?((?:[A-Z][- ])+[A-Z])(?![A-Za-z])")
REL = re.compile(
    r"(?:(?P<prec>directly|completely|clearly)\s+)?"
    r"(?P<rel>to\s+the\s+left\s+of|to\s+the\s+right\s+of|left\s+of|right\s+of|on\s+top\s+of|above|below|under|"
    r"beneath|over|inside|within|contains)\b"
)
REL_NORM = {
    "to the left of": "left_of", "left of": "left_of", "to the right of": "right_of", "right of": "right_of",
    "above": "above", "over": "above", "on top of": "above", "below": "below", "under": "below",
    "beneath": "below", "inside": "inside", "within": "inside", "contains": "contains",
}  # fmt: skip
NEG = re.compile(r"\b(?:no|without|nothing|none|not\s+(?:be\s+)?(?:a\s+single|any|one))\b")
NEG_EMPH = re.compile(r"\b(?:absolutely|at\s+all|a\s+single|whatsoever|not\s+one)\b")
TOTAL = re.compile(r"\b(?:in\s+total|in\s+all|altogether)\b")
COLOR_ASSERT = re.compile(
    rf"\b(?:the|each|every|all(?:\s+of)?(?:\s+the)?)\s+(?:(?:{_SZ})\s+)?(?:(?P<c1>{_C})\s+)?(?P<shape>{_S})s?\s+"
    rf"(?:(?:must|should|has\s+to|have\s+to|will|needs?\s+to)\s+)?(?:be|is|are|end\s+up|become)\s+"
    rf"(?:all\s+|completely\s+|entirely\s+)?(?P<color>{_C})\b"
)
BG_PRIMARY = re.compile(rf"\b(?:on|against)\s+an?\s+(?P<plain>(?:plain|solid)\s+)?(?P<bg>{_BG})\s+background\b")
BG_ASSERT = re.compile(
    rf"\bbackground\s+(?:should|must|has\s+to|will|needs\s+to)\s+be\s+(?P<plain>(?:plain|solid)\s+)?(?P<bg>{_BG})\b"
)
CLEAN_GENERIC = re.compile(r"\b(?:clean|sharp|crisp|artefact-free|artifact-free|flawless)\b")
CLEAN_NAMED = {
    "noise": re.compile(r"\b(?:noise|noisy|blotch|blotches|speckles?)\b"),
    "blur": re.compile(r"\b(?:blur|blurry|blurred|blurring)\b"),
    "seam": re.compile(r"\bseams?\b"),
    "cut": re.compile(r"\b(?:cut[- ]off|cropped)\b"),
    "overlap": re.compile(r"\boverlap(?:ping|s)?\b"),
}
CLEAN_MASK = re.compile(
    r"(?:\b(?:with\s+)?(?:no|without(?:\s+any)?|avoid|free\s+of)\s+)?"
    r"\b(?:noise\s+blotches|noise|noisy|blotch(?:es)?|speckles?|blur(?:ry|red|ring)?|seams?|cut[- ]off(?:\s+shapes)?|"
    r"cropped(?:\s+shapes)?|overlapp?ing(?:\s+shapes)?|overlaps?|clean|sharp|crisp|artefact-free|artifact-free|flawless)\b"
)
PRESERVE_CUE = re.compile(
    r"\b(?:keep|leave|preserve|unchanged|untouched|do\s+not\s+(?:touch|change|alter)|stay\s+the\s+same|"
    r"as\s+(?:it\s+is|they\s+are))\b"
)
PRESERVE_GENERIC = re.compile(r"\b(?:everything\s+else|the\s+rest|anything\s+else|all\s+else)\b")
SPLIT = re.compile(r"\s*[,;:()]\s*|\s+(?:and|with|so|plus|but|while|then)\s+|\s+(?=without\b)")
SENT = re.compile(r"(?<=[.!?])\s+|\n+")

OP_TEXT = re.compile(
    r"\b(?:change|make|set)\s+the\s+(?:sign|label)\s+(?:to\s+)?(?:say|read)s?\b"
    r"|\breplace\s+the\s+(?:word|text)\s+on\s+the\s+(?:sign|label)\b"
)
OP_BG = re.compile(
    rf"\b(?:change|turn|make|set|paint)\s+the\s+background\s+(?:to\s+)?(?:an?\s+)?(?P<prec>plain\s+|solid\s+)?(?P<bg>{_BG})\b"
)
OP_RECOLOR = (
    re.compile(
        rf"\b(?:make|turn|paint|recolou?r|colou?r)\s+{REF}\s+(?:to\s+)?(?P<prec>completely\s+|entirely\s+)?(?P<new>{_C})\b"
    ),
    re.compile(rf"\bchange\s+the\s+colou?r\s+of\s+{REF}\s+to\s+(?P<prec>completely\s+|entirely\s+)?(?P<new>{_C})\b"),
)
OP_REMOVE = re.compile(
    rf"\b(?:remove|delete|erase|take\s+out|get\s+rid\s+of)\s+{REF}(?P<prec>\s+(?:completely|entirely))?"
)
OP_MOVE = re.compile(
    rf"\b(?:move|shift|drag|put|place)\s+{REF}\s+(?P<prec>all\s+the\s+way\s+)?(?:to|into|in)\s+the\s+(?P<region>{_REG})\b"
)
OP_ADD = re.compile(r"\b(?:add|insert|put|place|draw)\s+")
MOVE_ASSERT = re.compile(rf"\b{REF}\s+(?:should|must|will)\s+end\s+up\s+(?:in|at)\s+the\s+(?P<region>{_REG})\b")
REMAIN = re.compile(r"\b(?:remain|remains|left|stay|stays)\b")


@dataclass
class ParseResult:
    request: Request
    unparsed: list[str] = field(default_factory=list)


@dataclass
class _Mentions:
    """Every statement of one constraint, in text order: (value, precise)."""

    items: list[tuple[object, bool]] = field(default_factory=list)

    def add(self, value: object, precise: bool = False) -> None:
        self.items.append((value, precise))

    @property
    def value(self) -> object:
        return self.items[0][0]

    def level(self) -> tuple[int, tuple]:
        """(explicitness, conflicting other values)."""
        first = self.items[0][0]
        alts = tuple(dict.fromkeys(v for v, _ in self.items[1:] if v != first))
        if alts:
            return 1, alts
        restated = len(self.items) - 1
        precise = any(p for _, p in self.items)
        return min(3, 1 + int(precise) + restated), ()


def _num(s: str) -> int:
    s = re.sub(r"\s+", " ", s)
    if s in ("a", "an", "a single"):
        return 1
    if s.isdigit():
        return int(s)
    return NUMBER_WORDS[s]


def _size(s: str | None) -> str | None:
    return SIZE_SYNONYMS.get(s, s) if s else None


def _ref(m: re.Match) -> Ref:
    shape = m.group("shape")
    return Ref(None if shape in ("shape", "object") else shape, m.group("color"))


def _mask(text: str, m: re.Match) -> str:
    return text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]


def _mask_all(text: str, pattern: re.Pattern) -> str:
    return pattern.sub(lambda m: " " * (m.end() - m.start()), text)


def _extract_text(text: str) -> tuple[str, list[tuple[str, bool]], list[str]]:
    """Quoted words (value, precise) and spelled-out words; the text with both replaced by placeholders."""
    quotes: list[tuple[str, bool]] = []
    spelled: list[str] = []

    def q(m: re.Match) -> str:
        before = text[max(0, m.start() - 24) : m.start()].lower()
        quotes.append((m.group(1).strip().upper(), bool(re.search(r"\bexactly\s+(?:the\s+word\s+)?$", before))))
        return " qtext "

    def sp(m: re.Match) -> str:
        spelled.append(re.sub(r"[- ]", "", m.group(1)).upper())
        return " spelledtext "

    text = SPELL.sub(sp, text)
    text = QUOTE.sub(q, text)
    return text, quotes, spelled


class _T2IState:
    def __init__(self) -> None:
        self.groups: OrderedDict[tuple[str, str | None], dict] = OrderedDict()
        self.colour_asserts: list[tuple[str, str]] = []
        self.relations: list[tuple[Ref, str, Ref, bool]] = []
        self.negations: OrderedDict[str, dict] = OrderedDict()
        self.totals: list[tuple[str, str | None, int, bool]] = []
        self.bg = _Mentions()
        self.clean_generic = False
        self.clean_named: set[str] = set()

    def mention(self, m: re.Match, total: bool = False) -> Ref:
        shape, color = m.group("shape"), m.group("color")
        n, prec = _num(m.group("num")), bool(m.group("prec"))
        if total:
            self.totals.append((shape, color, n, prec))
        else:
            key = (shape, color)
            if key not in self.groups:
                self.groups[key] = {"count": _Mentions(), "size": _size(m.group("size"))}
            self.groups[key]["count"].add(n, prec)
        return Ref(shape, color)


def _clean(sentence: str, st: _T2IState) -> str:
    if CLEAN_GENERIC.search(sentence):
        st.clean_generic = True
    for kind, pat in CLEAN_NAMED.items():
        if pat.search(sentence):
            st.clean_named.add(kind)
    return _mask_all(sentence, CLEAN_MASK)


def _relation_clause(clause: str, m: re.Match, st: _T2IState) -> bool:
    left, right = clause[: m.start()], clause[m.end() :]
    a = _end_ref(left, st, last=True)
    b = _end_ref(right, st, last=False)
    if a is None or b is None:
        return False
    rel = REL_NORM[re.sub(r"\s+", " ", m.group("rel"))]
    if rel == "contains":
        a, b, rel = b, a, "inside"
    st.relations.append((a, rel, b, bool(m.group("prec"))))
    return True


def _end_ref(text: str, st: _T2IState, last: bool) -> Ref | None:
    """The object named first (or, with ``last``, last) in ``text``: a new mention or a reference."""
    found: list[tuple[int, object]] = [(mm.start(), mm) for mm in MENTION.finditer(text)]
    found += [(mm.start(), mm) for mm in DEF_REF.finditer(text)]
    if not found:
        return None
    mm = (max if last else min)(found, key=lambda t: t[0])[1]
    if mm.re is MENTION:
        return st.mention(mm)
    return _ref(mm)


def _negation_target(text: str) -> Ref | None:
    c = re.search(rf"\b({_C})\b", text)
    s = re.search(rf"\b({_S})s?\b", text)
    if not c and not s:
        return None
    return Ref(s.group(1) if s else None, c.group(1) if c else None)


def _clause(clause: str, st: _T2IState, unparsed: list[str]) -> None:
    clause = clause.strip()
    if not clause or clause in ("qtext", "spelledtext"):
        return
    m = REL.search(clause)
    if m and _relation_clause(clause, m, st):
        return
    neg = NEG.search(clause)
    if neg:
        for mm in MENTION.finditer(clause[: neg.start()]):
            st.mention(mm)
        target = _negation_target(clause[neg.end() :])
        if target is not None:
            rec = st.negations.setdefault(target.key, {"target": target, "m": _Mentions()})
            rec["m"].add(target.key, bool(NEG_EMPH.search(clause)))
            return
    ca = COLOR_ASSERT.search(clause)
    if ca:
        st.colour_asserts.append((ca.group("shape"), ca.group("color")))
        return
    total = bool(TOTAL.search(clause))
    found = False
    for mm in MENTION.finditer(clause):
        st.mention(mm, total=total)
        found = True
    if not found and re.search(rf"\b(?:{_C}|{_S})", clause):
        unparsed.append(clause)


def _build_t2i(st: _T2IState, quotes: list[tuple[str, bool]], spelled: list[str]) -> Request:
    # resolve "N circles in total" restatements to their group
    for shape, color, n, prec in st.totals:
        cands = [k for k in st.groups if k[0] == shape and (color is None or k[1] == color)]
        if color is not None and (shape, color) not in st.groups:
            cands = []
        if len(cands) == 1:
            st.groups[cands[0]]["count"].add(n, prec)
        elif not cands and (shape, color) not in st.groups:
            st.groups[(shape, color)] = {"count": _Mentions([(n, prec)]), "size": None}
    groups = []
    shape_counts: dict[str, int] = {}
    for shape, _ in st.groups:
        shape_counts[shape] = shape_counts.get(shape, 0) + 1
    for (shape, color), rec in st.groups.items():
        e, alts = rec["count"].level()
        count_alt = tuple(int(a) for a in alts)
        color_e, color_alt = 1, ()
        if color is not None and shape_counts[shape] == 1:
            cm = _Mentions([(color, False)])
            for s, c in st.colour_asserts:
                if s == shape:
                    cm.add(c)
            color_e, color_alt = cm.level()
        groups.append(
            Group(
                shape,
                color,
                int(rec["count"].value),
                rec["size"],
                count_e=e,
                color_e=color_e,
                count_alt=count_alt,
                color_alt=tuple(color_alt),
            )  # fmt: skip
        )
    # relations: first statement about a pair of objects is primary, later ones restate or conflict
    rels: OrderedDict[frozenset, dict] = OrderedDict()
    for a, rel, b, prec in st.relations:
        pair = frozenset((a.key, b.key))
        if pair not in rels:
            rels[pair] = {"subject": a, "object": b, "m": _Mentions()}
        r = rels[pair]
        norm = rel if a == r["subject"] else CONVERSE.get(rel, f"contains-{rel}")
        r["m"].add(norm, prec)
    relations = []
    for r in rels.values():
        e, alts = r["m"].level()
        relations.append(Relation(r["subject"], r["m"].value, r["object"], e, bool(alts)))
    negations = []
    for rec in st.negations.values():
        e, _ = rec["m"].level()
        t: Ref = rec["target"]
        conflicted = any(t.matches(g.shape, g.color) for g in groups if g.color is not None) or any(
            g.color is None and t.shape == g.shape for g in groups
        )
        negations.append(Negation(t, 1 if conflicted else e, conflicted))
    text = _text_spec(quotes, spelled)
    bg = None
    if st.bg.items:
        e, alts = st.bg.level()
        bg = BackgroundSpec(str(st.bg.value), e, tuple(alts))
    return Request(
        task="t2i",
        groups=tuple(groups),
        relations=tuple(relations),
        negations=tuple(negations),
        text=text,
        background=bg,
        clean=Clean(st.clean_generic, tuple(sorted(st.clean_named))),
    ).canonical()


def _text_spec(quotes: list[tuple[str, bool]], spelled: list[str]) -> TextSpec | None:
    if not quotes and not spelled:
        return None
    m = _Mentions()
    for v, p in quotes:
        m.add(v, p)
    for v in spelled:
        m.add(v)
    e, alts = m.level()
    return TextSpec(str(m.value), e, tuple(alts))


def _background(sentence: str, st: _T2IState) -> str:
    for pat in (BG_PRIMARY, BG_ASSERT):
        for m in pat.finditer(sentence):
            st.bg.add(m.group("bg"), bool(m.group("plain")))
        sentence = _mask_all(sentence, pat)
    return sentence


def parse_t2i(text: str) -> ParseResult:
    body, quotes, spelled = _extract_text(text)
    st = _T2IState()
    unparsed: list[str] = []
    for sentence in SENT.split(body.lower()):
        sentence = _clean(sentence, st)
        sentence = _background(sentence, st)
        for clause in SPLIT.split(sentence):
            _clause(clause.strip(" .!?"), st, unparsed)
    return ParseResult(_build_t2i(st, quotes, spelled), unparsed)


# ---------------------------------------------------------------------------
# edits


def _find_op(sentence: str) -> tuple[Edit, re.Match | None] | None:
    if OP_TEXT.search(sentence):
        return Edit("text"), None
    m = OP_BG.search(sentence)
    if m:
        return Edit("background", color=m.group("bg")), m
    for pat in OP_RECOLOR:
        m = pat.search(sentence)
        if m:
            return Edit("recolor", target=_ref(m), plural=bool(m.group("pl")), color=m.group("new")), m
    m = OP_REMOVE.search(sentence)
    if m:
        return Edit("remove", target=_ref(m), plural=bool(m.group("pl"))), m
    m = OP_MOVE.search(sentence)
    if m:
        return Edit("move", target=_ref(m), plural=bool(m.group("pl")), region=m.group("region")), m
    m = OP_ADD.search(sentence)
    if m:
        mm = MENTION.search(sentence, m.end())
        if mm and mm.start() == m.end():
            g = Group(mm.group("shape"), mm.group("color"), _num(mm.group("num")), _size(mm.group("size")))
            return Edit("add", group=g), mm
    return None


def _preserve(sentence: str, generic: list[bool], named: set[str]) -> bool:
    if not PRESERVE_CUE.search(sentence):
        return False
    if PRESERVE_GENERIC.search(sentence):
        generic[0] = True
    for m in DEF_REF.finditer(sentence):
        named.add(_ref(m).key)
    if re.search(r"\bthe\s+(?:sign|label)\b", sentence):
        named.add("sign")
    if re.search(r"\bthe\s+background\b", sentence):
        named.add("background")
    return True


def _edit_restatement(ed: Edit, sentence: str, m: _Mentions) -> bool:
    if ed.op == "recolor":
        ca = COLOR_ASSERT.search(sentence)
        if ca and (ed.target.shape is None or ca.group("shape") == ed.target.shape):
            m.add(ca.group("color"), bool(re.search(r"\b(?:completely|entirely)\b", sentence)))
            return True
    elif ed.op == "add":
        mm = MENTION.search(sentence)
        if mm and mm.group("shape") == ed.group.shape and mm.group("color") == ed.group.color:
            m.add(_num(mm.group("num")), bool(mm.group("prec")))
            return True
    elif ed.op == "remove":
        if NEG.search(sentence) and REMAIN.search(sentence):
            t = _negation_target(sentence)
            if t is not None:
                m.add(t.key)
                return True
    elif ed.op == "move":
        mm = MOVE_ASSERT.search(sentence)
        if mm:
            m.add(mm.group("region"), False)
            return True
    elif ed.op == "background":
        mm = BG_ASSERT.search(sentence)
        if mm:
            m.add(mm.group("bg"), bool(mm.group("plain")))
            return True
    return False


def parse_edit(text: str) -> ParseResult:
    body, quotes, spelled = _extract_text(text)
    unparsed: list[str] = []
    st = _T2IState()
    generic = [False]
    named: set[str] = set()
    ed: Edit | None = None
    m = _Mentions()
    for sentence in SENT.split(body.lower()):
        sentence = sentence.strip()
        if not sentence:
            continue
        if ed is None:
            found = _find_op(sentence)
            if found is not None:
                ed, match = found
                precise = bool(match.groupdict().get("prec")) if match is not None else False
                m.add(ed.target.key if ed.op == "remove" else ed.value, precise)
                sentence = _mask(sentence, match) if match is not None else _mask_all(sentence, OP_TEXT)
        sentence = _clean(sentence, st)
        if _preserve(sentence, generic, named):
            continue
        if ed is not None and _edit_restatement(ed, sentence, m):
            continue
        if re.search(rf"\b(?:{_C}|{_S})", sentence):
            unparsed.append(sentence.strip())
    if ed is None and quotes:
        ed = Edit("text")
    if ed is None:
        ed = Edit("none")
        unparsed.insert(0, text.strip())
    elif ed.op == "text":
        spec = _text_spec(quotes, spelled)
        ed = Edit("text", text=spec.text, e=spec.e, alt=spec.alt) if spec else Edit("none")
    else:
        e, alts = m.level()
        ed = Edit(ed.op, ed.target, ed.plural, ed.color, ed.group, ed.region, None, e, tuple(alts))
    req = Request(
        task="edit",
        edit=ed,
        preserve=Preserve(generic[0], tuple(sorted(named))),
        clean=Clean(st.clean_generic, tuple(sorted(st.clean_named))),
    )
    return ParseResult(req.canonical(), unparsed)


def parse_request_verbose(text: str, task: str = "t2i") -> ParseResult:
    if task not in ("t2i", "edit"):
        raise ValueError(f"task must be 't2i' or 'edit', got {task!r}")
    if not isinstance(text, str):
        raise TypeError(f"request text must be a string, got {type(text).__name__}")
    return parse_edit(text) if task == "edit" else parse_t2i(text)


def parse_request(text: str, task: str = "t2i") -> Request:
    """The world's reading of a request text (``task`` 'edit' reads an edit instruction)."""
    return parse_request_verbose(text, task).request
