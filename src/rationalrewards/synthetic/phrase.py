"""Requests to text in varied natural phrasings; the explicitness of each constraint decides its wording.

``parse.parse_request(phrase_request(req, rng))`` gives back ``req`` (in canonical
form): the tests check this round trip over thousands of random requests.
"""

from __future__ import annotations

import random

from .request import Edit, Group, Negation, Ref, Relation, Request
from .vocab import ARTEFACT_WORDS, CONVERSE, number_word, plural

OPENINGS = (
    "Draw", "A picture of", "An image of", "Show", "Generate an image of", "Create a picture with",
    "Make an image showing", "Render",
)  # fmt: skip
REL_WORDS = {"left_of": "to the left of", "right_of": "to the right of", "above": "above", "below": "below"}
REL_PRECISE = {"left_of": "directly", "right_of": "directly", "above": "directly", "below": "directly"}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _split_levels(e: int, rng: random.Random, has_precision: bool = True) -> tuple[bool, int]:
    """How to reach level ``e``: (use a precision marker, number of restatements)."""
    extra = e - 1
    if not has_precision:
        return False, extra
    if extra == 0:
        return False, 0
    if extra == 1:
        return (True, 0) if rng.random() < 0.5 else (False, 1)
    return True, 1


def _shape_unique(req: Request, shape: str) -> bool:
    return sum(g.shape == shape for g in req.groups) == 1


def group_np(g: Group, precise: bool, rng: random.Random, definite: bool = False) -> str:
    """``a red circle``, ``exactly three small blue squares``, ``the red circle``."""
    adj = " ".join(w for w in (g.size, g.color) if w)
    noun = plural(g.shape, g.count)
    tail = f"{adj} {noun}" if adj else noun
    if definite:
        return f"the {tail}"
    if g.count == 1:
        if precise:
            num = rng.choice(("exactly one", "precisely one"))
        else:
            num = rng.choice((_article(tail), _article(tail), "one"))
    else:
        num = number_word(g.count) if rng.random() < 0.85 else str(g.count)
        if precise:
            num = rng.choice(("exactly", "precisely")) + " " + num
    return f"{num} {tail}"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _count_restatement(g: Group, rng: random.Random) -> str:
    n = number_word(g.count) if rng.random() < 0.6 else str(g.count)
    what = Ref(g.shape, g.color).words(g.count)
    form = rng.choice(("There should be {n} {w} in total.", "That is {n} {w} in total.", "In all, {n} {w} in total."))
    return form.format(n=n, w=what)


def _color_restatements(g: Group, k: int, rng: random.Random) -> list[str]:
    sing = g.count == 1
    forms = (
        [f"The {g.shape} must be {g.color}.", f"The {g.shape} should be {g.color}.", f"The {g.shape} is {g.color}."]
        if sing
        else [
            f"The {plural(g.shape)} must be {g.color}.",
            f"Every {g.shape} should be {g.color}.",
            f"All the {plural(g.shape)} are {g.color}.",
        ]
    )
    return rng.sample(forms, k)


def _neg_words(t: Ref, singular: bool = False) -> str:
    return t.words(1 if singular else 2)


def _negation_primary(n: Negation, precise: bool, rng: random.Random) -> str:
    w = _neg_words(n.target)
    if not precise:
        return rng.choice((f"with no {w}", f"without any {w}"))
    return rng.choice(
        (f"with absolutely no {w}", f"with no {w} at all", f"without a single {_neg_words(n.target, singular=True)}")
    )


def _negation_restatement(n: Negation, rng: random.Random) -> str:
    w = _neg_words(n.target)
    forms = [f"Make sure there are no {w}.", f"There must not be any {w}."]
    if n.target.shape is None:
        forms.append(f"Nothing in the picture may be {n.target.color}.")
    return rng.choice(forms)


def _sign_np(text: str, precise: bool, rng: random.Random) -> str:
    q = f"'{text}'"
    if precise:
        return rng.choice(
            (f"a sign that says exactly {q}", f"a sign reading exactly {q}", f"a label that reads exactly {q}")
        )
    return rng.choice(
        (f"a sign that says {q}", f"a sign reading {q}", f"a sign with the word {q}", f"a label that reads {q}")
    )


def _spelled(text: str, rng: random.Random) -> str:
    sep = rng.choice(("-", " "))
    letters = sep.join(text)
    return rng.choice((f"The word is spelled {letters}.", f"It is spelled {letters}."))


def _text_restatements(text: str, k: int, rng: random.Random) -> list[str]:
    forms = [_spelled(text, rng), f"The sign must read '{text}'."]
    return forms[:k] if k == 2 else [rng.choice(forms)][:k]


def _clean_sentence(req: Request, rng: random.Random) -> str | None:
    named = [ARTEFACT_WORDS[a] for a in req.clean.named]
    rng.shuffle(named)
    if not req.clean.generic and not named:
        return None
    if req.clean.generic and not named:
        return rng.choice(("The image should be clean.", "Make it a clean, sharp picture.", "It must look clean."))
    listed = _join([f"no {w}" for w in named])
    if req.clean.generic:
        return f"The image should be clean, with {listed}."
    return rng.choice((f"There should be {listed}.", f"Avoid {_join(named)}."))


def _relation_np(r: Relation, req: Request, precise: bool, prec: dict[str, bool], rng: random.Random) -> str:
    a = req.group_for(r.subject.shape, r.subject.color)
    b = req.group_for(r.object.shape, r.object.color)
    if a is None or b is None:
        raise ValueError(f"relation {r.key} names objects the request does not ask for")
    words = "inside" if r.relation == "inside" else REL_WORDS[r.relation]
    if precise:
        words = ("completely " if r.relation == "inside" else REL_PRECISE[r.relation] + " ") + words
    return f"{group_np(a, prec[a.key], rng)} {words} {group_np(b, prec[b.key], rng)}"


def _relation_restatement(r: Relation, rng: random.Random) -> str:
    sa, sb = r.subject.words(1), r.object.words(1)
    if r.relation == "inside":
        return rng.choice((f"The {sb} contains the {sa}.", f"The {sa} must be inside the {sb}."))
    if rng.random() < 0.5:
        return f"The {sb} is {REL_WORDS[CONVERSE[r.relation]]} the {sa}."
    return f"The {sa} must be {REL_WORDS[r.relation]} the {sb}."


def phrase_t2i(req: Request, rng: random.Random) -> str:
    plan = {g.key: _split_levels(g.count_e, rng) for g in req.groups}
    prec = {k: v[0] for k, v in plan.items()}
    in_rel = {r.subject.key for r in req.relations} | {r.object.key for r in req.relations}
    items = [group_np(g, prec[g.key], rng) for g in req.groups if g.key not in in_rel]
    rel_plan = {}
    for r in req.relations:
        rel_plan[r.key] = _split_levels(r.e, rng)
        items.append(_relation_np(r, req, rel_plan[r.key][0], prec, rng))
    text_plan = _split_levels(req.text.e, rng) if req.text else (False, 0)
    if req.text:
        items.append(_sign_np(req.text.text, text_plan[0], rng))
    first = f"{rng.choice(OPENINGS)} {_join(items)}" if items else rng.choice(("An empty picture", "Draw nothing"))
    bg_plan = (False, 0)
    if req.background:
        bg_plan = _split_levels(req.background.e, rng)
        plain = "plain " if bg_plan[0] else ""
        first += f" {rng.choice(('on', 'against'))} a {plain}{req.background.color} background"
    neg_plan = {}
    for n in req.negations:
        neg_plan[n.key] = _split_levels(n.e, rng)
        first += ", " + _negation_primary(n, neg_plan[n.key][0], rng)
    sentences = [first + "."]
    for g in req.groups:
        for _ in range(plan[g.key][1]):
            sentences.append(_count_restatement(g, rng))
        if g.color is not None and g.color_e > 1:
            if not _shape_unique(req, g.shape):
                raise ValueError(f"colour of {g.key} can only be restated when its shape is unique in the request")
            sentences.extend(_color_restatements(g, g.color_e - 1, rng))
    for r in req.relations:
        if rel_plan[r.key][1]:
            sentences.append(_relation_restatement(r, rng))
    for n in req.negations:
        if neg_plan[n.key][1]:
            sentences.append(_negation_restatement(n, rng))
    if req.text and text_plan[1]:
        sentences.extend(_text_restatements(req.text.text, text_plan[1], rng))
    if req.background and bg_plan[1]:
        sentences.append(
            rng.choice(("The background should be {c}.", "The background must be {c}.")).format(c=req.background.color)
        )
    clean = _clean_sentence(req, rng)
    if clean:
        sentences.append(clean)
    return " ".join(sentences)


def _ref_np(ref: Ref, plural_: bool) -> str:
    return "the " + ref.words(2 if plural_ else 1)


def _edit_sentence(ed: Edit, precise: bool, rng: random.Random) -> str:
    if ed.op == "recolor":
        t = _ref_np(ed.target, ed.plural)
        c = (rng.choice(("completely ", "entirely ")) if precise else "") + ed.color
        return rng.choice(
            (f"Make {t} {c}.", f"Change the colour of {t} to {c}.", f"Recolour {t} {c}.", f"Turn {t} {c}.",
             f"Paint {t} {c}.")
        )  # fmt: skip
    if ed.op == "add":
        g = ed.group
        return rng.choice(("Add {np}.", "Insert {np}.", "Put {np} into the picture.")).format(
            np=group_np(g, precise, rng)
        )
    if ed.op == "remove":
        t = _ref_np(ed.target, ed.plural)
        tail = " " + rng.choice(("completely", "entirely")) if precise else ""
        return rng.choice((f"Remove {t}{tail}.", f"Delete {t}{tail}.", f"Take out {t}{tail}.", f"Erase {t}{tail}."))
    if ed.op == "move":
        t = _ref_np(ed.target, ed.plural)
        way = "all the way " if precise else ""
        return rng.choice((f"Move {t} {way}to the {ed.region}.", f"Shift {t} {way}to the {ed.region}."))
    if ed.op == "text":
        q = ("exactly " if precise else "") + f"'{ed.text}'"
        return rng.choice(
            (f"Change the sign to say {q}.", f"Make the sign read {q}.", f"Replace the word on the sign with {q}.")
        )
    if ed.op == "background":
        c = ("plain " if precise else "") + ed.color
        return rng.choice((f"Change the background to {c}.", f"Make the background {c}."))
    raise ValueError(f"unknown edit op {ed.op!r}")


def _edit_restatements(ed: Edit, k: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(k):
        if ed.op == "recolor":
            noun = ed.target.words(2 if ed.plural else 1).split(" ")[-1]
            out.append(rng.choice((f"The {noun} must end up {ed.color}.", f"The {noun} should become {ed.color}.")))
        elif ed.op == "add":
            g = ed.group
            n = number_word(g.count)
            out.append(f"There should be {n} new {Ref(g.shape, g.color).words(g.count)}.")
        elif ed.op == "remove":
            w = ed.target.words(1)
            out.append(rng.choice((f"No {w} should remain.", f"There should be no {w} left.")))
        elif ed.op == "move":
            w = ed.target.words(1)
            out.append(f"The {w} should end up in the {ed.region}.")
        elif ed.op == "text":
            out.append(_spelled(ed.text, rng))
        elif ed.op == "background":
            out.append(f"The new background should be {ed.color}.")
    return out


def _element_np(key: str) -> str:
    if key in ("sign", "background"):
        return f"the {key}"
    color, shape = key.split(" ")
    return "the " + Ref(None if shape == "*" else shape, None if color == "*" else color).words(1)


def _preserve_sentence(req: Request, rng: random.Random) -> str | None:
    p = req.preserve
    named = [_element_np(k) for k in p.named]
    rng.shuffle(named)
    if not p.generic and not named:
        return None
    if not named:
        return rng.choice(
            ("Keep everything else unchanged.", "Leave the rest of the picture as it is.",
             "Everything else should stay the same.")
        )  # fmt: skip
    if p.generic:
        return f"Keep {_join(named)} and everything else unchanged."
    return rng.choice((f"Keep {_join(named)} unchanged.", f"Do not touch {_join(named)}."))


def phrase_edit(req: Request, rng: random.Random) -> str:
    ed = req.edit
    precise, k = _split_levels(ed.e, rng)
    sentences = [_edit_sentence(ed, precise, rng)]
    sentences.extend(_edit_restatements(ed, k, rng))
    pres = _preserve_sentence(req, rng)
    if pres:
        sentences.append(pres)
    clean = _clean_sentence(req, rng)
    if clean:
        sentences.append(clean)
    return " ".join(sentences)


def phrase_request(req: Request, rng: random.Random | int | None = None) -> str:
    """Text for a structured request; ``rng`` picks among phrasings (an int seeds one)."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    return phrase_edit(req, rng) if req.task == "edit" else phrase_t2i(req, rng)
