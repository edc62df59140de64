"""The reasoning reward model: backend + prompt template + parser, batch-first.

``RationalRewardModel`` turns samples into critiques (pointwise) and pairs into
pairwise critiques, and critiques into rewards. Lists in, lists out; the sync
methods wrap the async ones.

Per-item failures never raise: a backend error or unparsable text becomes a
critique with ``parse_status == "failed"`` (reason in ``parse_errors``) whose
reward is ``None``. An exception raised by the backend for a whole batch (its
contract says that means something systemic, such as a bug) propagates, so
resumable stages retry the batch instead of recording it as failed.

Self-consistency (``n_samples > 1``): the backend writes n critiques per sample;
scores are averaged per dimension over the samples that scored it, their
population standard deviation goes to ``Critique.spread``, and the texts
(justifications, summary, refined request, ``raw_text``) are those of the
first sample that parsed.

Both orders (``compare(..., both_orders=True)``): each pair is also judged with A
and B exchanged in the same backend batch; the swapped verdict is mapped back,
per-side scores are averaged and per-dimension winners follow the averaged
scores. Preference rule, ``on_disagreement="tie"`` (the default): when both
orders name the same preference it stands, when they disagree the result is
``"tie"`` (a verdict that flips with position carries no preference beyond the
position bias). ``on_disagreement="scores"`` instead decides a disagreement by
the averaged rewards (A or B when one is higher, tie when equal or missing).
``position_consistent`` says whether the orders agreed (None when one order
failed to parse or gave no preference). The texts are those of the original order.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .backends import Backend, Completion, GenerationConfig, load_backend, run_sync
from .rubric import DIMENSION_KEYS, aggregate, dimensions_for
from .schema import Critique, PairwiseCritique, Preference, PreferencePair, Sample

if TYPE_CHECKING:
    from .templates import PromptTemplate

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256
_SWAP: dict[Any, Any] = {"A": "B", "B": "A", "tie": "tie", None: None}


class NoRefinementError(ValueError):
    """The critique has no refined request to use."""


@dataclass
class Score:
    """What ``score`` returns per sample: the scalar reward, the per-dimension vector and the critique."""

    reward: float | None
    vector: dict[str, float | None]
    critique: Critique


class RationalRewardModel:
    """A backend, a template family and the protocol parser, composed into a reward model.

    ``backend`` is a Backend or a spec string (``transformers:PATH``, ``openai:URL``,
    ``embedded``...). ``template`` is a template name, a template file path or a
    PromptTemplate. ``weights`` (dimension key -> weight) change how ``reward``
    aggregates; without them every applicable dimension counts alike.
    ``chunk_size`` bounds how many conversations go to the backend at once.
    """

    def __init__(
        self,
        backend: Backend | str,
        template: str | Path | PromptTemplate = "request-first",
        generation: GenerationConfig | None = None,
        n_samples: int = 1,
        weights: dict[str, float] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ):
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        generation = generation or GenerationConfig()
        if generation.n not in (1, n_samples):
            raise ValueError(f"generation.n={generation.n} conflicts with n_samples={n_samples}; set n_samples instead")
        if n_samples > 1 and generation.temperature == 0:
            warnings.warn(
                "n_samples > 1 with temperature 0: the samples are likely identical; raise the temperature",
                stacklevel=2,
            )
        if weights is not None:
            unknown = sorted(set(weights) - set(DIMENSION_KEYS))
            if unknown:
                raise ValueError(f"unknown dimension(s) in weights: {unknown}; known: {', '.join(DIMENSION_KEYS)}")
            if any(w < 0 for w in weights.values()):
                raise ValueError("weights must not be negative")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.backend = load_backend(backend) if isinstance(backend, str) else backend
        self.template = _get_template(template)
        self.generation = dataclasses.replace(generation, n=1)
        self.n_samples = n_samples
        self.weights = dict(weights) if weights is not None else None
        self.chunk_size = chunk_size

    @property
    def name(self) -> str:
        """The backend's name, as recorded in output records."""
        return getattr(self.backend, "name", type(self.backend).__name__)

    def __repr__(self) -> str:
        return (
            f"RationalRewardModel(backend={self.name!r}, template={self.template.name!r}, n_samples={self.n_samples})"
        )

    # ------------------------------------------------------------------ pointwise

    async def acritique(self, samples: Sequence[Sample]) -> list[Critique]:
        """One Critique per sample, in order (async)."""
        samples = list(samples)
        config = dataclasses.replace(self.generation, n=self.n_samples)
        out: list[Critique] = []
        for start in range(0, len(samples), self.chunk_size):
            chunk = samples[start : start + self.chunk_size]
            convs, errors = [], {}
            for i, s in enumerate(chunk):
                try:
                    convs.append(self.template.pointwise(s))
                except Exception as exc:  # a bad input fails its own item only
                    errors[i] = f"input: {type(exc).__name__}: {exc}"
            completions = await self._generate(convs, config) if convs else []
            it = iter(completions)
            for i, s in enumerate(chunk):
                if i in errors:
                    out.append(self._failed_critique(s, errors[i]))
                else:
                    out.append(self._critique_from(s, next(it)))
        return out

    def critique(self, samples: Sequence[Sample]) -> list[Critique]:
        """One Critique per sample, in order."""
        return run_sync(self.acritique(samples))

    def _failed_critique(self, sample: Sample, error: str) -> Critique:
        return Critique(
            task=sample.task,
            parse_status="failed",
            parse_errors=[error],
            template=self.template.name,
            template_version=self.template.version,
            n_samples=self.n_samples,
        )

    def _critique_from(self, sample: Sample, completion: Completion) -> Critique:
        if not completion.ok:
            return self._failed_critique(sample, f"backend: {completion.error}")
        if not completion.texts:
            return self._failed_critique(sample, "backend: returned no text")
        from .parsing import parse_critique

        parsed = [parse_critique(t, task=sample.task) for t in completion.texts]
        c = parsed[0] if len(parsed) == 1 else combine_critiques(parsed)
        return c.model_copy(
            update={
                "template": self.template.name,
                "template_version": self.template.version,
                "n_samples": self.n_samples,
            }
        )

    # ------------------------------------------------------------------ pairwise

    async def acompare(
        self,
        pairs: Sequence[PreferencePair],
        both_orders: bool = False,
        on_disagreement: Literal["tie", "scores"] = "tie",
    ) -> list[PairwiseCritique]:
        """One PairwiseCritique per pair, in order (async); see the module docstring for ``both_orders``."""
        if on_disagreement not in ("tie", "scores"):
            raise ValueError(f"on_disagreement must be 'tie' or 'scores', got {on_disagreement!r}")
        pairs = list(pairs)
        config = dataclasses.replace(self.generation, n=self.n_samples)
        views = 2 if both_orders else 1
        per_chunk = max(1, self.chunk_size // views)
        out: list[PairwiseCritique] = []
        for start in range(0, len(pairs), per_chunk):
            chunk = pairs[start : start + per_chunk]
            convs, errors = [], {}
            for i, p in enumerate(chunk):
                try:
                    rendered = [self.template.pairwise(p)]
                    if both_orders:
                        rendered.append(self.template.pairwise(p.swapped()))
                except Exception as exc:
                    errors[i] = f"input: {type(exc).__name__}: {exc}"
                    continue
                convs.extend(rendered)
            completions = await self._generate(convs, config) if convs else []
            it = iter(completions)
            for i, p in enumerate(chunk):
                if i in errors:
                    out.append(self._failed_pairwise(p, errors[i]))
                    continue
                forward = self._pairwise_views(p, next(it))
                backward = [swap_pairwise(v) for v in self._pairwise_views(p, next(it))] if both_orders else None
                out.append(self._reconcile(p, forward, backward, on_disagreement))
        return out

    def compare(
        self,
        pairs: Sequence[PreferencePair],
        both_orders: bool = False,
        on_disagreement: Literal["tie", "scores"] = "tie",
    ) -> list[PairwiseCritique]:
        """One PairwiseCritique per pair, in order; ``both_orders`` also judges A and B exchanged."""
        return run_sync(self.acompare(pairs, both_orders=both_orders, on_disagreement=on_disagreement))

    def _failed_pairwise(self, pair: PreferencePair, error: str | list[str]) -> PairwiseCritique:
        return PairwiseCritique(
            task=pair.task,
            parse_status="failed",
            parse_errors=[error] if isinstance(error, str) else list(error),
            template=self.template.name,
            template_version=self.template.version,
            n_samples=self.n_samples,
        )

    def _pairwise_views(self, pair: PreferencePair, completion: Completion) -> list[PairwiseCritique]:
        if not completion.ok:
            return [self._failed_pairwise(pair, f"backend: {completion.error}")]
        if not completion.texts:
            return [self._failed_pairwise(pair, "backend: returned no text")]
        from .parsing import parse_pairwise

        return [parse_pairwise(t, task=pair.task) for t in completion.texts]

    def _reconcile(
        self,
        pair: PreferencePair,
        forward: list[PairwiseCritique],
        backward: list[PairwiseCritique] | None,
        on_disagreement: str,
    ) -> PairwiseCritique:
        fwd = combine_pairwise(forward)
        if backward is None:
            result = fwd
        else:
            bwd = combine_pairwise(backward)
            result = reconcile_orders(fwd, bwd, on_disagreement=on_disagreement)
        return result.model_copy(
            update={
                "task": pair.task,
                "template": self.template.name,
                "template_version": self.template.version,
                "n_samples": self.n_samples,
            }
        )

    # ------------------------------------------------------------------ rewards

    def reward_of(self, critique: Critique) -> float | None:
        """The scalar reward of one critique under this model's weights (None when it failed to parse)."""
        if critique.parse_status == "failed":
            return None
        if self.weights is None:
            return critique.reward
        keys = [d.key for d in dimensions_for(critique.task)]
        return aggregate(critique.scores, weights=self.weights, keys=keys)

    def score(self, samples: Sequence[Sample]) -> list[Score]:
        """Reward, per-dimension vector and critique for each sample."""
        return [Score(self.reward_of(c), c.vector(), c) for c in self.critique(samples)]

    async def ascore(self, samples: Sequence[Sample]) -> list[Score]:
        return [Score(self.reward_of(c), c.vector(), c) for c in await self.acritique(samples)]

    def reward(self, samples: Sequence[Sample]) -> list[float | None]:
        """A reward in [0, 1] per sample; None where the critique failed to parse (never a made-up number)."""
        return [s.reward for s in self.score(samples)]

    def reward_vectors(self, samples: Sequence[Sample]) -> list[dict[str, float | None]]:
        """Per-dimension 1-4 scores per sample (all four keys; None where N/A, missing or failed)."""
        return [s.vector for s in self.score(samples)]

    # ------------------------------------------------------------------ refinement

    def refine_prompt(self, sample: Sample, critique: Critique | None = None, strict: bool = False) -> str:
        """The critique's refined request (the sample is critiqued first when no critique is given).

        When the critique has no refined request (failed or partial parse), the
        original request comes back and a warning is logged on this module's
        logger; with ``strict=True`` a ``NoRefinementError`` is raised instead.
        """
        if critique is None:
            critique = self.critique([sample])[0]
        return refined_request_or_original(sample, critique, strict=strict)

    def refine_prompts(
        self, samples: Sequence[Sample], critiques: Sequence[Critique] | None = None, strict: bool = False
    ) -> list[str]:
        """``refine_prompt`` for a batch (critiquing the samples in one batch when no critiques are given)."""
        samples = list(samples)
        critiques = list(critiques) if critiques is not None else self.critique(samples)
        if len(critiques) != len(samples):
            raise ValueError(f"{len(samples)} samples but {len(critiques)} critiques")
        return [refined_request_or_original(s, c, strict=strict) for s, c in zip(samples, critiques, strict=True)]

    # ------------------------------------------------------------------ plumbing

    async def _generate(self, convs: list, config: GenerationConfig) -> list[Completion]:
        completions = await self.backend.agenerate(convs, config)
        if len(completions) != len(convs):
            raise RuntimeError(
                f"backend {self.name!r} returned {len(completions)} completions for {len(convs)} conversations"
            )
        return completions

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> RationalRewardModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _get_template(template: Any) -> PromptTemplate:
    if isinstance(template, (str, Path)):
        from .templates import get_template

        return get_template(template)
    for attr in ("name", "version", "pointwise", "pairwise"):
        if not hasattr(template, attr):
            raise TypeError(f"template must be a name, a path or a PromptTemplate; {template!r} has no {attr!r}")
    return template


def refined_request_or_original(sample: Sample, critique: Critique, strict: bool = False) -> str:
    """The refined request of ``critique``, or the sample's request with a logged warning (strict: raise)."""
    refined = (critique.refined_request or "").strip()
    if refined:
        return refined
    msg = f"critique has no refined request (parse_status={critique.parse_status!r}); keeping the original request"
    if strict:
        raise NoRefinementError(msg)
    log.warning(msg)
    return sample.request


# ---------------------------------------------------------------------- combining


def _average(
    views: Sequence[Any], task: Any, fields: tuple[str, ...]
) -> tuple[list[dict[str, float | None]], list[dict[str, float]], list[str], list[str]]:
    """Per score field (``scores``, or ``scores_a`` and ``scores_b``): the mean over ``views`` of each dimension
    and its spread (population std, where any view scored it), plus the dimensions no view scored: N/A where
    a view said N/A, else missing."""
    means: list[dict[str, float | None]] = [{} for _ in fields]
    spreads: list[dict[str, float]] = [{} for _ in fields]
    na, missing = [], []
    for d in dimensions_for(task):
        for name, mean, spread in zip(fields, means, spreads, strict=True):
            vals = [getattr(v, name)[d.key] for v in views if getattr(v, name).get(d.key) is not None]
            mean[d.key] = statistics.fmean(vals) if vals else None
            if vals:
                spread[d.key] = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        if all(mean[d.key] is None for mean in means):
            (na if any(d.key in v.na for v in views) else missing).append(d.key)
    return means, spreads, na, missing


def _none_parsed(views: list[Any], errors: list[str]) -> Any:
    return views[0].model_copy(
        update={"parse_errors": errors + [f"none of {len(views)} samples parsed"], "n_samples": len(views)}
    )


def _status(n_views: int, parsed: list, missing: list[str]) -> str:
    if not parsed:
        return "failed"
    if len(parsed) == n_views and all(c.parse_status == "ok" for c in parsed) and not missing:
        return "ok"
    return "partial"


def _sample_errors(views: Sequence[Any]) -> list[str]:
    if len(views) == 1:
        return list(views[0].parse_errors)
    return [f"sample {i + 1}: {e}" for i, v in enumerate(views) for e in v.parse_errors]


def combine_critiques(critiques: Sequence[Critique]) -> Critique:
    """Self-consistency over n critiques of one sample (see the module docstring)."""
    critiques = list(critiques)
    if len(critiques) == 1:
        return critiques[0]
    parsed = [c for c in critiques if c.parse_status != "failed"]
    errors = _sample_errors(critiques)
    if not parsed:
        return _none_parsed(critiques, errors)
    (scores,), (spread,), na, missing = _average(parsed, parsed[0].task, ("scores",))
    return parsed[0].model_copy(
        update={
            "scores": scores,
            "spread": spread,
            "na": na,
            "missing": missing,
            "clamped": sorted({k for c in parsed for k in c.clamped}),
            "parse_status": _status(len(critiques), parsed, missing),
            "parse_errors": errors,
            "n_samples": len(critiques),
        }
    )


def swap_pairwise(c: PairwiseCritique) -> PairwiseCritique:
    """A verdict on the swapped pair, expressed for the original order (A and B exchanged back)."""
    return c.model_copy(
        update={
            "scores_a": dict(c.scores_b),
            "scores_b": dict(c.scores_a),
            "winners": {k: _SWAP.get(v) for k, v in c.winners.items()},
            "preference": _SWAP.get(c.preference),
        }
    )


def _winner(a: float | None, b: float | None) -> Preference | None:
    if a is None or b is None:
        return None
    return "A" if a > b else "B" if b > a else "tie"


def _average_sides(parsed: list[PairwiseCritique], task: Any) -> tuple[dict, dict, list[str], list[str]]:
    (scores_a, scores_b), _, na, missing = _average(parsed, task, ("scores_a", "scores_b"))
    return scores_a, scores_b, na, missing


def _majority(prefs: list[Preference | None]) -> Preference | None:
    votes = [p for p in prefs if p is not None]
    if not votes:
        return None
    counts = {p: votes.count(p) for p in ("A", "B", "tie")}
    best = max(counts.values())
    winners = [p for p, n in counts.items() if n == best]
    return winners[0] if len(winners) == 1 else "tie"


def combine_pairwise(views: Sequence[PairwiseCritique]) -> PairwiseCritique:
    """Self-consistency over n pairwise verdicts in one order: averaged scores, majority preference (tie on a draw)."""
    views = list(views)
    if len(views) == 1:
        return views[0]
    parsed = [v for v in views if v.parse_status != "failed"]
    errors = _sample_errors(views)
    if not parsed:
        return _none_parsed(views, errors)
    scores_a, scores_b, na, missing = _average_sides(parsed, parsed[0].task)
    return parsed[0].model_copy(
        update={
            "scores_a": scores_a,
            "scores_b": scores_b,
            "winners": {k: _winner(scores_a[k], scores_b[k]) for k in scores_a},
            "preference": _majority([v.preference for v in parsed]),
            "na": na,
            "missing": missing,
            "clamped": sorted({k for v in parsed for k in v.clamped}),
            "parse_status": _status(len(views), parsed, missing),
            "parse_errors": errors,
            "n_samples": len(views),
        }
    )


def reconcile_orders(
    forward: PairwiseCritique, backward: PairwiseCritique, on_disagreement: str = "tie"
) -> PairwiseCritique:
    """Merge the original-order verdict with the swapped-order verdict (already mapped back to A/B)."""
    fwd_ok = forward.parse_status != "failed"
    bwd_ok = backward.parse_status != "failed"
    errors = [f"original order: {e}" for e in forward.parse_errors]
    errors += [f"swapped order: {e}" for e in backward.parse_errors]
    if not fwd_ok and not bwd_ok:
        return forward.model_copy(update={"parse_errors": errors, "position_consistent": None})
    if not (fwd_ok and bwd_ok):
        only = forward if fwd_ok else backward
        note = [] if fwd_ok else ["texts are from the swapped order (its 'A' is this pair's B)"]
        return only.model_copy(
            update={"parse_status": "partial", "parse_errors": errors + note, "position_consistent": None}
        )
    scores_a, scores_b, na, missing = _average_sides([forward, backward], forward.task)
    if forward.preference is None or backward.preference is None:
        consistent = None
        preference = forward.preference or backward.preference
    else:
        consistent = forward.preference == backward.preference
        preference = forward.preference
    merged = forward.model_copy(
        update={
            "scores_a": scores_a,
            "scores_b": scores_b,
            "winners": {k: _winner(scores_a[k], scores_b[k]) for k in scores_a},
            "na": na,
            "missing": missing,
            "clamped": sorted(set(forward.clamped) | set(backward.clamped)),
            "parse_status": "ok" if forward.parse_ok and backward.parse_ok and not missing else "partial",
            "parse_errors": errors,
            "position_consistent": consistent,
        }
    )
    if consistent is False:
        if on_disagreement == "tie":
            preference = "tie"
        else:
            preference = _winner(merged.reward_a, merged.reward_b) or "tie"
    return merged.model_copy(update={"preference": preference})
