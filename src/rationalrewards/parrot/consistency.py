"""PARROT phase 2, predictive consistency: keep a rationale only if it lets one recover the label.

Checks, in order (``ConsistencyConfig.checks``; the first that fails names the rejection reason):

- parsing (always): a rationale whose every applicable dimension did not parse cannot be a target;
- ``leak``: the text mentions raters, a ground truth or a given answer (what the hindsight prompt
  told the teacher and forbade it to repeat);
- ``scores``: the rationale's own mean scores imply the label (means closer than ``tie_margin``
  score points imply a tie), and its explicitly written overall preference, if any, equals it;
- ``teacher``: the teacher sees the images and the rationale (``view``: never its overall preference
  line, and by default neither scores nor winners nor summary) but not the label
  (``templates/parrot-consistency.jinja``) and must end with ``Answer: A|B|tie``; with ``votes`` > 1
  the majority answer is the prediction and ``confidence`` is the share of answers equal to the label.

``best_of_k`` keeps, per pair, only the kept rationale with the highest confidence (the first on a tie).
One record per pair, with a verdict per rationale; ``FilterReport`` turns records into retention
overall, per label, per source dataset, per dimension (winner agreement with the label) and the
rejection reasons.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import Backend, GenerationConfig, run_sync
from ..conversation import Conversation
from ..format import render_pairwise
from ..parsing import parse_pairwise
from ..rubric import SCORE_MAX, SCORE_MIN, aggregate, dimensions_for
from ..schema import PairwiseCritique, Preference, PreferencePair, stable_id
from ..templates import TEMPLATE_DIR, PromptTemplate, get_template, rubric_context
from .config import ConsistencyConfig

CONSISTENCY_TEMPLATE = TEMPLATE_DIR / "parrot-consistency.jinja"
TEMPLATE_NAME = "parrot-consistency"
ANSWER_FORMAT = "Answer: A    (or: Answer: B, or: Answer: tie)"

_ANSWER_RE = re.compile(
    r"^[ \t>*_`-]*(?:final[ \t]+)?answer[ \t*_`]*:[ \t*_`]*(?:image[ \t]+)?(a|b|tie)[ \t*_`.!]*$", re.I | re.M
)
# What the hindsight prompt told the teacher, which a kept rationale must not repeat.
LEAK_RE = re.compile(
    r"\b(?:raters?|annotators?|ground[ -]truth|human (?:label|judge?ment|preference|raters?|annotators?)|"
    r"(?:the|a) (?:given|provided) (?:label|answer|conclusion|judge?ment)|(?:was|were) told|as instructed)\b",
    re.I,
)

# rejection reasons (stable strings: they are counted)
PARSE_FAILED = "parse failed"
PARSE_INCOMPLETE = "parse incomplete"
LEAK = "mentions the label"
SCORES = "scores contradict label"
STATED = "stated preference contradicts label"
TEACHER_OTHER = "teacher predicts another preference"
TEACHER_UNREADABLE = "teacher answer unreadable"
TEACHER_ERROR = "teacher error"
NOT_BEST = "not best of k"


def parse_answer(text: str) -> Preference | None:
    """The last ``Answer: A|B|tie`` line of ``text`` (``Image A`` accepted); None when there is none."""
    matches = _ANSWER_RE.findall(text or "")
    if not matches:
        return None
    v = matches[-1].lower()
    return "tie" if v == "tie" else v.upper()  # type: ignore[return-value]


def rationale_view(critique: PairwiseCritique, view: str = "justifications") -> str:
    """The rationale as the consistency prompt shows it: re-rendered without its overall preference.

    ``justifications``: request analysis and per-dimension justifications; ``text``: also the summary;
    ``full``: also scores and per-dimension winners. Never the overall preference or the refinement.
    """
    update: dict[str, Any] = {"preference": None, "refinement_comments": None, "refined_request": None}
    if view in ("justifications", "text"):
        update.update(scores_a={}, scores_b={}, winners={}, na=[])
    if view == "justifications":
        update["summary"] = None
    return render_pairwise(critique.model_copy(update=update)).strip()


def load_consistency_template(template: str | Path | None = None) -> PromptTemplate:
    return get_template(template if template is not None else CONSISTENCY_TEMPLATE)


def consistency_conversation(
    pair: PreferencePair, rationale: str, template: str | Path | PromptTemplate | None = None
) -> Conversation:
    """The label-free prompt: images, request and the rationale text; asks for a strict answer line."""
    tpl = template if isinstance(template, PromptTemplate) else load_consistency_template(template)
    context = {
        **rubric_context(pair.task, pairwise=True),
        "request": pair.request,
        "rationale": rationale,
        "answer_format": ANSWER_FORMAT,
    }
    images = {"a": pair.image_a, "b": pair.image_b}
    if pair.source is not None:
        images["source"] = pair.source
    return tpl.render(context, images)


def implied_preference(critique: PairwiseCritique, tie_margin: float) -> Preference | None:
    """A, B or tie from the mean scores over the applicable dimensions (None when either mean is missing)."""
    keys = [d.key for d in dimensions_for(critique.task)]
    ra, rb = aggregate(critique.scores_a, keys=keys), aggregate(critique.scores_b, keys=keys)
    if ra is None or rb is None:
        return None
    diff = (ra - rb) * (SCORE_MAX - SCORE_MIN)  # back to score points
    if abs(diff) <= tie_margin + 1e-9:
        return "tie"
    return "A" if diff > 0 else "B"


def stated_preference(critique: PairwiseCritique) -> Preference | None:
    """The overall preference the text writes itself (None when the parser had to derive it)."""
    if any("derived from mean scores" in e for e in critique.parse_errors):
        return None
    return critique.preference


def dimension_agreement(critique: PairwiseCritique, label: str | None) -> dict[str, bool | None]:
    """Per applicable dimension: does its winner equal the label? (None: no winner, N/A, or no label)."""
    out: dict[str, bool | None] = {}
    for d in dimensions_for(critique.task):
        w = critique.winners.get(d.key)
        out[d.key] = None if w is None or label is None else w == label
    return out


def cheap_verdict(critique: PairwiseCritique, label: str | None, config: ConsistencyConfig) -> str | None:
    """The rejection reason from parsing and the cheap checks, or None when the rationale passes them."""
    if critique.parse_status == "failed":
        return PARSE_FAILED
    if critique.parse_status != "ok":
        return PARSE_INCOMPLETE
    if "leak" in config.checks and LEAK_RE.search(critique.raw_text or ""):
        return LEAK
    if "scores" in config.checks and label is not None:
        if implied_preference(critique, config.tie_margin) != label:
            return SCORES
        stated = stated_preference(critique)
        if stated is not None and stated != label:
            return STATED
    return None


def consistency_generation(config: ConsistencyConfig) -> GenerationConfig:
    return GenerationConfig(
        n=config.votes, temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed
    )


def settings(config: ConsistencyConfig, template: PromptTemplate | None) -> dict[str, Any]:
    """Everything that changes a filter verdict (part of the record id)."""
    return {
        "checks": list(config.checks),
        "tie_margin": config.tie_margin,
        "votes": config.votes,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
        "view": config.view,
        "best_of_k": config.best_of_k,
        "template_version": template.version if template is not None and "teacher" in config.checks else None,
    }


def filter_id(hindsight_id: str, config: ConsistencyConfig, teacher: str | None, template: PromptTemplate) -> str:
    judge = teacher if "teacher" in config.checks else None
    return stable_id("filter", hindsight_id, judge, settings(config, template))


async def afilter_rationales(
    items: Sequence[tuple[dict[str, Any], PreferencePair]],
    backend: Backend | None,
    config: ConsistencyConfig,
    teacher: str | None = None,
    template: PromptTemplate | None = None,
) -> list[dict[str, Any]]:
    """One filter record per ``(hindsight_record, pair)`` (without ``id``): a verdict per rationale."""
    use_teacher = "teacher" in config.checks
    if use_teacher and backend is None:
        raise ValueError("the teacher check needs a backend (or leave 'teacher' out of checks)")
    tpl = template or load_consistency_template(config.template)
    records: list[dict[str, Any]] = []
    convs: list[Conversation] = []
    slots: list[tuple[int, int]] = []  # (record index, rationale index) of each conversation
    parsed: list[list[PairwiseCritique]] = []
    for hrec, pair in items:
        label = hrec.get("label")
        task = hrec.get("task", pair.task.value)
        rec: dict[str, Any] = {
            "hindsight_id": hrec["id"],
            "pair_key": hrec.get("pair_key", pair.key()),
            "request": hrec.get("request", pair.request),
            "task": task,
            "label": label,
            "source_dataset": hrec.get("source_dataset"),
            "mode": hrec.get("mode"),
            "teacher": hrec.get("teacher"),
            "judge": (teacher or (getattr(backend, "name", None) if backend else None)) if use_teacher else None,
            "settings": settings(config, tpl),
            "rationales": [],
            "kept": [],
            "error": None,
        }
        if hrec.get("error") and not hrec.get("samples"):
            rec["error"] = f"hindsight: {hrec['error']}"
        critiques = [parse_pairwise(s["text"], task) for s in hrec.get("samples", [])]
        parsed.append(critiques)
        for j, c in enumerate(critiques):
            reason = cheap_verdict(c, label, config)
            verdict: dict[str, Any] = {
                "index": j,
                "kept": False,
                "reason": reason,
                "implied": implied_preference(c, config.tie_margin) if c.parse_status != "failed" else None,
                "stated": stated_preference(c),
                "dimension_agreement": dimension_agreement(c, label),
                "prediction": None,
                "votes": [],
                "confidence": None,
            }
            rec["rationales"].append(verdict)
            if reason is None and use_teacher:
                try:
                    convs.append(consistency_conversation(pair, rationale_view(c, config.view), tpl))
                    slots.append((len(records), j))
                except Exception as exc:  # an unreadable image fails this item only
                    verdict["reason"] = TEACHER_ERROR
                    verdict["error"] = f"input: {type(exc).__name__}: {exc}"
        records.append(rec)

    if convs:
        assert backend is not None
        completions = await backend.agenerate(convs, consistency_generation(config))
        if len(completions) != len(convs):
            raise RuntimeError(f"teacher returned {len(completions)} completions for {len(convs)} prompts")
        for (ri, j), comp in zip(slots, completions, strict=True):
            verdict = records[ri]["rationales"][j]
            label = records[ri]["label"]
            if not comp.ok:
                verdict["reason"] = TEACHER_ERROR
                verdict["error"] = comp.error
                continue
            votes = [parse_answer(t) for t in comp.texts]
            verdict["votes"] = votes
            verdict["answers"] = [t[-300:] for t in comp.texts]
            readable = [v for v in votes if v is not None]
            if not readable:
                verdict["reason"] = TEACHER_UNREADABLE
                continue
            counts = Counter(readable).most_common()
            top = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else None
            verdict["prediction"] = top
            verdict["confidence"] = sum(v == label for v in votes) / len(votes)
            if top != label:
                verdict["reason"] = TEACHER_OTHER

    for rec, (hrec, _) in zip(records, items, strict=True):
        for v in rec["rationales"]:
            v["kept"] = v["reason"] is None
        if config.best_of_k:
            kept = [v for v in rec["rationales"] if v["kept"]]
            if len(kept) > 1:
                best = max(kept, key=lambda v: (v["confidence"] or 0.0, -v["index"]))
                for v in kept:
                    if v is not best:
                        v["kept"], v["reason"] = False, NOT_BEST
        rec["kept"] = [v["index"] for v in rec["rationales"] if v["kept"]]
        rec["kept_texts"] = [hrec["samples"][i]["text"] for i in rec["kept"]]
    return records


def filter_rationales(
    items: Sequence[tuple[dict[str, Any], PreferencePair]],
    backend: Backend | None,
    config: ConsistencyConfig,
    teacher: str | None = None,
    template: PromptTemplate | None = None,
) -> list[dict[str, Any]]:
    """Sync twin of ``afilter_rationales``."""
    return run_sync(afilter_rationales(items, backend, config, teacher, template))


def failure_reason(record: dict[str, Any]) -> str | None:
    """A filter record fails when its pair had no rationale to judge (rejections are not failures)."""
    err = record.get("error")
    return "no hindsight rationale" if err else None


# ---------------------------------------------------------------------------- report


@dataclass
class _Rate:
    n: int = 0
    kept: int = 0

    def add(self, kept: bool) -> None:
        self.n += 1
        self.kept += int(kept)

    @property
    def rate(self) -> float | None:
        return self.kept / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "kept": self.kept, "retention": self.rate}


@dataclass
class FilterReport:
    """Retention statistics over filter records (rationale level unless named otherwise)."""

    rationales: _Rate = field(default_factory=_Rate)
    pairs: _Rate = field(default_factory=_Rate)
    pairs_without_rationale: int = 0
    by_label: dict[str, _Rate] = field(default_factory=dict)
    by_source: dict[str, _Rate] = field(default_factory=dict)
    # per dimension: winner agrees with the label, among all judged rationales / among kept ones
    dim_agreement_all: dict[str, _Rate] = field(default_factory=dict)
    dim_agreement_kept: dict[str, _Rate] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> FilterReport:
        rep = cls()
        for rec in records:
            if not rec.get("rationales"):
                rep.pairs_without_rationale += 1
                rep.reasons["no hindsight rationale"] += 1
                continue
            rep.pairs.add(bool(rec.get("kept")))
            label = str(rec.get("label"))
            source = str(rec.get("source_dataset"))
            for v in rec["rationales"]:
                kept = bool(v["kept"])
                rep.rationales.add(kept)
                rep.by_label.setdefault(label, _Rate()).add(kept)
                rep.by_source.setdefault(source, _Rate()).add(kept)
                if not kept:
                    rep.reasons[v["reason"]] += 1
                for dim, agree in (v.get("dimension_agreement") or {}).items():
                    if agree is None:
                        continue
                    rep.dim_agreement_all.setdefault(dim, _Rate()).add(agree)
                    if kept:
                        rep.dim_agreement_kept.setdefault(dim, _Rate()).add(agree)
        return rep

    def to_dict(self) -> dict[str, Any]:
        return {
            "rationales": self.rationales.to_dict(),
            "pairs": self.pairs.to_dict(),
            "pairs_without_rationale": self.pairs_without_rationale,
            "by_label": {k: v.to_dict() for k, v in sorted(self.by_label.items())},
            "by_source": {k: v.to_dict() for k, v in sorted(self.by_source.items())},
            "dimension_agreement": {
                k: {
                    "all": self.dim_agreement_all[k].rate,
                    "kept": self.dim_agreement_kept[k].rate if k in self.dim_agreement_kept else None,
                }
                for k in self.dim_agreement_all
            },
            "rejected": dict(self.reasons.most_common()),
        }

    def lines(self) -> list[str]:
        def pct(r: _Rate) -> str:
            return "-" if r.rate is None else f"{100 * r.rate:.1f}% ({r.kept}/{r.n})"

        out = [
            f"retention: {pct(self.rationales)} of rationales; {pct(self.pairs)} of pairs keep at least one",
        ]
        if self.pairs_without_rationale:
            out.append(f"  pairs without any rationale: {self.pairs_without_rationale}")
        out += [f"  label {k}: {pct(v)}" for k, v in sorted(self.by_label.items())]
        out += [f"  source {k}: {pct(v)}" for k, v in sorted(self.by_source.items())]
        for k, r in self.dim_agreement_all.items():
            kept = self.dim_agreement_kept.get(k)
            kept_txt = "-" if kept is None or kept.rate is None else f"{100 * kept.rate:.1f}%"
            out.append(f"  {k}: winner agrees with label in {100 * (r.rate or 0):.1f}% (kept: {kept_txt})")
        out += [f"  rejected ({reason}): {n}" for reason, n in self.reasons.most_common()]
        return out
