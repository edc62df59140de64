"""The synthetic world's privileged teacher: a ``Backend`` that plays a strong teacher VLM (say Qwen3-VL-32B).

It receives only conversations. It finds the scene and generation record behind each image in
the world's registry (by content hash: PNG bytes, data URLs, paths and PIL images alike), reads
the request (and, per prompt, the label or the rationale) out of the rendered prompt text, and
writes its answer in the protocol format (``format.render_critique`` / ``render_pairwise``), so
the project's parser reads it. An image it cannot find is that item's error: it never invents
a scene.

Spec: ``synthetic-teacher[:MODE][?key=value&...]`` (options need a mode: ``synthetic-teacher:auto?seed=3``).
Modes (``auto`` detects the prompt kind):

- ``pointwise`` / ``pairwise``: critiques naming concrete, true findings, calibrated 1-4 scores
  (text rendering N/A when no text is asked for), a summary, and a refined request that restates
  the user's request with the failed constraints stated more explicitly in the world's own terms;
- ``hindsight`` (a PARROT hindsight prompt, label stated): a pairwise rationale that argues for
  the label. When the teacher's own view agrees, it reports true findings (looking harder at the
  label's loser); when it disagrees (label noise), it invents flaws (``hallucinate``), inflates
  minor ones (``inflate``), writes vague text (``vague``), or else reports honestly;
- ``consistency`` (a PARROT consistency prompt): checks the rationale's claims against the images,
  discounts what it cannot confirm, falls back on its own judgement when nothing concrete is
  left, and ends with ``Answer: A|B|tie``;
- ``generic``: every prompt kind answered by a plausible but miscalibrated generic VLM judge that
  over-penalizes blemishes, under-weights (and often misses) critical failures and takes claims at
  face value: the baseline.

Options (query string or keyword arguments): every field of ``TeacherConfig``; ``registry``
(repeatable; a ``*.world.jsonl`` file or the dataset file it sits next to; a ``Registry`` or a list
as a keyword); ``world`` (keyword only; default: ``world.default_world()``, which the ``world``
generator spec shares, so images generated in-process are found). Example::

    synthetic-teacher:hindsight?seed=3&hallucinate=0.6&registry=data/pairs.parquet

Randomness is per item: streams are keyed by the teacher seed, the request's seed, the image
hashes and the sample index (the sample index only when temperature > 0), so batching never
changes an answer and n samples differ only when sampling. What the teacher perceives of an
image (which findings it notices, their severities) does not depend on the prompt kind, so its
pointwise and pairwise critiques of one image agree. Every answer is logged in ``teacher.log``
(findings stated, which were false or inflated); ``hallucinations(text, pair)`` measures the
hallucinated claims of any rationale text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.base import Backend, Completion, GenerationConfig
from ..conversation import Conversation, ImagePart, TextPart
from ..format import render_critique, render_pairwise
from ..images import ImageError, image_hash
from ..rubric import SCORE_MAX, SCORE_MIN, dimensions_for
from ..schema import Critique, PairwiseCritique, PreferencePair, Sample
from .critic import (
    MINOR,
    Calibration,
    Claim,
    ClaimCheck,
    Seen,
    View,
    check_against,
    constraint_words,
    describe_request,
    generic_calibration,
    keyed_rng,
    mean_score,
    parse_cached,
    perceive,
    rationale_text,
    refine_request,
    round_score,
    scores_of,
    split_claims,
    teacher_calibration,
    unit,
)
from .generator import GenerationRecord
from .truth import GARISH_ABOVE, IF, PQ, TF, TR, false_findings, judge
from .world import Registry, World, default_world, registry_path

MODES = ("auto", "pointwise", "pairwise", "hindsight", "consistency", "generic")
JUDGES = ("teacher", "generic")
BEHAVIOURS = ("agree", "hallucinate", "inflate", "vague", "honest")
_OTHER = {"A": "B", "B": "A"}


class TeacherError(ValueError):
    """An item the teacher cannot answer (unknown image, unreadable prompt): that item's Completion error."""


@dataclass
class TeacherConfig:
    """How the synthetic teacher sees, scores and (in hindsight) rationalizes."""

    mode: str = "auto"  # auto | pointwise | pairwise | hindsight | consistency | generic
    judge: str = "teacher"  # teacher (privileged, calibrated) | generic (miscalibrated baseline)
    seed: int = 0
    notice: float = 0.88  # probability of noticing each true finding
    look_harder: float = 0.6  # hindsight: second chance to notice each missed finding of the label's loser
    jitter: float = 0.15  # relative standard deviation of severity estimates
    score_step: float = 0.1  # scores are written rounded to this step (0: unrounded)
    tie_margin: float = 0.1  # score points: mean scores closer than this are a tie
    vivid_gap: float = 0.08  # a score tie is broken for the more vivid image when vividness differs this much (0: off)
    hallucinate: float = 0.5  # hindsight, label disagrees with its view: invent flaws (truth.false_findings)
    inflate: float = 0.15  # ... inflate minor true flaws (invents when there are none)
    vague: float = 0.15  # ... write vague text; the remaining probability: report honestly
    suppress: float = 0.5  # rationalizing: chance of leaving each of the label winner's flaws unmentioned
    log: bool = True  # keep a record of every answer in ``SyntheticTeacher.log``

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"synthetic-teacher mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "generic":
            self.mode, self.judge = "auto", "generic"
        if self.judge not in JUDGES:
            raise ValueError(f"synthetic-teacher judge must be one of {', '.join(JUDGES)}, got {self.judge!r}")
        for name in ("notice", "look_harder", "hallucinate", "inflate", "vague", "suppress"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"synthetic-teacher {name} must be in [0, 1], got {v}")
        if self.hallucinate + self.inflate + self.vague > 1.0 + 1e-9:
            raise ValueError("synthetic-teacher hallucinate + inflate + vague must not exceed 1")
        for name in ("jitter", "score_step", "tie_margin", "vivid_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"synthetic-teacher {name} must be >= 0, got {getattr(self, name)}")


# ---------------------------------------------------------------------------
# reading the prompt

_REQUEST_RE = re.compile(r"^[ \t]*(User request|Editing instruction)[ \t]*:[ \t]*(.+?)[ \t]*$", re.M)
_IMAGE_LABEL_RE = re.compile(
    r"(source image|image a|image b|edited image|generated image|output image|output)\s*:?\s*$", re.I
)
_IMAGE_NAMES = {
    "source image": "source",
    "image a": "a",
    "image b": "b",
    "edited image": "output",
    "generated image": "output",
    "output image": "output",
    "output": "output",
}
_ANALYSIS_RE = re.compile(r"<analysis>\s*(.*?)\s*</analysis>", re.S)
_LABEL_RE = re.compile(r"concluded that (.+?)\.\s+Take this conclusion", re.S)
_LABEL_FALLBACK_RE = re.compile(r"(?:raters?|annotators?|ground truth)[^\n]*?\b(Image [AB] is better|tie)\b", re.I)


@dataclass
class Prompt:
    """What the teacher reads out of a conversation."""

    kind: str  # pointwise | pairwise | hindsight | consistency
    task: str  # t2i | edit
    request: str
    images: dict[str, Any]  # output | a, b; source for edits
    label: str | None = None
    rationale: str | None = None
    refinement: bool = False


def _label_from(statement: str) -> str | None:
    s = statement.lower()
    if "image a is better" in s:
        return "A"
    if "image b is better" in s:
        return "B"
    if "tie" in s or "equally good" in s:
        return "tie"
    return None


def read_prompt(conv: Conversation) -> Prompt:
    """The prompt kind, task, request, named images and (per kind) label or rationale of a conversation."""
    named: dict[str, Any] = {}
    unnamed: list[Any] = []
    for m in conv.messages:
        before = ""
        for p in m.parts:
            if isinstance(p, TextPart):
                before = p.text
                continue
            if isinstance(p, ImagePart):
                lab = _IMAGE_LABEL_RE.search(before[-80:])
                name = _IMAGE_NAMES[lab.group(1).lower()] if lab else None
                if name is None or name in named:
                    unnamed.append(p.image)
                else:
                    named[name] = p.image
                before = ""
    text = "\n".join(m.text for m in conv.messages)
    req = _REQUEST_RE.search(text)
    if req is None:
        raise TeacherError("no request in the prompt (expected a 'User request:' or 'Editing instruction:' line)")
    is_edit = req.group(1).lower().startswith("editing") or "source" in named
    if unnamed:  # templates that do not label their images: the conventional order
        order = (["source"] if is_edit else []) + (
            ["a", "b"] if len(unnamed) + len(named) >= 2 + is_edit else ["output"]
        )
        for name in order:
            if name not in named and unnamed:
                named[name] = unnamed.pop(0)
        if unnamed:
            raise TeacherError(f"{len(unnamed)} image(s) in the prompt that the teacher cannot place")
    analysis = _ANALYSIS_RE.search(text)
    label_m = _LABEL_RE.search(text) or _LABEL_FALLBACK_RE.search(text)
    label = _label_from(label_m.group(1)) if label_m else None
    if analysis is not None:
        kind = "consistency"
    elif "a" in named and "b" in named:
        kind = "hindsight" if label is not None else "pairwise"
    elif "output" in named:
        kind = "pointwise"
    else:
        raise TeacherError("the prompt holds no image to judge")
    return Prompt(
        kind=kind,
        task="edit" if is_edit else "t2i",
        request=req.group(2),
        images=named,
        label=label,
        rationale=analysis.group(1) if analysis else None,
        refinement="Refined Request" in text,
    )


# ---------------------------------------------------------------------------
# registries


def _load_registry(item: Any) -> Registry:
    if isinstance(item, Registry):
        return item
    if isinstance(item, World):
        return item.registry
    p = Path(item)
    if not p.name.endswith(".world.jsonl"):
        p = registry_path(p)
    return Registry.load(p)


def _registries(registry: Any) -> list[Registry]:
    if registry is None:
        return []
    if isinstance(registry, (str, Path, Registry, World)):
        return [_load_registry(registry)]
    if isinstance(registry, Iterable):
        return [_load_registry(r) for r in registry]
    raise TypeError(f"registry must be a path, a Registry or a list of them, got {type(registry).__name__}")


def find_records(image: Any, registries: Sequence[Registry]) -> tuple[str, list[GenerationRecord]]:
    """(content hash, every record drawn with exactly those pixels) over ``registries``."""
    try:
        h = image_hash(image)
    except ImageError as exc:
        raise TeacherError(f"unreadable image: {exc}") from None
    out: list[GenerationRecord] = []
    for reg in registries:
        out += [r for r in reg.get_all(h) if r not in out]
    return h, out


def record_to_judge(
    records: list[GenerationRecord], task: str, source: GenerationRecord | None = None
) -> GenerationRecord:
    """The record an output image is judged by, for a ``task`` prompt showing ``source`` (edits).

    Identical pixels are an identical drawing, so any record of them describes the picture; for an
    edit, what it is compared with is the source the prompt shows (a generation made from that
    source is preferred; an edit that changed nothing has exactly its source's pixels and is
    found as the source's own record).
    """
    if not records:
        raise ValueError("no record")
    gens = [r for r in records if r.kind == "generation" and r.task == task]
    if task == "edit":
        if source is None:
            raise TeacherError("an edit prompt needs its source image to judge the edit against")
        exact = [r for r in gens if r.source == source.scene]
        rec = exact[0] if exact else (gens[0] if gens else records[0])
        if rec.kind == "generation" and rec.task == "edit" and rec.source == source.scene:
            return rec
        return dataclasses.replace(
            rec, kind="generation", task="edit", source=source.scene, source_vividness=source.vividness
        )
    rec = gens[0] if gens else records[0]
    if rec.kind == "generation" and rec.task == task:
        return rec
    return dataclasses.replace(rec, kind="generation", task=task, source=None, source_vividness=None)


# ---------------------------------------------------------------------------
# writing

_POSITIVE = {
    TF: "everything the request asks for is there and right",
    IF: "everything that should stay is kept as it was",
    PQ: "clean and coherent, free of artefacts",
    TR: "the requested text is spelled right and legible",
}
_POSITIVE_EDIT_TF = "the requested edit is carried out as asked"
_NA_TEXT = "The request asks for no text, so this aspect does not apply"
_INFLATE_TAIL = ", a glaring defect that spoils the whole picture"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _dim_text(view: View, dim: str) -> str:
    said = [s.text for s in view.seen if s.finding.dimension == dim]
    if said:
        return "; ".join(said)
    return _POSITIVE_EDIT_TF if dim == TF and view.task == "edit" else _POSITIVE[dim]


def _analysis(view: View) -> str:
    parts = describe_request(view.request)
    what = "The instruction asks to " if view.task == "edit" else "The request asks for "
    s = what + (", ".join(parts) if parts else "nothing the world can read") + "."
    if view.request.asks_text:
        return s + " The requested word must appear exactly, so text rendering applies."
    return s + " It asks for no text, so text rendering is N/A."


def _refinement(text: str, task: str, views: Sequence[View], rng) -> tuple[str, str]:
    # what the critic states went wrong (a rationalizing critic believes its own inventions too)
    failed = [s.finding.constraint for v in views for s in v.seen if s.finding.constraint]
    refined, raised = refine_request(text, task, failed, rng)
    if raised:
        what = ", ".join(constraint_words(k) for k in raised)
        comments = (
            f"Not met: {what}. The refined request keeps every part of the original and states "
            f"{'these' if len(raised) > 1 else 'this'} more explicitly, so that a generator gets "
            f"{'them' if len(raised) > 1 else 'it'} right."
        )
    elif any(s for v in views for s in v.seen):
        comments = "The problems seen are not ones a clearer request prevents; the request can stay as it is."
    else:
        comments = "The request was followed; it can stay as it is."
    return comments, refined


def _winner(a: float | None, b: float | None) -> str | None:
    if a is None or b is None:
        return None
    return "A" if a > b + 1e-9 else "B" if b > a + 1e-9 else "tie"


# ---------------------------------------------------------------------------
# the backend


@dataclass
class _Item:
    """One prompt, resolved: records, request, hashes."""

    prompt: Prompt
    records: dict[str, GenerationRecord]
    hashes: dict[str, str]
    request: Any = None


class SyntheticTeacher(Backend):
    """The privileged teacher (or, with ``judge="generic"``, the generic judge) of the synthetic world."""

    def __init__(
        self,
        world: World | None = None,
        registry: Any = None,
        config: TeacherConfig | None = None,
        **overrides: Any,
    ):
        cfg = config or TeacherConfig()
        if overrides:
            unknown = set(overrides) - {f.name for f in dataclasses.fields(TeacherConfig)}
            if unknown:
                raise ValueError(f"unknown synthetic-teacher options: {', '.join(sorted(unknown))}")
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        self.world = world if world is not None else default_world()
        self.registries: list[Registry] = _registries(registry)
        self.calibration: Calibration = (
            generic_calibration() if cfg.judge == "generic" else teacher_calibration(cfg.notice)
        )
        self.log: list[dict[str, Any]] = []
        self._calls = 0
        name = "synthetic-teacher"
        if cfg.mode != "auto":
            name += f":{cfg.mode}"
        if cfg.judge == "generic":
            name += ":generic" if cfg.mode == "auto" else "?judge=generic"
        self.name = name

    # -- registry
    def add_registry(self, registry: Any) -> None:
        """Also look images up in ``registry`` (a path, a dataset file, a Registry or a World)."""
        self.registries.extend(_registries(registry))

    def lookup(self, image: Any) -> tuple[str, list[GenerationRecord]]:
        """(content hash, every record with those pixels) in the given registries and the world's."""
        return find_records(image, (*self.registries, self.world.registry))

    def clear_log(self) -> None:
        self.log.clear()

    # -- contract
    async def agenerate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        gen = config or GenerationConfig()
        call = self._calls
        self._calls += 1
        out: list[Completion] = []
        for i, conv in enumerate(conversations):
            try:
                item = self._resolve(conv)
                texts = [self._answer(item, j, gen, (call, i)) for j in range(gen.n)]
                out.append(Completion(texts=texts))
            except TeacherError as exc:
                out.append(Completion(error=f"synthetic-teacher: {exc}"))
            except ValueError as exc:  # the world refused (e.g. a request of the wrong task for the image)
                out.append(Completion(error=f"synthetic-teacher: {exc}"))
            if i % 16 == 15:
                await asyncio.sleep(0)
        return out

    # -- resolving a prompt
    def _resolve(self, conv: Conversation) -> _Item:
        prompt = read_prompt(conv)
        forced = self.config.mode
        if forced != "auto" and forced != prompt.kind:
            if forced == "pairwise" and prompt.kind == "hindsight":
                prompt.kind, prompt.label = "pairwise", None
            else:
                raise TeacherError(f"the teacher is set to {forced} mode but the prompt is a {prompt.kind} prompt")
        found = {}
        for name, img in prompt.images.items():
            h, recs = self.lookup(img)
            if not recs:
                raise TeacherError(
                    f"image {name!r} (hash {h}) is not in the world's registry; load the registry of its dataset "
                    "(registry=PATH)"
                )
            found[name] = (h, recs)
        source = found["source"][1][0] if "source" in found else None
        records = {
            n: (r[0] if n == "source" else record_to_judge(r, prompt.task, source)) for n, (_, r) in found.items()
        }
        hashes = {n: h for n, (h, _) in found.items()}
        request, _ = parse_cached(prompt.request, prompt.task)
        return _Item(prompt, records, hashes, request)

    def _key(self, gen: GenerationConfig, j: int) -> tuple:
        return (self.config.seed, gen.seed, j if gen.temperature > 0 else 0)

    def _view(self, item: _Item, name: str, base: tuple, look_harder: float = 0.0) -> View:
        key = (*base, item.hashes[name], item.prompt.request)
        return perceive(item.records[name], item.request, self.calibration, key, self.config.jitter, look_harder)

    def _answer(self, item: _Item, j: int, gen: GenerationConfig, where: tuple[int, int]) -> str:
        base = self._key(gen, j)
        kind = item.prompt.kind
        if kind == "pointwise":
            text, rec = self._pointwise(item, base)
        elif kind == "pairwise":
            text, rec = self._pairwise(item, base)
        elif kind == "hindsight":
            text, rec = self._hindsight(item, base)
        else:
            text, rec = self._consistency(item, base)
        if self.config.log:
            self.log.append(
                {
                    "call": where[0],
                    "item": where[1],
                    "sample": j,
                    "mode": kind,
                    "judge": self.config.judge,
                    "task": item.prompt.task,
                    "request": item.prompt.request,
                    "images": dict(item.hashes),
                    **rec,
                }
            )
        return text

    # -- pointwise
    def _pointwise(self, item: _Item, base: tuple) -> tuple[str, dict]:
        view = self._view(item, "output", base)
        step = self.config.score_step
        scores = scores_of(view, step)
        just = {}
        for d in dimensions_for(view.task):
            just[d.key] = _NA_TEXT + "." if scores[d.key] is None else _cap(_dim_text(view, d.key)) + "."
        n = len(view.seen)
        if n == 0:
            summary = "A faithful, clean result: I see nothing to fault."
        else:
            worst = min(
                (d for d in dimensions_for(view.task) if scores[d.key] is not None), key=lambda d: scores[d.key]
            )
            summary = f"Overall {n} problem{'s' if n > 1 else ''}, the most serious in {worst.title.lower()}."
        comments, refined = _refinement(
            item.prompt.request, view.task, [view], keyed_rng(*base, "refine", item.hashes["output"])
        )
        c = Critique(
            task=view.task,
            request_analysis=_analysis(view),
            scores=scores,
            justifications=just,
            na=[k for k, v in scores.items() if v is None],
            summary=summary,
            refinement_comments=comments,
            refined_request=refined,
        )
        rec = {
            "stated": {"output": [s.to_dict() for s in view.seen]},
            "missed": {"output": [f.kind for f in view.missed]},
            "false": [],
            "inflated": [],
            "scores": scores,
            "refined_request": refined,
        }
        return render_critique(c), rec

    # -- pairwise pieces
    def _preference(self, va: View, vb: View, sa: dict, sb: dict, vivid: bool = True) -> tuple[str, str]:
        """(A | B | tie, basis) from the mean scores; a score tie broken by visibly richer colours."""
        ma, mb = mean_score(sa), mean_score(sb)
        d = (ma or 0.0) - (mb or 0.0)
        if abs(d) > self.config.tie_margin:
            return ("A" if d > 0 else "B"), "scores"
        gap = self.config.vivid_gap
        if vivid and gap > 0 and abs(va.vividness - vb.vividness) >= gap:
            hi, lo = ("A", "B") if va.vividness > vb.vividness else ("B", "A")
            garish = max(va.vividness, vb.vividness) > GARISH_ABOVE
            return (lo if garish else hi), "vividness"
        return "tie", "scores"

    def _force(self, sa: dict, sb: dict, label: str) -> tuple[dict, dict]:
        """Scores adjusted (as little as it takes) so that their means imply ``label``."""
        sa, sb = dict(sa), dict(sb)
        margin = self.config.tie_margin
        step = max(self.config.score_step, 0.25)
        if label == "tie":
            ma, mb = mean_score(sa), mean_score(sb)
            if ma is not None and mb is not None and abs(ma - mb) > margin:
                for k in sa:
                    if sa[k] is not None and sb.get(k) is not None:
                        sa[k] = sb[k] = round_score((sa[k] + sb[k]) / 2, self.config.score_step)
            return sa, sb
        win, lose = (sa, sb) if label == "A" else (sb, sa)
        for _ in range(64):
            mw, ml = mean_score(win), mean_score(lose)
            if mw is None or ml is None or mw - ml > margin + 0.05:
                break
            keys = [k for k, v in lose.items() if v is not None and v > SCORE_MIN]
            if keys:
                k = max(keys, key=lambda k: lose[k])
                lose[k] = round_score(lose[k] - step, self.config.score_step)
                continue
            keys = [k for k, v in win.items() if v is not None and v < SCORE_MAX]
            if not keys:
                break
            k = min(keys, key=lambda k: win[k])
            win[k] = round_score(win[k] + step, self.config.score_step)
        return sa, sb

    def _pairwise_critique(
        self,
        va: View,
        vb: View,
        sa: dict,
        sb: dict,
        preference: str,
        basis: str,
        item: _Item,
        base: tuple,
        vague: bool = False,
    ) -> PairwiseCritique:
        just, winners = {}, {}
        for d in dimensions_for(va.task):
            if sa[d.key] is None and sb[d.key] is None:
                just[d.key] = _NA_TEXT + " to either image."
                winners[d.key] = None
                continue
            winners[d.key] = _winner(sa[d.key], sb[d.key])
            if vague:
                if preference == "tie":
                    just[d.key] = "Both images handle this aspect comparably."
                else:
                    other = _OTHER[preference]
                    just[d.key] = (
                        f"Image {preference} handles this aspect more convincingly. Image {other} is less convincing "
                        "here, with a weaker overall impression."
                    )
            else:
                just[d.key] = f"Image A: {_dim_text(va, d.key)}. Image B: {_dim_text(vb, d.key)}."
        if preference == "tie":
            summary = "The two images are about equally good overall."
        elif basis == "vividness":
            summary = (
                f"Both meet the request about equally well, and Image {preference}'s colours are richer and more "
                "pleasing."
            )
        elif vague:
            summary = f"Image {preference} is the more convincing image overall."
        else:
            summary = (
                f"Image {preference} is preferred overall: its problems are fewer and less serious than Image "
                f"{_OTHER[preference]}'s."
            )
        comments = refined = None
        if item.prompt.refinement:
            comments, refined = _refinement(
                item.prompt.request, va.task, [va, vb], keyed_rng(*base, "refine", item.hashes["a"], item.hashes["b"])
            )
        return PairwiseCritique(
            task=va.task,
            request_analysis=_analysis(va),
            scores_a=sa,
            scores_b=sb,
            justifications=just,
            winners=winners,
            na=[k for k in sa if sa[k] is None and sb[k] is None],
            summary=summary,
            preference=preference,
            refinement_comments=comments,
            refined_request=refined,
        )

    def _pair_record(self, va: View, vb: View, sa: dict, sb: dict, preference: str) -> dict[str, Any]:
        return {
            "stated": {"A": [s.to_dict() for s in va.seen], "B": [s.to_dict() for s in vb.seen]},
            "missed": {"A": [f.kind for f in va.missed], "B": [f.kind for f in vb.missed]},
            "false": [{"image": n, **s.to_dict()} for n, v in (("A", va), ("B", vb)) for s in v.seen if s.false],
            "inflated": [{"image": n, **s.to_dict()} for n, v in (("A", va), ("B", vb)) for s in v.seen if s.inflated],
            "scores_a": sa,
            "scores_b": sb,
            "preference": preference,
        }

    # -- pairwise
    def _pairwise(self, item: _Item, base: tuple) -> tuple[str, dict]:
        va, vb = self._view(item, "a", base), self._view(item, "b", base)
        step = self.config.score_step
        sa, sb = scores_of(va, step), scores_of(vb, step)
        pref, basis = self._preference(va, vb, sa, sb)
        c = self._pairwise_critique(va, vb, sa, sb, pref, basis, item, base)
        return render_pairwise(c), self._pair_record(va, vb, sa, sb, pref)

    # -- hindsight
    def _hindsight(self, item: _Item, base: tuple) -> tuple[str, dict]:
        cfg = self.config
        label = item.prompt.label
        assert label is not None
        harder = cfg.look_harder
        va = self._view(item, "a", base, harder if label == "B" else 0.0)
        vb = self._view(item, "b", base, harder if label == "A" else 0.0)
        step = cfg.score_step
        sa, sb = scores_of(va, step), scores_of(vb, step)
        own, basis = self._preference(va, vb, sa, sb)
        by_scores, _ = self._preference(va, vb, sa, sb, vivid=False)
        agrees = own == label or (label == "tie" and by_scores == "tie")
        pair_key = (*base, "hindsight", item.hashes["a"], item.hashes["b"], label)
        vague = False
        if agrees:
            behaviour = "agree"
            pref = label
            basis = basis if own == label else "scores"
        else:
            u = unit(*pair_key, "behaviour")
            if u < cfg.hallucinate:
                behaviour = "hallucinate"
            elif u < cfg.hallucinate + cfg.inflate:
                behaviour = "inflate"
            elif u < cfg.hallucinate + cfg.inflate + cfg.vague:
                behaviour = "vague"
            else:
                behaviour = "honest"
            pref = label
            if behaviour in ("hallucinate", "inflate"):
                va, vb = va.copy(), vb.copy()
                behaviour = self._rationalize(item, va, vb, label, behaviour, pair_key)
                sa, sb = scores_of(va, step), scores_of(vb, step)
                basis = "scores"
            elif behaviour == "vague":
                vague = True
                basis = "scores"
            else:
                pref = own
        if behaviour != "honest":
            sa, sb = self._force(sa, sb, label)
        c = self._pairwise_critique(va, vb, sa, sb, pref, basis, item, base, vague=vague)
        rec = self._pair_record(va, vb, sa, sb, pref)
        rec.update(label=label, own_preference=own, behaviour=behaviour, vague=vague)
        if vague:
            rec["stated"] = {"A": [], "B": []}
        return render_pairwise(c), rec

    def _rationalize(self, item: _Item, va: View, vb: View, label: str, behaviour: str, key: tuple) -> str:
        """Make the stated findings argue for ``label``: inflate the target's minor flaws or invent some.

        Returns the behaviour that was carried out ("inflate" falls back to "hallucinate" when
        there is nothing minor to inflate). The label winner's flaws are each left unmentioned
        with probability ``suppress``.
        """
        cfg = self.config
        step = cfg.score_step
        views = {"A": va, "B": vb}
        if label == "tie":
            sa, sb = scores_of(va, step), scores_of(vb, step)
            target = "A" if (mean_score(sa) or 0) >= (mean_score(sb) or 0) else "B"
            winner = None
        else:
            target, winner = _OTHER[label], label
        if winner is not None:
            w = views[winner]
            w.seen = [s for s in w.seen if unit(*key, "suppress", repr(s.finding.key)) >= cfg.suppress]
        tv = views[target]
        if behaviour == "inflate":
            minor = [s for s in tv.seen if s.finding.kind in MINOR or s.finding.severity < 1.0]
            if minor:
                for s in minor:
                    s.severity *= 3.0
                    s.text = s.text + _INFLATE_TAIL
                    s.inflated = True
                return "inflate"
            behaviour = "hallucinate"
        rng = keyed_rng(*key, "invent")
        cands = false_findings(tv.record, n=4, rng=rng, request=item.request)
        if not cands:
            return "vague-fallback"
        sev = self.calibration.severity_of
        for f in cands:
            s = Seen(
                f, sev(f.kind) * f.magnitude * max(0.3, 1 + cfg.jitter * rng.gauss(0, 1)), f.description, false=True
            )
            tv.seen.append(s)
            sa, sb = scores_of(va, step), scores_of(vb, step)
            d = (mean_score(sa) or 0) - (mean_score(sb) or 0)
            if label == "tie" and abs(d) <= cfg.tie_margin + 0.2:
                break
            if label == "A" and d > cfg.tie_margin:
                break
            if label == "B" and -d > cfg.tie_margin:
                break
        return "hallucinate"

    # -- consistency
    def _consistency(self, item: _Item, base: tuple) -> tuple[str, dict]:
        cfg = self.config
        prompt = item.prompt
        text = rationale_text(prompt.rationale or "", pairwise=True, task=prompt.task)
        truths = {"A": judge(item.records["a"], item.request), "B": judge(item.records["b"], item.request)}
        check: ClaimCheck = check_against(split_claims(text, ("A", "B")), truths)
        n_dims = sum(1 for d in dimensions_for(prompt.task) if d.key != TR or item.request.asks_text)
        sev = self.calibration.severity_of
        if self.config.judge == "generic":
            evidence = check.claims  # taken at face value
        else:
            evidence = check.supported
        loss = {"A": 0.0, "B": 0.0}
        counted: set = set()
        for c in evidence:
            k = (c.image, repr(c.finding.key) if c.finding is not None else c.text)
            if k in counted:
                continue
            counted.add(k)
            loss[c.image] += sev(c.kind) * (c.finding.magnitude if c.finding is not None else 1.0)
        d = (loss["B"] - loss["A"]) / max(1, n_dims)
        if evidence and abs(d) > cfg.tie_margin:
            answer, basis = ("A" if d > 0 else "B"), "claims"
        else:
            va, vb = self._view(item, "a", base), self._view(item, "b", base)
            answer, _ = self._preference(va, vb, scores_of(va, cfg.score_step), scores_of(vb, cfg.score_step))
            basis = "own"
        n, k_ok = len(check.claims), len(check.supported)
        lines = []
        if n == 0:
            lines.append("The analysis names no concrete defect I can check, so I judge the images myself.")
        else:
            s = f"The analysis makes {n} concrete claim{'s' if n > 1 else ''} about the images"
            if self.config.judge == "generic":
                lines.append(s + "; I take them as stated.")
            else:
                held = f"{k_ok} of them {'holds' if k_ok == 1 else 'hold'}"
                not_held = f"{n - k_ok} {'does' if n - k_ok == 1 else 'do'} not"
                lines.append(s + f"; {held} when I look at the images, {not_held}.")
                if basis == "own":
                    lines.append("What holds does not settle the comparison, so I judge the images myself.")
                else:
                    lines.append("Weighing what holds, the comparison is clear.")
        lines.append(f"Answer: {answer}")
        rec = {
            "prediction": answer,
            "basis": basis,
            "claims": [c.to_dict() for c in check.claims],
            "supported": k_ok,
            "unsupported": len(check.unsupported),
            "false": [],
            "inflated": [],
        }
        return "\n".join(lines), rec


# ---------------------------------------------------------------------------
# hallucination measurement


def _images_of(pair_or_images: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """(named images, request, task) from a pair, a sample, a dict, a list of two, or one image."""
    if isinstance(pair_or_images, PreferencePair):
        p = pair_or_images
        return {"A": p.image_a, "B": p.image_b}, p.request, p.task.value
    if isinstance(pair_or_images, Sample):
        s = pair_or_images
        return {"output": s.image}, s.request, s.task.value
    if isinstance(pair_or_images, dict):
        keys = {str(k).upper() if str(k).lower() in ("a", "b") else str(k) for k in pair_or_images}
        if not (keys <= {"A", "B"} or keys == {"output"}):
            raise ValueError("images must be named A and B, or output")
        return (
            {(str(k).upper() if str(k).lower() in ("a", "b") else k): v for k, v in pair_or_images.items()},
            None,
            None,
        )
    if isinstance(pair_or_images, (list, tuple)):
        if len(pair_or_images) == 2:
            return {"A": pair_or_images[0], "B": pair_or_images[1]}, None, None
        if len(pair_or_images) == 1:
            return {"output": pair_or_images[0]}, None, None
        raise ValueError(f"give one image or two (A, B), got {len(pair_or_images)}")
    return {"output": pair_or_images}, None, None


def check_claims(
    text: str,
    pair_or_images: Any,
    request: str | None = None,
    task: str | None = None,
    registry: Any = None,
    world: World | None = None,
    source: Any = None,
) -> list[Claim]:
    """Every defect claim of a rationale (protocol text or free text), marked supported or not by the truth.

    ``pair_or_images``: a ``PreferencePair`` or ``Sample`` (request and task from it), or images
    (``{"A": .., "B": ..}``, ``[a, b]``, or one image) with ``request`` given. Images are looked up in
    ``registry`` (paths, Registry objects) and the world's registry (default: ``default_world()``);
    an unknown image raises ``ValueError``. ``source``: the source image of an edit, when not in a pair.
    """
    images, req_text, t = _images_of(pair_or_images)
    req_text = request if request is not None else req_text
    if req_text is None:
        raise ValueError("the request is needed to check claims (pass request=...)")
    regs = [*_registries(registry), (world or default_world()).registry]
    found: dict[str, list[GenerationRecord]] = {}
    for name, img in images.items():
        h, recs = find_records(img, regs)
        if not recs:
            raise ValueError(f"image {name} (hash {h}) is not in any given world registry")
        found[name] = recs
    if source is None and isinstance(pair_or_images, (PreferencePair, Sample)):
        source = pair_or_images.source
    src = None
    if source is not None:
        h, recs = find_records(source, regs)
        if not recs:
            raise ValueError(f"source image (hash {h}) is not in any given world registry")
        src = recs[0]
    task = task or t or ("edit" if src is not None else "t2i")
    records = {name: record_to_judge(recs, task, src) for name, recs in found.items()}
    req, _ = parse_cached(req_text, task)
    truths = {name: judge(rec, req) for name, rec in records.items()}
    pairwise = "A" in images
    body = rationale_text(text, pairwise=pairwise, task=task)
    claims = split_claims(body, ("A", "B") if pairwise else ("output",))
    return check_against(claims, truths).claims


def hallucinations(
    text: str,
    pair_or_images: Any,
    request: str | None = None,
    task: str | None = None,
    registry: Any = None,
    world: World | None = None,
    source: Any = None,
) -> list[Claim]:
    """The claims of a rationale that are NOT true of the images (see ``check_claims`` for the arguments).

    A claim is a clause of the justifications or summary naming a defect of Image A / Image B (or
    of the single output); it is true when a true finding of that image names the same things in
    the world's vocabulary. ``len(hallucinations(...)) / len(check_claims(...))`` is the rationale's
    hallucination rate.
    """
    return [c for c in check_claims(text, pair_or_images, request, task, registry, world, source) if not c.supported]


# ---------------------------------------------------------------------------
# spec


def _typed(name: str, value: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(TeacherConfig)}.get(name)
    if f is None:
        known = ", ".join(["registry", *(x.name for x in dataclasses.fields(TeacherConfig))])
        raise ValueError(f"unknown synthetic-teacher option {name!r} (known: {known})")
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    try:
        if kind == "bool":
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return value.lower() in ("1", "true", "yes")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise ValueError(f"synthetic-teacher option {name}={value!r} is not a valid {kind}") from None
    return value


def from_spec(rest: str = "", **kwargs: Any) -> SyntheticTeacher:
    """``synthetic-teacher[:MODE][?key=value&...]`` (see the module docs); keyword arguments win over the spec."""
    mode, _, query = (rest or "").partition("?")
    opts: dict[str, Any] = {}
    registries: list[Any] = []
    if mode.strip():
        opts["mode"] = mode.strip()
    for part in filter(None, query.split("&")):
        k, sep, v = part.partition("=")
        if not sep:
            raise ValueError(f"synthetic-teacher option {part!r} must be key=value")
        k, v = k.strip(), v.strip()
        if k == "registry":
            registries.extend(x for x in v.split(",") if x)
        else:
            opts[k] = _typed(k, v)
    world = kwargs.pop("world", None)
    config = kwargs.pop("config", None)
    extra = kwargs.pop("registry", None)
    if extra is not None:
        registries.extend(_registries(extra))
    opts.update(kwargs)
    return SyntheticTeacher(world=world, registry=registries or None, config=config, **opts)


__all__ = [
    "BEHAVIOURS",
    "JUDGES",
    "MODES",
    "Prompt",
    "SyntheticTeacher",
    "TeacherConfig",
    "TeacherError",
    "check_claims",
    "from_spec",
    "hallucinations",
    "read_prompt",
]
