"""What the GCR machinery costs around the generator and the critic, and the diffusers adapter on a tiny Flux.

Cases: ``refine_many`` on the colour world (instant painter, scripted critic answering protocol text,
3 rounds) = loop + templating + parsing + constraint checks per generated image; ``run_refine`` (same,
plus PNG writes, JSONL records, final images; then a rerun that finds everything done); the tiny
``FluxPipeline`` through ``DiffusersGenerator`` at 64x64, 2 steps, batch 1 vs 4 (CPU; the pictures are
noise: this measures the adapter path, not a real model).

    .venv/bin/python benchmarks/refine_overhead.py            # full run
    .venv/bin/python benchmarks/refine_overhead.py --quick    # a short check
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import RESULTS_DIR, machine, timed, write_results
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.model import RationalRewardModel
from rationalrewards.refine.benchfiles import BenchItem
from rationalrewards.refine.generators.callable import CallableGenerator
from rationalrewards.refine.loop import RefinePolicy, refine_many
from rationalrewards.refine.runner import run_refine
from rationalrewards.testing.colour_world import ColourCritic, paint

RESULTS = RESULTS_DIR / "refine_overhead.json"
REFINED = {None: "a green square with a dot", "green": "a red square with a dot", "red": "a blue square with a dot"}


def _model() -> RationalRewardModel:
    return RationalRewardModel(ScriptedBackend(ColourCritic(target="blue", refined=REFINED)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer items")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    n = 30 if args.quick else 200
    policy = RefinePolicy(rounds=3, threshold=None, patience=None)
    rows = []

    gen = CallableGenerator(paint)
    refine_many([f"a square with a dot #{i}" for i in range(4)], gen, _model(), policy)  # warm-up
    gen = CallableGenerator(paint)
    _, wall = timed(lambda: refine_many([f"a square with a dot #{i}" for i in range(n)], gen, _model(), policy))
    rows.append(
        {"case": "refine_many (3 rounds)", "images": gen.images_made, "ms_per_image": 1000 * wall / gen.images_made}
    )

    items = [BenchItem(id=str(i), request=f"a square with a dot #{i}", output=f"{i}.png") for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        gen = CallableGenerator(paint)
        kw = {"rounds": 3, "threshold": None, "patience": None, "report": False, "progress": False}
        _, wall = timed(lambda: run_refine(items, gen, _model(), Path(tmp) / "run", **kw))
        rows.append({"case": "run_refine (3 rounds, files)", "images": gen.images_made,
                     "ms_per_image": 1000 * wall / gen.images_made})  # fmt: skip
        gen2 = CallableGenerator(paint)
        _, wall = timed(lambda: run_refine(items, gen2, _model(), Path(tmp) / "run", **kw))
        rows.append({"case": "run_refine rerun (all done)", "images": gen2.images_made, "ms_per_item": 1000 * wall / n})

    try:
        from rationalrewards.refine.generators.diffusers_gen import DiffusersGenerator
        from rationalrewards.testing.tiny_diffusers import TINY_CALL_KWARGS, build_tiny_flux
    except ImportError:
        DiffusersGenerator = None
    if DiffusersGenerator is not None:
        with tempfile.TemporaryDirectory() as tmp:
            gen = DiffusersGenerator(
                str(build_tiny_flux(Path(tmp) / "flux")), device="cpu", call_kwargs=TINY_CALL_KWARGS
            )
            m = 8 if args.quick else 32
            reqs = [f"a red cube #{i}" for i in range(m)]
            for bs in (1, 4):
                gen.batch_size = bs
                gen.generate(reqs[:bs], list(range(bs)))  # warm-up
                _, wall = timed(lambda: gen.generate(reqs, list(range(m))))
                rows.append(
                    {"case": f"tiny Flux 64x64 2 steps, batch {bs}", "images": m, "ms_per_image": 1000 * wall / m}
                )

    print(f"{'case':40s} {'images':>7s} {'ms/image':>10s}")
    for r in rows:
        ms = r.get("ms_per_image", r.get("ms_per_item"))
        unit = "" if "ms_per_image" in r else " (per item)"
        print(f"{r['case']:40s} {r['images']:7d} {ms:10.3f}{unit}")
    record = {
        "benchmark": "refine_overhead",
        "quick": args.quick,
        "machine": machine(),
        "results": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    write_results(args.out, record)


if __name__ == "__main__":
    main()
