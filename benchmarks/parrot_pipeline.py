"""What the PARROT data stages cost around a teacher: prompts, parsing, checks, records, export.

A scripted teacher (``testing.parrot_teacher``) answers instantly, so the figures are harness
overhead per pair, not model speed: hindsight (k=1 and k=4), the consistency filter (one teacher
vote per rationale), and the export (1 pairwise + 2 projected pointwise examples per kept rationale,
written as a datasets folder and as ShareGPT JSON with PNG files).

    .venv/bin/python benchmarks/parrot_pipeline.py            # full run (600 pairs)
    .venv/bin/python benchmarks/parrot_pipeline.py --quick    # a short check (60 pairs)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import RESULTS_DIR, machine, timed, write_results
from rationalrewards.parrot.config import ConsistencyConfig, ExportConfig, HindsightConfig
from rationalrewards.parrot.pipeline import run_export, run_filter, run_hindsight
from rationalrewards.testing.parrot_teacher import SCENARIOS, ScriptedTeacher, make_pairs

RESULTS = RESULTS_DIR / "parrot_pipeline.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 pairs instead of 600")
    args = ap.parse_args()
    n = 60 if args.quick else 600
    items = [(("A", "B", "tie")[i % 3], [SCENARIOS[i % len(SCENARIOS)]] * 4) for i in range(n)]
    pairs, plan = make_pairs(items)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for k in (1, 4):
            teacher = ScriptedTeacher(plan).backend()
            hpath = work / f"h{k}.jsonl"
            cfg = HindsightConfig(samples=k, batch_size=32, temperature=0.7)
            _, dt = timed(lambda: run_hindsight(pairs, hpath, cfg, backend=teacher, progress=False))  # noqa: B023
            rows.append({"stage": f"hindsight k={k}", "pairs": n, "seconds": dt, "pairs_per_s": n / dt})
            fcfg = ConsistencyConfig(batch_size=32)
            fpath = work / f"f{k}.jsonl"
            (_, report), dt = timed(lambda: run_filter(pairs, hpath, fpath, fcfg, teacher=teacher, progress=False))  # noqa: B023
            rows.append(
                {
                    "stage": f"filter k={k}",
                    "pairs": n,
                    "seconds": dt,
                    "pairs_per_s": n / dt,
                    "retention": report.rationales.rate,
                }
            )
            if k == 1:
                summary, dt = timed(lambda: run_export(pairs, fpath, work / "sft", ExportConfig()))  # noqa: B023
                examples = sum(summary.examples.values())
                rows.append(
                    {"stage": "export (hf + sharegpt)", "pairs": n, "seconds": dt, "examples_per_s": examples / dt}
                )
    print(f"{'stage':<24} {'pairs':>6} {'seconds':>8} {'rate':>16}")
    for r in rows:
        rate = f"{r['pairs_per_s']:.0f} pairs/s" if "pairs_per_s" in r else f"{r['examples_per_s']:.0f} examples/s"
        print(f"{r['stage']:<24} {r['pairs']:>6} {r['seconds']:>8.2f} {rate:>16}")
    record = {
        "benchmark": "parrot_pipeline",
        "quick": args.quick,
        "machine": machine(),
        "note": "scripted teacher: harness overhead only; taken on a shared, loaded 2-core machine",
        "rows": rows,
    }
    write_results(RESULTS, record)


if __name__ == "__main__":
    main()
