"""GCR vs single shot vs best-of-N in the synthetic world, at equal generator budgets, scored by the hidden truth.

For each critic and repetition (a fresh bench of world requests, half text-to-image and half edits, and
fresh generator seeds), every method runs through the same loop (``refine_many``) and the image each
method keeps is judged by the world's truth against the user's original request: mean true human utility,
mean true per-dimension quality, and the generator calls actually spent.

Methods at budget B (generator calls per item):
  single       one image (budget 1)
  best-of-N    B images of the original request, the critic's favourite kept
  gcr          up to B rounds of one image; between rounds the request is the critic's refined request;
               stops early when the critic finds nothing wrong (every dimension 4: ``dimension_floor=4``)
and, at budget 4 only, GCR variants that show the policy's levers: a reward threshold instead of the
floor (0.9, 0.85: stop when "good enough") and the loop's default constraint check (which rejects the
world's rephrasings for a dropped framing noun such as "picture", see the report).

Critics: ``--critic`` specs (repeatable). Default: ``synthetic-teacher`` (privileged world teacher) and
``embedded`` when they load.

    .venv/bin/python benchmarks/gcr_world.py [--items 160] [--reps 3] [--budgets 1,2,4,8] [--critic SPEC]...
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rationalrewards.images import load_image
from rationalrewards.model import RationalRewardModel
from rationalrewards.refine import RefineItem, RefinePolicy, refine_many
from rationalrewards.refine.constraints import ConstraintCheck
from rationalrewards.refine.generators.world import WORLD_CONSTRAINT_CHECK, WorldGenerator
from rationalrewards.refine.runner import method_policy
from rationalrewards.rubric import DIMENSION_KEYS
from rationalrewards.synthetic import default_world, make_bench

RESULTS = Path(__file__).parent / "results" / "gcr_world.json"
WORLD_CHECK = WORLD_CONSTRAINT_CHECK


def load_critic(spec: str) -> RationalRewardModel:
    return RationalRewardModel(spec)


def default_critics() -> list[str]:
    from rationalrewards.backends import load_backend

    out = []
    for spec in ("synthetic-teacher", "embedded"):
        try:
            load_backend(spec)
            out.append(spec)
        except Exception as exc:  # not shipped yet / cannot load here
            print(f"critic {spec!r} unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if not out:
        raise SystemExit("no critic available: pass --critic SPEC")
    return out


def gcr_policy(budget: int, seed: int, **kw: Any) -> RefinePolicy:
    base = {"rounds": budget, "candidates": 1, "threshold": None, "dimension_floor": 4.0, "patience": None,
            "seed": seed, "constraint_check": WORLD_CHECK}  # fmt: skip
    base.update(kw)
    return method_policy("gcr", RefinePolicy(**base), budget=budget)


def methods(budgets: list[int], seed: int) -> list[tuple[str, int, RefinePolicy]]:
    out = [("single", 1, method_policy("single", RefinePolicy(seed=seed)))]
    for b in budgets:
        if b > 1:
            out.append(("best-of-n", b, method_policy("best-of-n", RefinePolicy(seed=seed), budget=b)))
        if b > 1:  # GCR at budget 1 is the single shot
            out.append(("gcr", b, gcr_policy(b, seed)))
    if 4 in budgets:
        out.append(("gcr (threshold 0.9)", 4, gcr_policy(4, seed, threshold=0.9, dimension_floor=None)))
        out.append(("gcr (threshold 0.85)", 4, gcr_policy(4, seed, threshold=0.85, dimension_floor=None)))
        out.append(("gcr (default check)", 4, gcr_policy(4, seed, constraint_check=ConstraintCheck())))
    return out


def evaluate(trajs, bench, gen: WorldGenerator) -> dict[str, Any]:
    utils, dims = [], {k: [] for k in DIMENSION_KEYS}
    for t, it in zip(trajs, bench, strict=True):
        truth = gen.truth_of(t.best().image_hash, it.request)
        utils.append(truth.utility)
        for k, v in truth.scores.items():
            if v is not None:
                dims[k].append(v)
    sources = [r.request_source for t in trajs for r in t.rounds[1:]]
    return {
        "utility": statistics.fmean(utils),
        "quality": {k: statistics.fmean(v) for k, v in dims.items() if v},
        "calls": statistics.fmean(t.generator_calls for t in trajs),
        "refined_share": (sum(s.startswith("refined") for s in sources) / len(sources)) if sources else None,
        "parse_failures": sum(t.parse_failures for t in trajs),
    }


def run(critic_spec: str, n_items: int, reps: int, budgets: list[int]) -> dict[str, Any]:
    model = load_critic(critic_spec)
    world = default_world()
    gen = WorldGenerator(world)
    per: dict[str, list[dict[str, Any]]] = {}
    t0 = time.perf_counter()
    for rep in range(reps):
        bench = make_bench(n_items, seed=1000 + rep, task="both", world=world)
        items = [RefineItem(request=it.request, source=load_image(it.source) if it.source else None, id=it.id)
                 for it in bench]  # fmt: skip
        for name, budget, policy in methods(budgets, seed=rep * 100_000):
            trajs = refine_many(items, gen, model, policy)
            per.setdefault(f"{name}@{budget}", []).append(evaluate(trajs, bench, gen))
    rows = {}
    for key, runs in per.items():
        name, _, budget = key.rpartition("@")
        rows[key] = {
            "method": name,
            "budget": int(budget),
            "utility_mean": statistics.fmean(r["utility"] for r in runs),
            "utility_sd": statistics.stdev([r["utility"] for r in runs]) if len(runs) > 1 else 0.0,
            "utility_runs": [r["utility"] for r in runs],
            "calls_mean": statistics.fmean(r["calls"] for r in runs),
            "quality": {
                k: statistics.fmean(r["quality"][k] for r in runs if k in r["quality"])
                for k in DIMENSION_KEYS
                if any(k in r["quality"] for r in runs)
            },  # fmt: skip
            "refined_share": _mean([r["refined_share"] for r in runs]),
            "parse_failures": sum(r["parse_failures"] for r in runs),
        }
    return {"critic": model.name, "spec": critic_spec, "seconds": time.perf_counter() - t0, "rows": rows}


def _mean(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GCR in the synthetic world · critic {result['critic']} · {result['seconds']:.0f} s")
    for col in ("method", "budget", "true utility (± sd over reps)", "calls/item", "TF", "IF", "PQ", "TR", "refined"):
        table.add_column(col, justify="right" if col not in ("method",) else "left")
    for row in sorted(result["rows"].values(), key=lambda r: (r["budget"], r["method"])):
        q = row["quality"]
        table.add_row(
            row["method"], str(row["budget"]), f"{row['utility_mean']:.4f} ± {row['utility_sd']:.4f}",
            f"{row['calls_mean']:.2f}",
            *(f"{q[k]:.3f}" if k in q else "—" for k in DIMENSION_KEYS),
            "—" if row["refined_share"] is None else f"{row['refined_share']:.0%}",
        )  # fmt: skip
    Console(width=160).print(table)


def verdicts(result: dict[str, Any], budgets: list[int]) -> dict[str, Any]:
    rows = result["rows"]
    out: dict[str, Any] = {}
    for b in budgets:
        if b > 1 and f"gcr@{b}" in rows and f"best-of-n@{b}" in rows:
            g, n = rows[f"gcr@{b}"], rows[f"best-of-n@{b}"]
            out[f"gcr_minus_bon@{b}"] = g["utility_mean"] - n["utility_mean"]
            diffs = [x - y for x, y in zip(g["utility_runs"], n["utility_runs"], strict=True)]
            out[f"gcr_minus_bon_per_rep@{b}"] = diffs
            out[f"gcr_beats_bon_every_rep@{b}"] = all(d > 0 for d in diffs)
    if "gcr@4" in rows:
        out["gcr_calls@4"] = rows["gcr@4"]["calls_mean"]
        out["calls_target_met@4 (<=1.6)"] = rows["gcr@4"]["calls_mean"] <= 1.6
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=160, help="requests per repetition (half edits)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (fresh bench and seeds each)")
    ap.add_argument("--budgets", default="1,2,4,8", help="generator budgets per item")
    ap.add_argument("--critic", action="append", help="critic backend spec (repeatable); see the module docstring")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    critics = args.critic or default_critics()
    results = []
    for spec in critics:
        res = run(spec, args.items, args.reps, budgets)
        res["verdicts"] = verdicts(res, budgets)
        print_table(res)
        print(json.dumps(res["verdicts"], indent=1))
        results.append(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "gcr_world",
                "items": args.items,
                "reps": args.reps,
                "budgets": budgets,
                "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
                "note": "taken on a shared 2-core CPU machine under load (timings noisy; quality numbers are not)",
                "results": results,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
