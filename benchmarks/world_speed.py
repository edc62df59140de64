"""How fast the synthetic world makes data, on one core.

Cases (128x128 images, default generator):

- ``render``: drawing a recorded scene to pixels (``GenerationRecord.render``).
- ``generate t2i`` / ``generate edit``: parse a request text, draw failures, lay out, render, hash.
- ``simulate t2i``: the same without pixels (``render=False``), for statistics over many draws.
- ``pairs t2i`` / ``pairs edit``: labelled preference pairs end to end (two generations, truth,
  labels, PNG encoding, registry), as ``rationalrewards world make-pairs`` makes them.

It also reports the share of non-tie labels that disagree with the hidden utility.

    .venv/bin/python benchmarks/world_speed.py           # N = 1000
    .venv/bin/python benchmarks/world_speed.py --quick   # N = 200
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from _common import timed, write_results
from rationalrewards.synthetic import EVAL_KEY, World, make_pairs

RESULTS = Path(__file__).parent / "results" / "world_speed.json"


def _rate(n: int, fn) -> float:
    return n / timed(fn)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="N = 200")
    args = ap.parse_args()
    n = 200 if args.quick else args.n

    world = World()
    t2i = [world.sample_request(i, "t2i")[1] for i in range(n)]
    sources = [world.sample_source(i) for i in range(n)]
    edits = [world.sample_request(i, "edit", source=s.record.scene)[1] for i, s in enumerate(sources)]
    records = [world.generate(t, i).record for i, t in enumerate(t2i)]

    rows: dict[str, float] = {}
    rows["render (images/s)"] = _rate(n, lambda: [r.render() for r in records])
    rows["generate t2i (images/s)"] = _rate(n, lambda: [world.generate(t, i) for i, t in enumerate(t2i)])
    rows["generate edit (images/s)"] = _rate(
        n, lambda: [world.generate(t, i, source=sources[i].record) for i, t in enumerate(edits)]
    )
    rows["simulate t2i (draws/s)"] = _rate(n, lambda: [world.generate(t, i, render=False) for i, t in enumerate(t2i)])
    holder: dict[str, list] = {}
    rows["pairs t2i (pairs/s)"] = _rate(n, lambda: holder.setdefault("t2i", make_pairs(n, seed=1, task="t2i")))
    rows["pairs edit (pairs/s)"] = _rate(n, lambda: holder.setdefault("edit", make_pairs(n, seed=1, task="edit")))

    pairs = holder["t2i"] + holder["edit"]
    non_tie = [p for p in pairs if p.label != "tie"]
    disagree = sum((p.label == "A") != (p.meta[EVAL_KEY]["utility_a"] > p.meta[EVAL_KEY]["utility_b"]) for p in non_tie)

    width = max(len(k) for k in rows)
    print(f"{'case':<{width}}  {'per second':>10}  {'per minute':>10}")
    for k, v in rows.items():
        print(f"{k:<{width}}  {v:>10.0f}  {v * 60:>10.0f}")
    print(
        f"ties: {len(pairs) - len(non_tie)}/{len(pairs)}; non-tie labels disagreeing with utility: "
        f"{disagree / len(non_tie):.1%}"
    )
    record = {
        "n": n,
        "per_second": {k: round(v, 1) for k, v in rows.items()},
        "label_disagreement": round(disagree / len(non_tie), 4),
        "tie_share": round((len(pairs) - len(non_tie)) / len(pairs), 4),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "note": "single process, one core; machine shared with other jobs when taken",
    }
    write_results(RESULTS, record)


if __name__ == "__main__":
    main()
