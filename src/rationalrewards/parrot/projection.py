"""Project a pairwise rationale onto two pointwise critiques (one per image), the PARROT phase 3 mix.

What each projected ``Critique`` holds, for side ``A`` (``B`` alike):

- scores: ``scores_a`` of the applicable dimensions, N/A kept as N/A;
- justification per dimension: the pairwise justification cut into sentences (at ``.``, ``!``, ``?``
  followed by white space); a sentence that names both images is cut further into clauses (at
  ``;``, ``while``, ``whereas``, ``but``). A unit *names A* when it says ``Image A`` (or Output,
  Edit, Picture, Candidate, Option A), ``A's``, or "the first/left image"; B alike with
  "second/right". A's text is, in order, the units that name A only plus the units that name
  neither image (shared statements such as "Both render the word legibly."); units that name B
  only are dropped. A leading label ("Image A: the sign is misspelt") is dropped; other references
  to A are rewritten as "the image" ("Image A's colours" -> "the image's colours"). When no unit
  remains for A, the whole justification is used unchanged (``project`` returns the dimension in
  its fallback list; the export counts them);
- summary: the same attribution applied to the pairwise summary (same fallback);
- request analysis, refinement comments and refined request: copied (they are about the request,
  not about one image).

The result renders with ``format.render_critique`` and parses back with ``parse_critique`` to the
same scores (text units are joined with single spaces, so no line can start with a protocol label).
"""

from __future__ import annotations

import re
from typing import Literal

from ..rubric import dimensions_for
from ..schema import Critique, PairwiseCritique

Side = Literal["A", "B"]

_NOUNS = r"(?i:image|output|edit|picture|candidate|option|generation)"
_MENTION = {
    "A": re.compile(rf"\b{_NOUNS}[ \t]+A\b(?:'s)?|\bA's\b|\b(?i:the[ \t]+)?(?i:first|left)[ \t]+{_NOUNS}\b(?:'s)?"),
    "B": re.compile(rf"\b{_NOUNS}[ \t]+B\b(?:'s)?|\bB's\b|\b(?i:the[ \t]+)?(?i:second|right)[ \t]+{_NOUNS}\b(?:'s)?"),
}
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_RE = re.compile(r"\s*;\s*|,?\s+(?=(?:while|whereas|but)\s)", re.I)
_CONNECTIVE_RE = re.compile(r"^(?:while|whereas|but)\s+", re.I)


def _names(unit: str) -> set[str]:
    return {side for side, rx in _MENTION.items() if rx.search(unit)}


def _units(text: str) -> list[str]:
    out: list[str] = []
    for sentence in _SENTENCE_RE.split(" ".join(text.split())):
        if not sentence:
            continue
        if len(_names(sentence)) == 2:
            out += [c for c in _CLAUSE_RE.split(sentence) if c and c.strip()]
        else:
            out.append(sentence)
    return out


def _rewrite(unit: str, side: Side) -> str:
    def repl(m: re.Match) -> str:
        return "the image's" if m.group(0).endswith("'s") else "the image"

    unit = _CONNECTIVE_RE.sub("", unit.strip()).strip(" ,")
    lead = _MENTION[side].match(unit)
    if lead and not lead.group(0).endswith("'s") and unit[lead.end() :].lstrip().startswith(":"):
        unit = unit[lead.end() :].lstrip()[1:].strip()  # "Image A: the sign is misspelt" -> "The sign is misspelt"
    unit = _MENTION[side].sub(repl, unit)
    if unit and unit[0].islower():
        unit = unit[0].upper() + unit[1:]
    if unit and unit[-1] not in ".!?":
        unit += "."
    return unit


def attribute(text: str | None, side: Side) -> tuple[str | None, bool]:
    """The part of a pairwise ``text`` about ``side``, rewritten to speak of "the image"; and whether it fell back.

    Falls back to the whole text (unchanged) when no sentence or clause is about ``side`` or about neither.
    """
    if text is None or not text.strip():
        return text, False
    other = "B" if side == "A" else "A"
    kept = [_rewrite(u, side) for u in _units(text) if other not in _names(u) or side in _names(u)]
    kept = [u for u in kept if u.strip(" .")]
    if not kept:
        return " ".join(text.split()), True
    return " ".join(kept), False


def project(critique: PairwiseCritique, side: Side) -> tuple[Critique, list[str]]:
    """The pointwise critique of image ``side`` derived from ``critique``, and the fields that fell back."""
    if side not in ("A", "B"):
        raise ValueError(f"side must be 'A' or 'B', got {side!r}")
    scores_src = critique.scores_a if side == "A" else critique.scores_b
    scores: dict[str, float | None] = {}
    justifications: dict[str, str] = {}
    fallback: list[str] = []
    for d in dimensions_for(critique.task):
        scores[d.key] = scores_src.get(d.key)
        text, fell = attribute(critique.justifications.get(d.key), side)
        if text is not None:
            justifications[d.key] = text
        if fell:
            fallback.append(d.key)
    summary, fell = attribute(critique.summary, side)
    if fell:
        fallback.append("summary")
    missing = [k for k, v in scores.items() if v is None and k not in critique.na]
    result = Critique(
        task=critique.task,
        request_analysis=critique.request_analysis,
        summary=summary,
        refinement_comments=critique.refinement_comments,
        refined_request=critique.refined_request,
        scores=scores,
        justifications=justifications,
        na=list(critique.na),
        missing=missing,
        parse_status="ok" if not missing else "partial" if len(missing) < len(scores) else "failed",
        template=critique.template,
        template_version=critique.template_version,
    )
    return result, fallback


def project_pair(critique: PairwiseCritique) -> tuple[Critique, Critique]:
    """Both projections (A, B) of a pairwise critique."""
    return project(critique, "A")[0], project(critique, "B")[0]
