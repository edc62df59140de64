"""Parser throughput on one core: critiques per second, pointwise and pairwise.

Inputs are protocol texts of typical size (~1.5 KB pointwise, ~2 KB pairwise) rendered from
random critiques with realistic prose, plus the hand-written malformed corpus in
tests/fixtures/outputs/. Prints a table and writes benchmarks/results/parser_speed.json.

    .venv/bin/python benchmarks/parser_speed.py [--n 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

from _common import print_table, write_results
from rationalrewards.format import render_critique, render_pairwise
from rationalrewards.parsing import parse_critique, parse_pairwise
from rationalrewards.rubric import Task, dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT.parent / "tests" / "fixtures" / "outputs"
TARGET = 20_000

_TEXT = (
    "the image shows a red cube placed left of the blue sphere while the request asks for three objects "
    "on a wooden table; edges are crisp, lighting is consistent, but one shadow falls the wrong way and "
    "the text on the sign reads correctly although its kerning is uneven near the last letter"
)
_WORDS = tuple(_TEXT.split())


def _prose(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def _score(rng: random.Random) -> float:
    return round(rng.uniform(1, 4) * 2) / 2


def make_pointwise(rng: random.Random) -> tuple[str, Task]:
    task = rng.choice(list(Task))
    dims = dimensions_for(task)
    na = [d.key for d in dims if d.allows_na and rng.random() < 0.6]
    c = Critique(
        task=task,
        request_analysis=_prose(rng, 30),
        scores={d.key: None if d.key in na else _score(rng) for d in dims},
        na=na,
        justifications={d.key: _prose(rng, 120 // len(dims) + 8) for d in dims},
        summary=_prose(rng, 25),
        refinement_comments=_prose(rng, 20),
        refined_request=_prose(rng, 25),
    )
    return render_critique(c), task


def make_pairwise(rng: random.Random) -> tuple[str, Task]:
    task = rng.choice(list(Task))
    dims = dimensions_for(task)
    na = [d.key for d in dims if d.allows_na and rng.random() < 0.6]
    sa = {d.key: None if d.key in na else _score(rng) for d in dims}
    sb = {d.key: None if d.key in na else _score(rng) for d in dims}
    c = PairwiseCritique(
        task=task,
        request_analysis=_prose(rng, 30),
        scores_a=sa,
        scores_b=sb,
        na=na,
        winners={k: None if sa[k] is None else rng.choice(["A", "B", "tie"]) for k in sa},
        justifications={d.key: _prose(rng, 150 // len(dims) + 8) for d in dims},
        summary=_prose(rng, 25),
        preference=rng.choice(["A", "B", "tie"]),
    )
    return render_pairwise(c), task


def _rate(fn, items: list[tuple[str, Task]], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for text, task in items:
            fn(text, task=task)
        best = max(best, len(items) / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="critiques per set")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes; the best is reported")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "parser_speed.json")
    args = ap.parse_args()
    rng = random.Random(0)
    pointwise = [make_pointwise(rng) for _ in range(args.n)]
    pairwise = [make_pairwise(rng) for _ in range(args.n)]
    corpus_pw, corpus_pp = [], []
    for path in sorted(CORPUS.glob("*.txt")):
        meta = json.loads(path.with_suffix(".json").read_text())
        (corpus_pw if meta["kind"] == "pointwise" else corpus_pp).append((path.read_text(), Task(meta["task"])))

    rows = []
    for name, fn, items in (
        ("pointwise (rendered)", parse_critique, pointwise),
        ("pairwise (rendered)", parse_pairwise, pairwise),
        ("pointwise (malformed corpus)", parse_critique, corpus_pw * max(1, args.n // max(1, len(corpus_pw)))),
        ("pairwise (malformed corpus)", parse_pairwise, corpus_pp * max(1, args.n // max(1, len(corpus_pp)))),
    ):
        fn(items[0][0], task=items[0][1])  # warm the caches
        rate = _rate(fn, items, args.repeat)
        size = sum(len(t) for t, _ in items) / len(items)
        rows.append(
            {
                "set": name,
                "n": len(items),
                "mean_bytes": round(size),
                "per_s": round(rate),
                "kb_per_s": round(rate * size / 1024),
            }
        )

    print_table(
        rows,
        [("set", "set", "s"), ("n", "n", "d"), ("bytes", "mean_bytes", "d"), ("critiques/s", "per_s", ","),
         ("KB/s", "kb_per_s", ",")],
    )  # fmt: skip
    ok = all(r["per_s"] >= TARGET for r in rows[:2])
    print(f"target {TARGET:,}/s on typical critiques: {'met' if ok else 'NOT met'}")
    result = {
        "benchmark": "parser_speed",
        "target_per_s": TARGET,
        "target_met": ok,
        "rows": rows,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "note": "one single-threaded process (one core); best of --repeat passes",
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
