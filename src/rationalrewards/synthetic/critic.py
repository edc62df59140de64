"""What the synthetic teacher perceives, how it writes findings, and how a rationale's claims are checked.

- **Perception** (``perceive``): each true finding of an image (``truth.judge``) is noticed with a
  per-kind probability and given a severity from the critic's own calibration, jittered. The
  privileged teacher's calibration is close to the truth's severities; the generic judge's
  over-weights blemishes and under-weights critical failures (and often misses them).
- **Claims** (``extract_claims``, ``check_claims``, ``hallucinations``): a rationale's
  justifications are split into clauses and attributed to Image A / Image B (or the single
  output); a clause that names a defect is a *claim*. A claim is reduced to a signature (the
  world's vocabulary words it names: colours, shapes, sizes, backgrounds, regions, numbers,
  quoted words, relations, plus defect cues) and is *supported* when a true finding of that
  image has the same content words and the same cues. The truth's own descriptions go through
  the same reduction, so any wording that names the same things in the world's words matches;
  a paraphrase that names other things (or the same things with other words) does not, so
  hallucination rates measured this way are upper bounds for free-form text.
- **Refined requests** (``refine_request``): the request as the world's parser reads it, with
  the failed constraints raised to the highest explicitness and rephrased by the world's own
  phrasing machinery (so the generator reads exactly those constraints more explicitly).
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..rubric import SCORE_MAX, SCORE_MIN, dimensions_for
from .generator import GenerationRecord
from .parse import parse_request_verbose
from .phrase import phrase_request
from .request import MAX_E, Request
from .truth import KINDS, TR, Finding, Truth, judge
from .vocab import (
    ARTEFACT_WORDS,
    BACKGROUND_NAMES,
    COLOR_NAMES,
    MOVE_TARGETS,
    NUMBER_WORDS,
    REGIONS,
    SHAPES,
    SIZE_NAMES,
    SIZE_SYNONYMS,
    number_word,
    plural,
)

# ---------------------------------------------------------------------------
# calibration

# failures that make an image wrong for its request; generic judges under-weight them
CRITICAL = frozenset(
    {"missing_object", "wrong_count", "wrong_color", "negation_violated", "wrong_relation", "edit_not_applied",
     "edit_wrong", "missing_text", "object_lost"}
)  # fmt: skip
# blemishes; generic judges over-penalize them
MINOR = frozenset(
    {"noise", "blur", "seam", "cut", "overlap", "dull_colors", "oversaturated", "wrong_size", "extra_object",
     "object_resized", "object_moved", "unrequested_object"}
)  # fmt: skip


def unit(*key: Any) -> float:
    """A uniform number in [0, 1) fixed by ``key`` (independent of every other key)."""
    h = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return struct.unpack(">Q", h)[0] / 2**64


def keyed_rng(*key: Any) -> random.Random:
    return random.Random(hashlib.sha256("|".join(map(str, key)).encode()).hexdigest())


@dataclass(frozen=True)
class Calibration:
    """How a critic sees: per finding kind, the probability of noticing it and the severity it gives it."""

    name: str
    severity: dict[str, float]
    notice: dict[str, float]

    def severity_of(self, kind: str) -> float:
        return self.severity.get(kind, KINDS[kind][1] if kind in KINDS else 1.0)

    def notice_of(self, kind: str) -> float:
        return self.notice.get(kind, 1.0)


def teacher_calibration(notice: float = 0.88, spread: float = 0.15) -> Calibration:
    """The privileged teacher: the truth's severities times a fixed per-kind factor in [1 - spread, 1 + spread].

    Close to the truth's scoring, and (like the truth's scores) not the hidden human utility's weighting.
    """
    sev = {k: round(s * (1 + spread * (2 * unit("teacher-calibration", k) - 1)), 3) for k, (_, s) in KINDS.items()}
    return Calibration("teacher", sev, {k: notice for k in KINDS})


def generic_calibration(
    notice: float = 0.92, critical_notice: float = 0.5, negation_notice: float = 0.3
) -> Calibration:
    """A generic VLM judge: blemishes x2.5, critical failures x0.35 and often missed (negations most of all)."""
    sev, see = {}, {}
    for k, (_, s) in KINDS.items():
        if k in CRITICAL:
            sev[k], see[k] = round(s * 0.35, 3), critical_notice
        elif k in MINOR:
            sev[k], see[k] = round(s * 2.5, 3), notice
        else:
            sev[k], see[k] = s, notice
    see["negation_violated"] = negation_notice
    return Calibration("generic", sev, see)


# ---------------------------------------------------------------------------
# perception


@dataclass
class Seen:
    """A finding as a critic states it: the (true or invented) finding, the severity it gives it, how it is worded."""

    finding: Finding
    severity: float
    text: str
    false: bool = False  # invented: not true of the image
    inflated: bool = False  # true, but its severity exaggerated

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.finding.kind,
            "dimension": self.finding.dimension,
            "description": self.finding.description,
            "text": self.text,
            "severity": round(self.severity, 3),
            "true_severity": self.finding.severity,
            "false": self.false,
            "inflated": self.inflated,
            "constraint": self.finding.constraint,
            "finding": self.finding.to_dict(),
        }


@dataclass
class View:
    """What a critic perceives of one image for one request."""

    record: GenerationRecord
    request: Request
    truth: Truth
    seen: list[Seen]
    missed: list[Finding]
    vividness: float  # perceived

    @property
    def task(self) -> str:
        return self.request.task

    def copy(self) -> View:
        return View(self.record, self.request, self.truth, list(self.seen), list(self.missed), self.vividness)


@lru_cache(maxsize=4096)
def parse_cached(text: str, task: str) -> tuple[Request, tuple[str, ...]]:
    res = parse_request_verbose(text, task)
    return res.request, tuple(res.unparsed)


def perceive(
    record: GenerationRecord,
    request: Request,
    calibration: Calibration,
    key: tuple,
    jitter: float = 0.15,
    look_harder: float = 0.0,
) -> View:
    """The findings a critic notices in an image (each independently), with its severities.

    ``key`` fixes the random streams (per image and sample); ``look_harder`` gives each missed
    finding a second chance with that probability (the same draws: noticing more, never less).
    """
    truth = judge(record, request)
    seen, missed = [], []
    for f in truth.findings:
        fk = repr(f.key)
        p = calibration.notice_of(f.kind)
        p = p + (1 - p) * look_harder
        if unit(*key, "notice", fk) < p:
            z = keyed_rng(*key, "severity", fk).gauss(0.0, 1.0)
            sev = calibration.severity_of(f.kind) * f.magnitude * max(0.3, 1 + jitter * z)
            seen.append(Seen(f, sev, f.description))
        else:
            missed.append(f)
    v = record.vividness + keyed_rng(*key, "vividness").gauss(0.0, 0.03)
    return View(record, request, truth, seen, missed, v)


def round_score(x: float, step: float) -> float:
    x = min(SCORE_MAX, max(SCORE_MIN, x))
    if step > 0:
        x = round(round(x / step) * step, 4)
    return min(SCORE_MAX, max(SCORE_MIN, x))


def scores_of(view: View, step: float = 0.1) -> dict[str, float | None]:
    """Per-dimension 1-4 scores from the stated findings (text rendering None when no text is asked for)."""
    out: dict[str, float | None] = {}
    for d in dimensions_for(view.task):
        if d.key == TR and not view.request.asks_text:
            out[d.key] = None
            continue
        lost = sum(s.severity for s in view.seen if s.finding.dimension == d.key)
        out[d.key] = round_score(SCORE_MAX - lost, step)
    return out


def mean_score(scores: dict[str, float | None]) -> float | None:
    vals = [v for v in scores.values() if v is not None]
    return sum(vals) / len(vals) if vals else None


# ---------------------------------------------------------------------------
# request wording


def _group_words(g) -> str:
    adj = " ".join(w for w in (g.size, g.color) if w)
    noun = plural(g.shape, g.count)
    return f"{number_word(g.count)} {adj + ' ' if adj else ''}{noun}"


def describe_request(req: Request) -> list[str]:
    """What a request asks for, one short phrase per part (for the request analysis)."""
    parts: list[str] = []
    if req.task == "edit" and req.edit is not None:
        ed = req.edit
        tgt = ed.target.words(2 if ed.plural else 1) if ed.target is not None else ""
        parts.append(
            {
                "recolor": f"recolour the {tgt} {ed.color}",
                "add": f"add {_group_words(ed.group)}" if ed.group else "add something",
                "remove": f"remove the {tgt}",
                "move": f"move the {tgt} to the {ed.region}",
                "text": f"make the sign read '{ed.text}'",
                "background": f"make the background {ed.color}",
                "none": "an instruction with no edit the world recognises",
            }[ed.op]
        )
        if req.preserve.generic:
            parts.append("keep everything else as it is")
        for k in req.preserve.named:
            parts.append(f"keep the {k.replace('* ', '').replace(' *', '')} unchanged")
    for g in req.groups:
        parts.append(_group_words(g))
    for r in req.relations:
        rel = {"left_of": "left of", "right_of": "right of", "above": "above", "below": "below", "inside": "inside"}
        parts.append(f"the {r.subject.words(1)} {rel[r.relation]} the {r.object.words(1)}")
    for n in req.negations:
        parts.append(f"no {n.target.words(2)} anywhere")
    if req.text is not None:
        parts.append(f"a sign reading '{req.text.text}'")
    if req.background is not None:
        parts.append(f"a {req.background.color} background")
    if req.clean.generic:
        parts.append("a clean picture")
    return parts


def constraint_words(key: str) -> str:
    """A constraint key in words, for refinement comments."""
    kind, _, rest = key.partition(":")
    if kind in ("count", "color"):
        color, shape = rest.split(" ")
        what = f"{'' if color == '*' else color + ' '}{plural(shape)}"
        return f"the number of {what}" if kind == "count" else f"the colour of the {what}"
    if kind == "relation":
        subj, rel, obj = rest.split("|")
        return f"where the {subj.replace('* ', '')} is relative to the {obj.replace('* ', '')}"
    if kind == "negation":
        return f"the ban on {rest.replace('* ', '').replace(' *', '')}{'s' if rest.endswith('*') else ''}"
    if kind == "text":
        return "the exact word on the sign"
    if kind == "background":
        return "the background colour"
    if kind == "edit":
        return "the edit itself"
    if kind == "clean":
        return f"no {ARTEFACT_WORDS.get(rest, rest)}"
    if kind == "preserve":
        return "everything else left unchanged" if rest == "*" else f"the {rest.replace('* ', '')} left unchanged"
    return key


def refine_request(text: str, task: str, failed: list[str], rng: random.Random) -> tuple[str, list[str]]:
    """(refined request text, the constraint keys raised) for a request whose ``failed`` constraints went wrong.

    The request is read by the world's parser; every failed content constraint is raised to the
    highest explicitness, a failed cleanliness or preservation constraint is named specifically,
    and the result is written by the world's phrasing machinery (every constraint is kept; only
    the failed ones change level). With nothing to raise, or text the parser cannot fully read,
    the original text comes back unchanged.
    """
    req, unparsed = parse_cached(text, task)
    if unparsed:
        return text, []
    known = {c.key: c for c in req.constraints()}
    levels: dict[str, int] = {}
    for k in dict.fromkeys(failed):
        if not k:
            continue
        kind, _, element = k.partition(":")
        if kind in ("clean", "preserve"):
            generic = req.clean.generic if kind == "clean" else req.preserve.generic
            target = 1 if element == "*" else (3 if generic else 2)
            if known.get(k) is None or known[k].explicitness < target:
                levels[k] = target
        elif k in known and known[k].explicitness < MAX_E:
            levels[k] = MAX_E
    while levels:
        try:
            return phrase_request(req.with_levels(levels), rng), sorted(levels)
        except ValueError:
            # a colour can be restated only where its shape names one group: leave such a colour as it was
            drop = [k for k in levels if k.startswith("color:")]
            if not drop:
                raise
            for k in drop:
                del levels[k]
    return text, []


# ---------------------------------------------------------------------------
# claims

_QUOTE = re.compile(
    r"(?<![A-Za-z0-9])['\u2018\u2019\"\u201c\u201d]([^'\u2018\u2019\"\u201c\u201d\n]{1,30}?)['\u2018\u2019\"\u201c\u201d](?![A-Za-z0-9])"
)
_REL = (
    (r"\bto the left of\b|\bleft of\b", "rel:left_of"),
    (r"\bto the right of\b|\bright of\b", "rel:right_of"),
    (r"\babove\b", "rel:above"),
    (r"\bbelow\b", "rel:below"),
    (r"\binside\b", "rel:inside"),
)
_CUES = (
    (r"\bnot (?:small|medium|large|tiny|big)\b", "wrong_size"),
    (r"\bnot removed\b", "not_removed"),
    (r"\bdid not move\b", "not_moved"),
    (r"\bnot carried out\b|\bnot applied\b", "not_applied"),
    (r"\binstead\b", "instead"),
    (r"\bonly\b", "only"),
    (r"\bmissing\b|\babsent\b|\bnone of\b|\bno sign\b", "missing"),
    (r"\bblank\b", "blank"),
    (r"\bunrequested\b|\bunwanted\b", "unrequested"),
    (r"\balthough\b", "although"),
    (r"\bnoise\b|\bblotch", "noise"),
    (r"\bblur", "blur"),
    (r"\bseams?\b", "seam"),
    (r"\bcut[ -]off\b|\bcropped\b", "cut"),
    (r"\boverlap", "overlap"),
    (r"\bwashed[ -]out\b|\bdull\b", "dull"),
    (r"\boversaturated\b|\bgarish", "oversaturated"),
    (r"\bstill\b", "still"),
    (r"\bdisappeared\b|\bvanished\b", "disappeared"),
    (r"\bmoved\b", "moved"),
    (r"\bturned\b", "turned"),
    (r"\bchanged\b", "changed"),
    (r"\bbecame\b", "became"),
    (r"\b(?:was|were) added\b", "added"),
)
_CUE_RES = tuple((re.compile(p), c) for p, c in _CUES)
_REL_RES = tuple((re.compile(p), t) for p, t in _REL)
_NOT_REL = re.compile(r"\bnot (?:to the left of|to the right of|left of|right of|above|below|inside)\b")


def _alternation(words) -> re.Pattern:
    ws = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in ws) + r")\b")


_REGION_WORDS = (
    {r: r for r in REGIONS}
    | {r: r.replace(" corner", "") for r in MOVE_TARGETS}
    | {
        "center": "centre",
        "middle": "centre",
    }
)
_BG_RE = _alternation(BACKGROUND_NAMES)
_REGION_RE = _alternation(_REGION_WORDS)
_COLOR_RE = _alternation(COLOR_NAMES)
_SHAPE_RE = re.compile(r"\b(" + "|".join(SHAPES) + r"|shape)(s?)\b")
_SIZE_RE = _alternation(list(SIZE_NAMES) + list(SIZE_SYNONYMS))
_NUM_RE = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r"|\d+)\b")
_MARKER = re.compile(
    r"\b(?:image|output|picture)\s+([ab])\b\s*(?:'s\b)?\s*:?|\bboth\s+(?:images|outputs|pictures)\b", re.I
)
_CLAUSE_SPLIT = re.compile(r";\s*|(?<=[.!?])\s+(?=[A-Z(])|\n+")
# kinds a claim's cues most likely name (for weighing claims that match no true finding)
CUE_KIND = {
    "wrong_size": "wrong_size", "not_removed": "edit_not_applied", "not_moved": "edit_not_applied",
    "not_applied": "edit_not_applied", "instead": "wrong_color", "only": "wrong_count", "missing": "missing_object",
    "blank": "missing_text", "unrequested": "extra_object", "although": "negation_violated", "noise": "noise",
    "blur": "blur", "seam": "seam", "cut": "cut", "overlap": "overlap", "dull": "dull_colors",
    "oversaturated": "oversaturated", "still": "edit_not_applied", "disappeared": "object_lost",
    "moved": "object_moved", "turned": "object_changed", "changed": "object_changed", "became": "object_resized",
    "added": "edit_wrong", "not_rel": "wrong_relation",
}  # fmt: skip


@lru_cache(maxsize=8192)
def signature(clause: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """(content words in the world's vocabulary, defect cues) of a clause; no cue: not a claim."""
    content: list[str] = []
    text = clause
    for m in _QUOTE.finditer(text):
        content.append("q:" + m.group(1).strip())
    text = _QUOTE.sub(" ", text).lower()
    cues = {c for r, c in _CUE_RES if r.search(text)}
    if _NOT_REL.search(text):
        cues.add("not_rel")
    for r, tok in _REL_RES:
        content += [tok] * len(r.findall(text))
        text = r.sub(" ", text)
    for m in _BG_RE.finditer(text):
        content.append("bg:" + m.group(1))
    text = _BG_RE.sub(" ", text)
    for m in _REGION_RE.finditer(text):
        content.append("at:" + _REGION_WORDS[m.group(1)])
    text = _REGION_RE.sub(" ", text)
    content += ["c:" + m.group(1) for m in _COLOR_RE.finditer(text)]
    content += ["s:" + m.group(1) for m in _SHAPE_RE.finditer(text)]
    content += ["z:" + SIZE_SYNONYMS.get(m.group(1), m.group(1)) for m in _SIZE_RE.finditer(text)]
    for m in _NUM_RE.finditer(text):
        w = m.group(1)
        content.append(f"n:{NUMBER_WORDS.get(w, w)}")
    return tuple(sorted(content)), frozenset(cues)


@dataclass
class Claim:
    """One defect a rationale states about one image, and whether the image bears it out."""

    image: str  # "A", "B" or "output"
    text: str
    content: tuple[str, ...]
    cues: frozenset[str]
    supported: bool | None = None
    finding: Finding | None = None  # the true finding it matches

    @property
    def kind(self) -> str:
        """The matched finding's kind, else the kind its cues most likely name."""
        if self.finding is not None:
            return self.finding.kind
        for c in sorted(self.cues):
            if c in CUE_KIND:
                return CUE_KIND[c]
        return "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "text": self.text, "supported": self.supported, "kind": self.kind}


def split_claims(text: str, images: tuple[str, ...] = ("A", "B")) -> list[Claim]:
    """The defect claims of free text, each attributed to the image last named before it.

    Pairwise (``images`` A and B): "Image A" / "Image B" switch the subject, "both images" names
    both; text before any marker is attributed to no image and dropped. Pointwise (``("output",)``):
    every claim is about the output.
    """
    out: list[Claim] = []
    pointwise = images == ("output",)
    segments: list[tuple[tuple[str, ...], str]] = []
    if pointwise:
        segments.append((("output",), text))
    else:
        pos, current = 0, ()
        for m in _MARKER.finditer(text):
            segments.append((current, text[pos : m.start()]))
            current = (m.group(1).upper(),) if m.group(1) else ("A", "B")
            pos = m.end()
        segments.append((current, text[pos:]))
    for who, seg in segments:
        if not who:
            continue
        for clause in _CLAUSE_SPLIT.split(seg):
            clause = clause.strip(" \t,:.-")
            if not clause:
                continue
            content, cues = signature(clause)
            if not cues:
                continue
            for w in who:
                out.append(Claim(w, clause, content, cues))
    return out


def match_claim(claim: Claim, findings: list[Finding]) -> Finding | None:
    for f in findings:
        content, cues = signature(f.description)
        if content == claim.content and cues == claim.cues:
            return f
    return None


def rationale_text(text: str, pairwise: bool, task: str) -> str:
    """The parts of a protocol text that carry claims: per-dimension justifications and the summary.

    Falls back to the whole text when it has no protocol structure.
    """
    from ..parsing import parse_critique, parse_pairwise

    c = parse_pairwise(text, task) if pairwise else parse_critique(text, task)
    parts = [c.justifications[d.key] for d in dimensions_for(task) if c.justifications.get(d.key)]
    if c.summary:
        parts.append(c.summary)
    return "\n".join(parts) if parts else text


@dataclass
class ClaimCheck:
    """Claims of a rationale checked against the truth of the images it is about."""

    claims: list[Claim] = field(default_factory=list)

    @property
    def supported(self) -> list[Claim]:
        return [c for c in self.claims if c.supported]

    @property
    def unsupported(self) -> list[Claim]:
        return [c for c in self.claims if c.supported is False]


def check_against(claims: list[Claim], truths: dict[str, Truth]) -> ClaimCheck:
    """Mark each claim supported or not by the true findings of its image (duplicates of one claim count once)."""
    seen: set[tuple] = set()
    out = ClaimCheck()
    for c in claims:
        k = (c.image, c.content, c.cues)
        if k in seen:
            continue
        seen.add(k)
        t = truths.get(c.image)
        if t is None:
            continue
        c.finding = match_claim(c, t.findings)
        c.supported = c.finding is not None
        out.claims.append(c)
    return out


__all__ = [
    "CRITICAL",
    "MINOR",
    "Calibration",
    "Claim",
    "ClaimCheck",
    "Seen",
    "View",
    "check_against",
    "constraint_words",
    "describe_request",
    "generic_calibration",
    "match_claim",
    "perceive",
    "refine_request",
    "rationale_text",
    "scores_of",
    "signature",
    "split_claims",
    "teacher_calibration",
]
