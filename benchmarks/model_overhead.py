"""What the reward model itself costs around a backend: templating, parsing, combining, writing records.

A ScriptedBackend answers instantly with protocol text rendered from a fixed critique, so the
figures are the harness overhead per item (not model speed): ``critique`` (1 and 4 samples),
``compare`` (one order and both orders) and ``critique_file`` (resumable JSONL records).

    .venv/bin/python benchmarks/model_overhead.py            # full run
    .venv/bin/python benchmarks/model_overhead.py --quick    # a short check
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from PIL import Image

from rationalrewards.backends import GenerationConfig
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.batch import critique_file
from rationalrewards.format import render_critique, render_pairwise
from rationalrewards.model import RationalRewardModel
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique, PreferencePair, Sample

RESULTS = Path(__file__).parent / "results" / "model_overhead.json"
KEYS = [d.key for d in dimensions_for("t2i")]
JUST = "The request asks for three red cubes left of a blue sphere; the image shows three cubes, all red. " * 3


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (i % 256, (7 * i) % 256, 90)).save(buf, format="PNG")
    return buf.getvalue()


POINTWISE = render_critique(
    Critique(
        scores=dict.fromkeys(KEYS, 3.0),
        justifications=dict.fromkeys(KEYS, JUST),
        summary="mostly right",
        refinement_comments="state the count",
        refined_request="exactly three red cubes to the left of one blue sphere",
    )
)
PAIRWISE = render_pairwise(
    PairwiseCritique(
        scores_a=dict.fromkeys(KEYS, 3.5),
        scores_b=dict.fromkeys(KEYS, 2.0),
        winners=dict.fromkeys(KEYS, "A"),
        justifications=dict.fromkeys(KEYS, JUST),
        preference="A",
        summary="A is better",
    )
)


def _rate(n: int, fn) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    return n / wall, 1000 * wall / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer items")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    n = 100 if args.quick else 1000
    images = [_png(i) for i in range(n)]
    samples = [Sample(request=f"three red cubes left of a blue sphere #{i}", image=images[i]) for i in range(n)]
    pairs = [
        PreferencePair(request=f"three red cubes #{i}", image_a=images[i], image_b=images[-1 - i]) for i in range(n)
    ]
    point = RationalRewardModel(ScriptedBackend(lambda c, k: POINTWISE))
    multi = RationalRewardModel(
        ScriptedBackend(lambda c, k: POINTWISE), generation=GenerationConfig(temperature=0.7), n_samples=4
    )
    pair = RationalRewardModel(ScriptedBackend(lambda c, k: PAIRWISE))
    point.critique(samples[:4])  # warm-up: template compilation, parser regexes
    pair.compare(pairs[:4])
    rows = []
    for name, items, fn in [
        ("critique", n, lambda: point.critique(samples)),
        ("critique n_samples=4", n, lambda: multi.critique(samples)),
        ("compare", n, lambda: pair.compare(pairs)),
        ("compare both_orders", n, lambda: pair.compare(pairs, both_orders=True)),
    ]:
        rate, ms = _rate(items, fn)
        rows.append({"case": name, "items": items, "items_per_s": round(rate, 1), "ms_per_item": round(ms, 3)})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        rate, ms = _rate(n, lambda: critique_file(samples, out, point, batch_size=32, progress=False))
        rows.append({"case": "critique_file", "items": n, "items_per_s": round(rate, 1), "ms_per_item": round(ms, 3)})
        rate, ms = _rate(n, lambda: critique_file(samples, out, point, batch_size=32, progress=False))
        rows.append(
            {
                "case": "critique_file rerun (all done)",
                "items": n,
                "items_per_s": round(rate, 1),
                "ms_per_item": round(ms, 3),
            }
        )

    print(f"{'case':34s} {'items':>6s} {'items/s':>10s} {'ms/item':>9s}")
    for r in rows:
        print(f"{r['case']:34s} {r['items']:6d} {r['items_per_s']:10.1f} {r['ms_per_item']:9.3f}")
    record = {
        "benchmark": "model_overhead",
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
