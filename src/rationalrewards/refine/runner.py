"""Run GCR (or a baseline) over a benchmark prompt file into a resumable run folder.

Methods, all through the same loop so that they share seeds and accounting:

- ``gcr``        ``rounds`` rounds of ``candidates`` images, refined between rounds, at most ``budget``
                 generator calls per item (default rounds x candidates);
- ``single``     one image per item (GCR's round 0);
- ``best-of-n``  ``budget`` images from the original request (default rounds x candidates, the GCR
                 budget), the best by the reward model kept.

The run folder::

    run.json              settings (method, policy, generator, model, benchmark) and their hash
    trajectories.jsonl    one record per item and sample: {"id", "item_id", "sample", "settings_hash",
                          "method", "output", "trajectory": {...}}; keyed by item id + settings hash
    images/<item>/        r<round>_c<candidate>.png for every image, source.png for edits
    final/                the best image per item, named as the benchmark's scorer expects
                          (see ``benchfiles``)
    summary.json          the numbers of ``summarize``; report.html (see ``report``)

Resuming: a rerun with the same settings skips the items already recorded (it generates nothing
for them); a run folder made with other settings is refused. Images are written before their
record is appended, so a crash loses at most the lockstep batch in flight.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..schema import stable_id
from ..stage import StageSummary, run_stage
from ..store import JsonlStore
from .benchfiles import BenchItem, read_bench
from .generators.base import Generator, load_generator
from .loop import RefineItem, RefinePolicy, Trajectory, model_name, refine_many

Method = Literal["gcr", "single", "best-of-n"]
METHODS = ("gcr", "single", "best-of-n")
SEED_STRIDE = 10_000  # sample j of an item starts at seed + j * SEED_STRIDE


def method_policy(
    method: str, policy: RefinePolicy | None = None, budget: int | None = None, **overrides: Any
) -> RefinePolicy:
    """The loop policy of a method: GCR as given, single shot, or best-of-N at the same generator budget."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    base = policy or RefinePolicy(**overrides)
    if policy is not None and overrides:
        base = RefinePolicy(**{**policy.settings(), **overrides, "constraint_check": policy.constraint_check})
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    common = {"seed": base.seed, "seed_mode": base.seed_mode, "constraint_check": base.constraint_check}
    if method == "single":
        return RefinePolicy(rounds=1, candidates=1, threshold=None, patience=None, **common)
    if method == "best-of-n":
        n = budget or (base.generator_budget or base.rounds * base.candidates)
        return RefinePolicy(rounds=1, candidates=n, threshold=None, patience=None, **common)
    if budget is not None:
        base = RefinePolicy(
            **{**base.settings(), "generator_budget": budget, "constraint_check": base.constraint_check}
        )
    return base


@dataclass
class RunResult:
    """What ``run_refine`` did: the stage counts, the generator calls it spent, and the run's summary numbers."""

    out_dir: Path
    stage: StageSummary
    generator_calls: int
    summary: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def summarize(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Score gains, rounds used, generator calls and stop reasons over a run's trajectories."""
    both = [t for t in trajectories if t.first_reward is not None and t.best_reward is not None]
    return {
        "items": len(trajectories),
        "scored_items": sum(t.best_reward is not None for t in trajectories),
        "unscored_items": sum(t.best_reward is None for t in trajectories),
        "mean_first_reward": _mean(t.first_reward for t in trajectories),
        "mean_best_reward": _mean(t.best_reward for t in trajectories),
        "mean_gain": _mean(t.gain for t in both),
        "improved_items": sum(1 for t in both if t.best_reward > t.first_reward),
        "mean_rounds": _mean(len(t.rounds) for t in trajectories),
        "generator_calls": sum(t.generator_calls for t in trajectories),
        "mean_generator_calls": _mean(t.generator_calls for t in trajectories),
        "critic_calls": sum(t.critic_calls for t in trajectories),
        "parse_failures": sum(t.parse_failures for t in trajectories),
        "constraint_fallbacks": sum(r.request_source.startswith("fallback") for t in trajectories for r in t.rounds),
        "stop_reasons": dict(Counter(t.stop_reason or "?" for t in trajectories)),
    }


def load_run(out_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's settings (``run.json``) and its records (``trajectories.jsonl``), in file order."""
    out = Path(out_dir)
    settings_path = out / "run.json"
    if not settings_path.is_file():
        raise FileNotFoundError(f"{out} is not a refine run folder (no run.json)")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    store = JsonlStore(out / "trajectories.jsonl")
    return settings, [r for r in store if r.get("settings_hash") == settings["settings_hash"]]


def run_refine(
    bench: str | Path | list[BenchItem],
    generator: Generator | str,
    model: Any,
    out_dir: str | Path,
    method: str = "gcr",
    budget: int | None = None,
    policy: RefinePolicy | None = None,
    *,
    format: str | None = None,
    images_dir: str | Path | None = None,
    language: str | None = None,
    limit: int | None = None,
    repeats: int = 1,
    batch_size: int = 8,
    report: bool = True,
    progress: bool = True,
    **policy_overrides: Any,
) -> RunResult:
    """Refine every item of ``bench`` with ``method`` into ``out_dir`` (resumable; see the module docstring).

    ``model`` is a ``RationalRewardModel`` (or a backend spec string for one); ``generator`` a
    ``Generator`` or a spec for ``load_generator``. ``policy_overrides`` (``rounds=``, ``candidates=``,
    ``threshold=``...) build the GCR policy when ``policy`` is None. ``batch_size`` items run in
    lockstep (one generator call and one critic call per round for all of them).
    """
    if repeats < 1 or batch_size < 1:
        raise ValueError("repeats and batch_size must be >= 1")
    gen = load_generator(generator) if isinstance(generator, str) else generator
    if isinstance(model, str):
        from ..model import RationalRewardModel

        model = RationalRewardModel(model)
    pol = method_policy(method, policy, budget, **policy_overrides)
    items = (
        bench if isinstance(bench, list) else read_bench(bench, format=format, images_dir=images_dir, language=language)
    )
    if limit is not None:
        items = items[:limit]
    if any(it.source is not None for it in items) and not gen.supports_edit:
        raise ValueError(f"the benchmark has source images but generator {gen.name!r} does not edit")

    template = getattr(model, "template", None)
    settings = {
        "method": method,
        "policy": pol.settings(),
        "generator": gen.name,
        "model": model_name(model),
        "template": getattr(template, "name", None),
        "template_version": getattr(template, "version", None),
        "repeats": repeats,
    }
    settings_hash = stable_id(settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_json = out / "run.json"
    if run_json.is_file():
        previous = json.loads(run_json.read_text(encoding="utf-8"))
        if previous.get("settings_hash") != settings_hash:
            raise ValueError(
                f"{out} holds a run with other settings ({previous.get('settings')}); write to a new folder"
            )
    else:
        meta = {
            "settings": settings,
            "settings_hash": settings_hash,
            "bench": None if isinstance(bench, list) else str(bench),
        }
        run_json.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    store = JsonlStore(out / "trajectories.jsonl")

    work = [(it, j) for it in items for j in range(repeats)]

    def key(unit: tuple[BenchItem, int]) -> str:
        it, j = unit
        return f"{it.id}#{j}@{settings_hash}"

    def process(chunk: list[tuple[BenchItem, int]]) -> list[dict[str, Any]]:
        by_sample: dict[int, list[tuple[BenchItem, int]]] = {}
        for unit in chunk:
            by_sample.setdefault(unit[1], []).append(unit)
        records: dict[str, dict[str, Any]] = {}
        for j, units in by_sample.items():
            p = RefinePolicy(
                **{**pol.settings(), "seed": pol.seed + j * SEED_STRIDE, "constraint_check": pol.constraint_check}
            )
            refine_items = [
                RefineItem(
                    request=it.request, source=it.source, id=it.id if repeats == 1 else f"{it.id}#{j}", meta=it.meta
                )
                for it, _ in units
            ]
            trajs = refine_many(refine_items, gen, model, p, image_dir=out / "images", path_base=out)
            for (it, _), traj in zip(units, trajs, strict=True):
                rel = it.output_path(j, repeats)
                best = traj.best()
                target = out / "final" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                best.image.save(target)  # the loop always keeps a best (the first image when nothing parsed)
                records[key((it, j))] = {
                    "item_id": it.id,
                    "sample": j,
                    "settings_hash": settings_hash,
                    "method": method,
                    "output": f"final/{rel}",
                    "best_reward": traj.best_reward,
                    "trajectory": traj.model_dump(mode="json"),
                }
        return [records[key(u)] for u in chunk]

    calls_before = gen.images_made
    stage = run_stage(
        f"refine[{method}]",
        work,
        key,
        process,
        store,
        batch_size=batch_size,
        progress=progress,
        failure_reason=lambda rec: "no critique parsed" if rec.get("best_reward") is None else None,
    )
    _, records = load_run(out)
    trajs = [Trajectory.model_validate(r["trajectory"]) for r in records]
    summary = {"method": method, "settings_hash": settings_hash, **summarize(trajs)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    result = RunResult(out_dir=out, stage=stage, generator_calls=gen.images_made - calls_before, summary=summary)
    if report:
        from .report import write_report

        result.report = write_report(out)
    return result
