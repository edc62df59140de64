"""Generate-Critique-Refine (GCR): generate, critique, rewrite the request from the critique, regenerate; keep the best.

One round = ``candidates`` images from the round's request, each critiqued against the user's
*original* request (the critic always judges what the user asked for, never a rewrite of it).
After each round the loop stops when one of these holds, checked in this order:

``threshold``  the best reward so far is >= ``policy.threshold`` (reward in [0, 1]);
``floor``      every applicable dimension of the best candidate has a score >= ``policy.dimension_floor``
               (N/A dimensions are skipped; a missing score fails the floor);
``patience``   the best reward has not improved by more than ``min_delta`` for ``patience`` rounds;
``budget``     the item has used ``generator_budget`` generator calls (one call = one image);
``rounds``     ``rounds`` rounds are done.

Otherwise the next request is the critique's refined request (plus its refinement comments when
``append_comments``), taken from the best candidate of the round (``refine_from="round"``) or the
best so far (``"best"``). With ``keep_constraints`` the refined request is checked against the
original (``constraints.missing_constraints``); if it dropped something, or the critique has no
refined request, the loop falls back to the original request plus the refinement comments
(``fallback="original+comments"``) or to the previous request (``"previous"``). Every round
records where its request came from (``request_source``) and what was missing.

Parse failures: a critique that failed to parse has reward None. It never counts as a score: it
is never the best candidate unless no candidate of the item parsed at all (then the first image
is kept as the output, with ``best_reward`` None, so a benchmark still gets an image), it never
triggers or resets a stop rule, and ``parse_failures`` counts it. A round with no parsed critique
keeps the previous request.

Seeds: ``seed_mode="new"`` gives image ``j`` of an item (in generation order) seed ``seed + j``, so
single-shot, best-of-N and GCR runs with the same ``seed`` share their first image;
``seed_mode="same"`` reuses seeds ``seed + k`` for candidate ``k`` in every round, so only the
request changes between rounds.

``refine_many`` runs items in lockstep: each round's generations for all active items are one
``generator.generate`` call and their critiques one ``reward_model.critique`` call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..images import image_hash, load_image
from ..rubric import Task, dimensions_for
from ..schema import Critique, Sample, stable_id
from .constraints import ConstraintCheck, missing_constraints
from .generators.base import Generator

StopReason = Literal["threshold", "floor", "patience", "budget", "rounds"]


@dataclass
class RefinePolicy:
    """How the GCR loop runs and when it stops (see the module docstring)."""

    rounds: int = 3
    candidates: int = 1
    threshold: float | None = 0.9
    dimension_floor: float | None = None
    patience: int | None = 1
    min_delta: float = 0.0
    generator_budget: int | None = None
    seed: int = 0
    seed_mode: Literal["new", "same"] = "new"
    append_comments: bool = False
    keep_constraints: bool = True
    constraint_check: ConstraintCheck = field(default_factory=ConstraintCheck)
    fallback: Literal["original+comments", "previous"] = "original+comments"
    refine_from: Literal["round", "best"] = "round"

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a reward in [0, 1], got {self.threshold}")
        if self.dimension_floor is not None and not 1.0 <= self.dimension_floor <= 4.0:
            raise ValueError(f"dimension_floor is a 1-4 score, got {self.dimension_floor}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or None for no patience rule), got {self.patience}")
        if self.generator_budget is not None and self.generator_budget < 1:
            raise ValueError(f"generator_budget must be >= 1, got {self.generator_budget}")
        if self.seed_mode not in ("new", "same"):
            raise ValueError(f"seed_mode must be 'new' or 'same', got {self.seed_mode!r}")
        if self.fallback not in ("original+comments", "previous"):
            raise ValueError(f"fallback must be 'original+comments' or 'previous', got {self.fallback!r}")
        if self.refine_from not in ("round", "best"):
            raise ValueError(f"refine_from must be 'round' or 'best', got {self.refine_from!r}")

    def settings(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RefineItem:
    """One thing to refine: a request, a source image for edits, an id and free metadata."""

    request: str
    source: Any | None = None
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        if self.id:
            return self.id
        return stable_id(self.request, image_hash(self.source) if self.source is not None else None)


class Candidate(BaseModel):
    """One generated image and its critique."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int
    seed: int
    image_path: str | None = None
    image_hash: str
    reward: float | None
    scores: dict[str, float | None] = Field(default_factory=dict)
    critique: Critique
    image: Any = Field(default=None, exclude=True, description="the PIL image, in memory only")


class Round(BaseModel):
    """One round: the request it used (and where that came from), its candidates, and what happened."""

    index: int
    request: str
    request_source: str = Field(
        description="original | refined | refined+comments | fallback:original | fallback:original+comments | "
        "fallback:previous | kept:previous"
    )
    note: str | None = None
    constraint_missing: list[str] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    best_candidate: int | None = Field(default=None, description="index of the round's best parsed candidate")
    best_reward: float | None = None
    improved: bool = False


class Trajectory(BaseModel):
    """Everything one item went through: rounds, candidates, critiques, the best result and why it stopped."""

    id: str
    request: str
    task: Task = Task.T2I
    source_path: str | None = None
    generator: str = ""
    model: str = ""
    policy: dict[str, Any] = Field(default_factory=dict)
    rounds: list[Round] = Field(default_factory=list)
    best_round: int | None = None
    best_candidate: int | None = None
    best_reward: float | None = None
    first_reward: float | None = Field(default=None, description="best reward of round 0 (the single-shot result)")
    stop_reason: str | None = None
    generator_calls: int = 0
    critic_calls: int = 0
    parse_failures: int = 0
    meta: dict[str, Any] = Field(default_factory=dict)

    def best(self) -> Candidate | None:
        if self.best_round is None or self.best_candidate is None:
            return None
        return self.rounds[self.best_round].candidates[self.best_candidate]

    @property
    def best_request(self) -> str | None:
        return self.rounds[self.best_round].request if self.best_round is not None else None

    @property
    def gain(self) -> float | None:
        if self.best_reward is None or self.first_reward is None:
            return None
        return self.best_reward - self.first_reward

    def anytime_curve(self) -> list[float | None]:
        """Best reward so far after each generator call, in generation order (None until one parsed)."""
        out: list[float | None] = []
        best: float | None = None
        for rnd in self.rounds:
            for cand in rnd.candidates:
                if cand.reward is not None and (best is None or cand.reward > best):
                    best = cand.reward
                out.append(best)
        return out


# ---------------------------------------------------------------------- the loop


def _as_item(x: Any) -> RefineItem:
    if isinstance(x, RefineItem):
        return x
    if isinstance(x, str):
        return RefineItem(request=x)
    if isinstance(x, Sample):
        return RefineItem(request=x.request, source=x.source, id=x.id, meta=dict(x.meta))
    if isinstance(x, dict) and isinstance(x.get("request"), str):
        return RefineItem(request=x["request"], source=x.get("source"), id=x.get("id"), meta=dict(x.get("meta") or {}))
    raise TypeError(f"cannot refine a {type(x).__name__}: give a request string, a Sample, a RefineItem or a dict")


def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:120] or "item"


def _reward(model: Any, critique: Critique) -> float | None:
    if critique.parse_status == "failed":
        return None
    reward_of = getattr(model, "reward_of", None)
    return reward_of(critique) if callable(reward_of) else critique.reward


def _meets_floor(critique: Critique, floor: float) -> bool:
    if critique.parse_status == "failed":
        return False
    for d in dimensions_for(critique.task):
        value = critique.scores.get(d.key)
        if value is None:
            if d.key in critique.na and d.allows_na:
                continue
            return False
        if value < floor:
            return False
    return True


def model_name(model: Any) -> str:
    name = getattr(model, "name", None)
    return name if isinstance(name, str) else type(model).__name__


class _State:
    """One item's progress through the loop."""

    def __init__(self, item: RefineItem, policy: RefinePolicy, generator: Generator, model: Any):
        self.item = item
        self.policy = policy
        self.source = load_image(item.source) if item.source is not None else None
        source_path = str(item.source) if isinstance(item.source, (str, Path)) else None
        self.traj = Trajectory(
            id=item.key(),
            request=item.request,
            task=Task.EDIT if self.source is not None else Task.T2I,
            source_path=source_path,
            generator=generator.name,
            model=model_name(model),
            policy=policy.settings(),
            meta=dict(item.meta),
        )
        self.next_request = item.request
        self.next_source_kind = "original"
        self.next_note: str | None = None
        self.next_missing: list[str] = []
        self.stale_rounds = 0
        self.done = False

    def planned(self) -> int:
        n = self.policy.candidates
        if self.policy.generator_budget is not None:
            n = min(n, self.policy.generator_budget - self.traj.generator_calls)
        return n

    def seeds(self, n: int) -> list[int]:
        base = self.policy.seed
        if self.policy.seed_mode == "same":
            return [base + k for k in range(n)]
        return [base + self.traj.generator_calls + k for k in range(n)]

    def record_round(
        self,
        request: str,
        seeds: list[int],
        images: list[Any],
        critiques: list[Critique],
        paths: list[str | None],
        model: Any,
    ) -> None:
        t = self.traj
        rnd = Round(
            index=len(t.rounds),
            request=request,
            request_source=self.next_source_kind,
            note=self.next_note,
            constraint_missing=self.next_missing,
        )
        for k, (seed, img, crit, path) in enumerate(zip(seeds, images, critiques, paths, strict=True)):
            reward = _reward(model, crit)
            if reward is None:
                t.parse_failures += 1
            rnd.candidates.append(
                Candidate(
                    index=k,
                    seed=seed,
                    image_path=path,
                    image_hash=image_hash(img),
                    reward=reward,
                    scores=dict(crit.scores),
                    critique=crit,
                    image=img,
                )
            )
        t.generator_calls += len(images)
        t.critic_calls += len(critiques)
        scored = [c for c in rnd.candidates if c.reward is not None]
        if scored:
            top = max(scored, key=lambda c: c.reward)  # max keeps the first of equals
            rnd.best_candidate, rnd.best_reward = top.index, top.reward
        previous_best = t.best_reward
        if rnd.best_reward is not None and (
            previous_best is None or rnd.best_reward > previous_best + self.policy.min_delta
        ):
            rnd.improved = True
        t.rounds.append(rnd)
        if rnd.index == 0:
            t.first_reward = rnd.best_reward
        if rnd.best_reward is not None and (t.best_reward is None or rnd.best_reward > t.best_reward):
            t.best_round, t.best_candidate, t.best_reward = rnd.index, rnd.best_candidate, rnd.best_reward
        elif t.best_round is None:
            t.best_round, t.best_candidate = 0, 0  # nothing parsed yet: the first image stands in
        self.stale_rounds = 0 if rnd.improved else self.stale_rounds + 1
        self._decide(rnd)

    def _decide(self, rnd: Round) -> None:
        p, t = self.policy, self.traj
        best = t.best()
        reason: str | None = None
        if p.threshold is not None and t.best_reward is not None and t.best_reward >= p.threshold:
            reason = "threshold"
        elif (
            p.dimension_floor is not None
            and best is not None
            and t.best_reward is not None
            and _meets_floor(best.critique, p.dimension_floor)
        ):
            reason = "floor"
        elif p.patience is not None and rnd.index > 0 and self.stale_rounds >= p.patience:
            reason = "patience"
        elif p.generator_budget is not None and t.generator_calls >= p.generator_budget:
            reason = "budget"
        elif len(t.rounds) >= p.rounds:
            reason = "rounds"
        if reason is not None:
            t.stop_reason = reason
            self.done = True
            return
        self._plan_next(rnd)

    def _plan_next(self, rnd: Round) -> None:
        p, t = self.policy, self.traj
        driver: Candidate | None = None
        if p.refine_from == "round" and rnd.best_candidate is not None:
            driver = rnd.candidates[rnd.best_candidate]
        elif t.best_reward is not None:
            driver = t.best()
        self.next_missing = []
        if driver is None:
            self.next_request, self.next_source_kind = rnd.request, "kept:previous"
            self.next_note = "no critique parsed yet"
            return
        crit = driver.critique
        refined = (crit.refined_request or "").strip()
        comments = (crit.refinement_comments or "").strip()
        if refined:
            text = f"{refined} {comments}" if (p.append_comments and comments) else refined
            kind = "refined+comments" if (p.append_comments and comments) else "refined"
            missing = missing_constraints(t.request, text, p.constraint_check) if p.keep_constraints else []
            if not missing:
                self.next_request, self.next_source_kind, self.next_note = text, kind, None
                return
            self.next_missing = missing
            note = f"refined request dropped {', '.join(missing)}: {text!r}"
        else:
            note = "critique has no refined request"
        if p.fallback == "previous":
            self.next_request, self.next_source_kind = rnd.request, "fallback:previous"
        elif comments:
            self.next_request, self.next_source_kind = f"{t.request} {comments}", "fallback:original+comments"
        else:
            self.next_request, self.next_source_kind = t.request, "fallback:original"
        self.next_note = note


def refine_many(
    items: Sequence[Any],
    generator: Generator,
    reward_model: Any,
    policy: RefinePolicy | None = None,
    image_dir: str | Path | None = None,
    path_base: str | Path | None = None,
    on_done: Callable[[Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run GCR for every item in lockstep; one trajectory per item, in order.

    ``reward_model`` is anything with ``critique(list[Sample]) -> list[Critique]`` (a
    ``RationalRewardModel``; its ``reward_of`` is used when present). With ``image_dir`` every image
    is saved as ``image_dir/<item>/r<round>_c<candidate>.png`` (and an edit's source as ``source.png``)
    as soon as it is made; paths are recorded relative to ``path_base`` (default: ``image_dir``'s parent).
    ``on_done`` is called with each trajectory as soon as its item stops (after its images are saved).
    """
    policy = policy or RefinePolicy()
    states = [_State(_as_item(x), policy, generator, reward_model) for x in items]
    seen: set[str] = set()
    for st in states:
        if st.traj.id in seen:
            raise ValueError(f"duplicate item id {st.traj.id!r}: ids must be unique within a refine_many call")
        seen.add(st.traj.id)
    img_root = Path(image_dir) if image_dir is not None else None
    base = Path(path_base) if path_base is not None else (img_root.parent if img_root is not None else None)
    if img_root is not None:
        for st in states:
            if st.source is not None:
                d = img_root / _safe_name(st.traj.id)
                d.mkdir(parents=True, exist_ok=True)
                st.source.save(d / "source.png")
                st.traj.source_path = _rel(d / "source.png", base)

    active = [st for st in states if not st.done]
    while active:
        plans = [(st, st.planned()) for st in active]
        requests: list[str] = []
        seeds: list[int] = []
        sources: list[Any] = []
        for st, n in plans:
            s = st.seeds(n)
            requests += [st.next_request] * n
            seeds += s
            sources += [st.source] * n
        images = generator.generate(requests, seeds, sources)
        samples = []
        i = 0
        for st, n in plans:
            for img in images[i : i + n]:
                samples.append(Sample(request=st.item.request, image=img, source=st.source, id=st.traj.id))
            i += n
        critiques = reward_model.critique(samples)
        if len(critiques) != len(samples):
            raise RuntimeError(f"reward model returned {len(critiques)} critiques for {len(samples)} samples")
        i = 0
        for st, n in plans:
            r = len(st.traj.rounds)
            paths: list[str | None] = [None] * n
            if img_root is not None:
                d = img_root / _safe_name(st.traj.id)
                d.mkdir(parents=True, exist_ok=True)
                for k, img in enumerate(images[i : i + n]):
                    target = d / f"r{r}_c{k}.png"
                    img.save(target)
                    paths[k] = _rel(target, base)
            st.record_round(
                st.next_request, seeds[i : i + n], images[i : i + n], critiques[i : i + n], paths, reward_model
            )
            i += n
            if st.done and on_done is not None:
                on_done(st.traj)
        active = [st for st in active if not st.done]
    return [st.traj for st in states]


def refine(
    sample_or_request: Any,
    generator: Generator,
    reward_model: Any,
    policy: RefinePolicy | None = None,
    image_dir: str | Path | None = None,
) -> Trajectory:
    """GCR for one item (a request string, a Sample, a RefineItem or a dict with ``request``)."""
    return refine_many([sample_or_request], generator, reward_model, policy, image_dir=image_dir)[0]


def _rel(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
