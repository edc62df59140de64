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
import tempfile
from pathlib import Path

from PIL import Image

from _common import RATE_COLUMNS, RESULTS_DIR, machine, print_table, rate_row, timed, write_results
from rationalrewards.backends import GenerationConfig
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.batch import critique_file
from rationalrewards.format import render_critique, render_pairwise
from rationalrewards.model import RationalRewardModel
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique, PreferencePair, Sample

RESULTS = RESULTS_DIR / "model_overhead.json"
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
        rows.append(rate_row(name, items, timed(fn)[1]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        for name in ("critique_file", "critique_file rerun (all done)"):
            _, wall = timed(lambda: critique_file(samples, out, point, batch_size=32, progress=False))
            rows.append(rate_row(name, n, wall))

    print_table(rows, RATE_COLUMNS)
    record = {"benchmark": "model_overhead", "quick": args.quick, "machine": machine(), "results": rows}
    write_results(args.out, record)


if __name__ == "__main__":
    main()
