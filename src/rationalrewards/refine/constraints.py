"""The constraint-keeping check: a refined request must not drop anything the user asked for.

From the original request we extract, with plain rules (no tagger, no model):

- ``quoted``   every quoted string ("OPEN", 'SALE', “Café”): must appear verbatim, case-sensitively
               (it is usually text to render);
- ``count``    every number (digits or number words up to twenty): the same value must appear, as a
               digit or a word; 1 is also met by "a"/"an"/"single";
- ``colour``   every colour word: must appear as a word;
- ``negation`` every negated word ("no text", "without people", "not red"): the word must appear with
               a negation cue at most four words before it;
- ``noun``     the head noun of every phrase a determiner or number opens ("a red *cube*", "two blue
               *spheres*"; the phrase ends at a stop word, a spatial word or an ``-ing`` verb): must
               appear, singular and plural alike.

Words compare case-insensitively, plurals by a light stem. The rules are heuristics: they miss
synonyms ("a feline" for "a cat" is reported missing) and can miss constraints stated without a
determiner; ``ConstraintCheck`` turns each kind off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# fmt: off
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "dozen": 12,
}
# fmt: on
COLOUR_WORDS = _set(
    "red green blue yellow orange purple violet pink brown black white grey gray cyan magenta teal "
    "turquoise beige gold golden silver maroon navy crimson indigo lavender olive lime"
)
NEGATION_CUES = _set("no not without never none nothing neither nor don't doesn't isn't aren't avoid")
DETERMINERS = _set("a an the this these those each every some several many few its their his her my your our")
SPATIAL = _set(
    "left right above below behind beside besides next near under over on in inside outside front top bottom "
    "between among around across along against beneath atop onto into through toward towards middle center "
    "centre corner edge side background foreground"
)
STOP = _set(
    "and or but of with to for from by at as is are was were be been being it they them he she we you i "
    "which who whom whose where when while than then so very too also just only all any both either "
    "there here has have had having do does did can could should would will shall may might must "
    "that sits sit stands stand holds hold lies lie looks look wearing wears says say reads read shows show contains"
)
_ING_NOUNS = _set("thing building painting ring king string wing ceiling clothing drawing sing evening")
_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<!\w)'([^']+)'(?!\w)")


@dataclass(frozen=True)
class Constraint:
    kind: str  # quoted | count | colour | negation | noun
    text: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.text}"


@dataclass(frozen=True)
class ConstraintCheck:
    """Which kinds of constraint the check enforces (all by default)."""

    quoted: bool = True
    count: bool = True
    colour: bool = True
    negation: bool = True
    noun: bool = True

    def enabled(self, kind: str) -> bool:
        return bool(getattr(self, kind))


def _words(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def _stem(word: str) -> str:
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "xes", "sses")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


def _is_terminator(word: str) -> bool:
    return (
        word in STOP
        or word in SPATIAL
        or word in DETERMINERS
        or word in NEGATION_CUES
        or (word.endswith("ing") and word not in _ING_NOUNS)
    )


def extract_constraints(request: str) -> list[Constraint]:
    """The constraints of ``request`` in order of appearance, without duplicates."""
    found: list[Constraint] = []

    def add(c: Constraint) -> None:
        if c not in found:
            found.append(c)

    for m in _QUOTED.finditer(request):
        text = next(g for g in m.groups() if g is not None).strip()
        if text:
            add(Constraint("quoted", text))
    unquoted = _QUOTED.sub(" ", request)
    words = _words(unquoted)
    for i, w in enumerate(words):
        n = _number(w)
        if n is not None:
            add(Constraint("count", str(n)))
        if w in COLOUR_WORDS:
            add(Constraint("colour", "grey" if w == "gray" else w))
        if w in NEGATION_CUES:
            for nxt in words[i + 1 : i + 4]:
                if nxt not in DETERMINERS and nxt not in STOP and nxt not in ("any", "more"):
                    add(Constraint("negation", _stem(nxt)))
                    break
        if w in DETERMINERS or n is not None:
            chunk: list[str] = []
            for nxt in words[i + 1 :]:
                if _is_terminator(nxt) or _number(nxt) is not None:
                    break
                chunk.append(nxt)
            heads = [c for c in chunk if c not in COLOUR_WORDS]
            if heads:
                add(Constraint("noun", _stem(heads[-1])))
    return found


def _has_count(words: list[str], value: int) -> bool:
    if any(_number(w) == value for w in words):
        return True
    return value == 1 and any(w in ("a", "an", "single") for w in words)


def _has_negated(words: list[str], target: str) -> bool:
    for i, w in enumerate(words):
        if _stem(w) == target and any(p in NEGATION_CUES for p in words[max(0, i - 4) : i]):
            return True
    return False


def satisfied(constraint: Constraint, text: str) -> bool:
    """Whether ``text`` still states ``constraint``."""
    if constraint.kind == "quoted":
        return constraint.text in text
    words = _words(text)
    if constraint.kind == "count":
        return _has_count(words, int(constraint.text))
    if constraint.kind == "colour":
        alts = {"grey", "gray"} if constraint.text == "grey" else {constraint.text}
        return any(w in alts for w in words)
    if constraint.kind == "negation":
        return _has_negated(words, constraint.text)
    if constraint.kind == "noun":
        return any(_stem(w) == constraint.text for w in words)
    raise ValueError(f"unknown constraint kind {constraint.kind!r}")


def missing_constraints(original: str, refined: str, check: ConstraintCheck | None = None) -> list[str]:
    """The constraints of ``original`` that ``refined`` no longer states, as ``kind:text`` strings."""
    check = check or ConstraintCheck()
    return [str(c) for c in extract_constraints(original) if check.enabled(c.kind) and not satisfied(c, refined)]
