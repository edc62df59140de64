"""Diagnostics over stored records: parse failures, position bias, score histograms, rationale-score agreement.

Rationale-score agreement is a heuristic, documented here so its numbers can be read
for what they are:

- pairwise critiques: each dimension's justification is cut into clauses (at . ; ! ?
  and at "but", "while", "whereas"). A clause that names one side ("Image A",
  "output B", "A's"...) gives that side +1 for praise words (better, correct,
  clean, legible...) outnumbering fault words (fails, missing, misspelt,
  artefacts...) and -1 for the reverse; a clause comparing both sides ("than",
  "compared", "versus") credits the first named side with the clause's polarity and
  the other with its opposite (without such a word, a second side starts a new
  clause). "no/without/free of <fault>" counts as praise. The side
  with the higher total is the winner the text implies; equal totals imply nothing.
  It *agrees* when it is the side with the higher score on that dimension. Only
  dimensions where the text implies a winner and the scores differ are counted.
- pointwise critiques: a justification's polarity (praise minus fault words) implies
  a high score (> scale midpoint) or a low one; neutral text implies nothing.
- stated winners: where the parser found a per-dimension winner, whether it is the
  side the scores favour; and whether the stated overall preference is the side with
  the higher aggregate score.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..rubric import DIMENSION_KEYS, SCORE_MAX, SCORE_MIN
from .protocols import FLIP, side_score

HIST_BINS: tuple[float, ...] = tuple(SCORE_MIN + 0.5 * i for i in range(int((SCORE_MAX - SCORE_MIN) * 2) + 1))


def critiques(records: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(slot, critique) for every critique stored in the records."""
    for rec in records:
        for slot in ("forward", "reverse", "a", "b"):
            c = rec.get(slot)
            if c is not None:
                yield slot, c


def parse_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of parse status, backend errors and missing dimensions over every critique."""
    status: Counter = Counter()
    missing: Counter = Counter()
    backend_errors = 0
    for _, c in critiques(records):
        status[c.get("parse_status", "failed")] += 1
        for key in c.get("missing") or ():
            missing[key] += 1
        if c.get("error") or (c.get("parse_status") == "failed" and not (c.get("raw_text") or "").strip()):
            backend_errors += 1
    n = sum(status.values())
    return {
        "critiques": n,
        "ok": status["ok"],
        "partial": status["partial"],
        "failed": status["failed"],
        "failure_rate": status["failed"] / n if n else None,
        "partial_rate": status["partial"] / n if n else None,
        "empty_or_backend_error": backend_errors,
        "missing_by_dimension": dict(missing),
    }


def position_bias(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """With both orders judged: how often the verdict changes when A and B swap, and how often the first slot wins.

    ``flip_rate``: pairs whose two stated preferences (the reverse one mapped back) differ,
    over pairs where both parsed. ``first_position_rate``: share of A/B verdicts, as
    stated, that name the first slot (0.5 is unbiased). None without reverse judgements.
    """
    flips = both = first = decided = 0
    for rec in records:
        fwd, rev = rec.get("forward"), rec.get("reverse")
        if fwd is None or rev is None:
            continue
        pf = fwd.get("preference") if fwd.get("parse_status") != "failed" else None
        pr = rev.get("preference") if rev.get("parse_status") != "failed" else None
        for p in (pf, pr):
            if p in ("A", "B"):
                decided += 1
                first += p == "A"
        if pf is None or pr is None:
            continue
        both += 1
        flips += pf != FLIP[pr]
    if both == 0 and decided == 0:
        return None
    return {
        "pairs": both,
        "flips": flips,
        "flip_rate": flips / both if both else None,
        "first_position_rate": first / decided if decided else None,
        "decided": decided,
    }


def score_histograms(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per dimension: how many scores fell on each half-point of the scale, plus N/A-or-missing."""
    hist: dict[str, Counter] = {k: Counter() for k in DIMENSION_KEYS}
    for _, c in critiques(records):
        if c.get("parse_status") == "failed":
            continue
        for field in ("scores", "scores_a", "scores_b"):
            scores = c.get(field)
            if not scores:
                continue
            for key in DIMENSION_KEYS:
                if key not in scores:
                    continue
                v = scores[key]
                if v is None:
                    hist[key]["n/a"] += 1
                else:
                    b = min(SCORE_MAX, max(SCORE_MIN, round(2 * float(v)) / 2))  # the nearest half point
                    hist[key][f"{b:g}"] += 1
    return {k: {f"{b:g}": h[f"{b:g}"] for b in HIST_BINS} | {"n/a": h["n/a"]} for k, h in hist.items() if h}


# ---------------------------------------------------------------------------
# rationale-score agreement


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_NOUNS = _set("image output response candidate picture edit result generation option version img")
_BREAKS = _set("but while whereas however")
_NEGATORS = _set("no without free few minimal")
_FAULT_NOUNS = _set(
    "artefact artefacts artifact artifacts error errors mistake mistakes flaw flaws distortion distortions "
    "blur noise issue issues problem problems"
)
_POS = _set(
    "better best stronger superior preferred preferable win wins outperforms outperform clean cleaner cleanly "
    "sharp sharper clear clearer clearly correct correctly exact exactly accurate accurately faithful faithfully "
    "fully succeeds succeed preserves preserved preserving legible coherent natural realistic precise precisely "
    "perfect perfectly well good excellent matches follows satisfies satisfied complete completely consistent"
)
_NEG = _set(
    "worse worst weaker inferior less fail fails failed failing miss misses missing missed lack lacks lacking "
    "wrong wrongly incorrect incorrectly garbled artefact artefacts artifact artifacts poor poorly broken "
    "unnatural illegible unrequested absent error errors mistake mistakes flaw flaws noisy noise severe cut "
    "implausible lost replaced"
)
_COMPARATIVE = _set("than compared versus vs over")
_NEG_STEMS = ("misspel", "blur", "distort", "ignor", "omit", "violat", "overlap", "deviat")
_WORDS = re.compile(r"[A-Za-z]+(?:'s)?|[.;!?]")


def _clauses(text: str) -> Iterator[tuple[list[str], int]]:
    """(sides named, polarity) per clause of ``text``; polarity = praise minus fault words.

    A side is named by "Image A" (any of the nouns above) or "A's"; "no/without/free of
    <fault>" counts as praise; clauses end at . ; ! ? and at but/while/whereas/however,
    and where a second side is named without a comparison ("than", "compared", "versus").
    """
    sides: list[str] = []
    pol = 0
    negated = 0  # tokens left in which a fault noun is praise ("no visible artefacts")
    comparative = False
    prev = ""
    for tok in _WORDS.findall(text or ""):
        low = tok.lower()
        if tok in (".", ";", "!", "?") or tok[0] in ".;!?" or low in _BREAKS:
            yield sides, pol
            sides, pol, negated, comparative, prev = [], 0, 0, False, ""
            continue
        side = tok[0] if tok in ("A's", "B's") else tok if tok in ("A", "B") and prev in _NOUNS else None
        if side is not None:
            if sides and side not in sides and not comparative:
                yield sides, pol  # "A's text is misspelt and B's is garbled": two clauses
                sides, pol, negated = [], 0, 0
            if side not in sides:
                sides.append(side)
        elif low in _COMPARATIVE:
            comparative = True
        elif low in _NEGATORS:
            negated = 3
        elif negated and low in _FAULT_NOUNS:
            pol += 1
            negated = 0
        elif low in _POS:
            pol += 1
        elif low in _NEG or low.startswith(_NEG_STEMS):
            pol -= 1
        negated = max(0, negated - 1)
        prev = low
    yield sides, pol


def _polarity(text: str) -> int:
    return sum(pol for _, pol in _clauses(text))


def implied_winner(text: str) -> str | None:
    """The side ("A"/"B") a pairwise justification favours, by the clause heuristic; None when it doesn't say."""
    net = {"A": 0, "B": 0}
    for sides, pol in _clauses(text):
        if not sides or pol == 0:
            continue
        sign = 1 if pol > 0 else -1
        net[sides[0]] += sign
        if len(sides) == 2:
            net[sides[1]] -= sign
    if net["A"] == net["B"]:
        return None
    return "A" if net["A"] > net["B"] else "B"


def implied_level(text: str) -> str | None:
    """Whether a pointwise justification reads "high" or "low" by its justification's polarity; None when neutral."""
    pol = _polarity(text or "")
    if pol == 0:
        return None
    return "high" if pol > 0 else "low"


def _winner(a: float | None, b: float | None) -> str | None:
    if a is None or b is None:
        return None
    return "A" if a > b else "B" if b > a else "tie"


def rationale_agreement(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement between what justifications imply and what the scores say (see the module docstring)."""
    text_agree = text_n = text_vs_tie = 0
    stated_agree = stated_n = 0
    pref_agree = pref_n = 0
    mid = (SCORE_MIN + SCORE_MAX) / 2
    by_dim: dict[str, list[int]] = {}
    for rec in records:
        task = rec.get("task", "t2i")
        for slot, c in critiques([rec]):
            if c.get("parse_status") == "failed":
                continue
            just = c.get("justifications") or {}
            if slot in ("a", "b"):
                scores = c.get("scores") or {}
                for key, text in just.items():
                    level = implied_level(text)
                    v = scores.get(key)
                    if level is None or v is None or v == mid:
                        continue
                    ok = (level == "high") == (v > mid)
                    text_n += 1
                    text_agree += ok
                    by_dim.setdefault(key, [0, 0])
                    by_dim[key][0] += ok
                    by_dim[key][1] += 1
                continue
            sa, sb = c.get("scores_a") or {}, c.get("scores_b") or {}
            for key, text in just.items():
                w = _winner(sa.get(key), sb.get(key))
                implied = implied_winner(text)
                if implied is not None and w is not None:
                    if w == "tie":
                        text_vs_tie += 1
                    else:
                        text_n += 1
                        text_agree += implied == w
                        by_dim.setdefault(key, [0, 0])
                        by_dim[key][0] += implied == w
                        by_dim[key][1] += 1
                stated = (c.get("winners") or {}).get(key)
                if stated in ("A", "B") and w in ("A", "B"):
                    stated_n += 1
                    stated_agree += stated == w
            pref = c.get("preference")
            w = _winner(side_score(sa, task, None), side_score(sb, task, None))
            if pref in ("A", "B", "tie") and w is not None:
                pref_n += 1
                pref_agree += pref == w

    def rate(a: int, n: int) -> float | None:
        return a / n if n else None

    return {
        "text_vs_scores": {"agree": text_agree, "n": text_n, "rate": rate(text_agree, text_n)},
        "text_sided_scores_tied": text_vs_tie,
        "by_dimension": {k: {"agree": a, "n": n, "rate": rate(a, n)} for k, (a, n) in by_dim.items()},
        "stated_winners_vs_scores": {"agree": stated_agree, "n": stated_n, "rate": rate(stated_agree, stated_n)},
        "preference_vs_scores": {"agree": pref_agree, "n": pref_n, "rate": rate(pref_agree, pref_n)},
    }


def diagnose(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "parse": parse_stats(records),
        "position_bias": position_bias(records),
        "score_histograms": score_histograms(records),
        "rationale_agreement": rationale_agreement(records),
    }
