"""What the evaluation harness itself costs: parsing, scoring, diagnostics and reporting, per pair.

A ScriptedBackend answers instantly with prerendered protocol texts (looked up by the
request, no image decoding), so the figures are overhead, not model speed. Cases, on
a GenAI-Bench-layout parquet file of N pairs:

- ``rescore (reparse)``: the harness's own path: re-read every stored raw text with the
  parser, score all views and protocols (bootstrap CIs, ε sweeps), diagnostics, reports.
- ``rescore``: the same from the stored parses.
- ``fresh run``: end to end with the model in the loop: load the parquet, template each
  pair, call the backend, parse, append a JSONL record (fsync per record), then score and
  report. Templating and the per-record fsync belong to the model and the store.
- ``rerun (all done)``: a second run on the same folder: load, skip, rescore.

    .venv/bin/python benchmarks/eval_overhead.py            # N = 4000
    .venv/bin/python benchmarks/eval_overhead.py --quick    # N = 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.evaluate.runner import rescore, run_eval
from rationalrewards.model import RationalRewardModel
from rationalrewards.testing.eval_bench import genai_t2i_rows, pairwise_text, write_parquet

RESULTS = Path(__file__).parent / "results" / "eval_overhead.json"
TARGET = 2000.0
REQUEST = re.compile(r"prompt \d+")
VOTES = ("leftvote", "rightvote", "tievote", "bothbad_vote")


def _pairs(n: int) -> list[tuple[int, int, str]]:
    return [(1 + i % 4, 1 + (i * 7 // 3) % 4, VOTES[(i * 5) % 7 % 4]) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 pairs instead of 4000")
    ap.add_argument("--n", type=int, default=None, help="number of pairs")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    n = args.n or (500 if args.quick else 4000)
    spec = _pairs(n)
    texts = {f"prompt {i}": pairwise_text(qa, qb) for i, (qa, qb, _) in enumerate(spec)}

    def respond(conv: Conversation, _k: int) -> str:
        m = REQUEST.search(conv.messages[-1].text)
        if m is None or m.group(0) not in texts:
            raise KeyError("request not found in the conversation")
        return texts[m.group(0)]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_parquet(Path(tmp) / "genai.parquet", genai_t2i_rows(spec))
        backend = ScriptedBackend(respond)
        model = RationalRewardModel(backend)
        run_dir = Path(tmp) / "run"
        # warm-up: imports, template compilation, matplotlib fonts
        run_eval("genai-bench-t2i", data, model, Path(tmp) / "warm", limit=8, progress=False)

        def timed(case: str, fn) -> None:
            t0 = time.perf_counter()
            fn()
            wall = time.perf_counter() - t0
            rows.append(
                {"case": case, "items": n, "items_per_s": round(n / wall, 1), "ms_per_item": round(1e3 * wall / n, 3)}
            )

        timed("fresh run", lambda: run_eval("genai-bench-t2i", data, model, run_dir, batch_size=64, progress=False))
        calls = len(backend.calls)
        timed("rerun (all done)", lambda: run_eval("genai-bench-t2i", data, model, run_dir, progress=False))
        if len(backend.calls) != calls:
            raise RuntimeError("the rerun called the backend")
        failed = rescore(run_dir, report=False).metrics["diagnostics"]["parse"]["failed"]
        if failed:
            raise RuntimeError(f"{failed} critiques failed to parse: the benchmark would measure failures")
        timed("rescore", lambda: rescore(run_dir))
        timed("rescore (reparse)", lambda: rescore(run_dir, reparse=True))

    print(f"{'case':22s} {'items':>6s} {'items/s':>10s} {'ms/item':>9s}")
    for r in rows:
        print(f"{r['case']:22s} {r['items']:6d} {r['items_per_s']:10.1f} {r['ms_per_item']:9.3f}")
    own = next(r for r in rows if r["case"] == "rescore (reparse)")
    ok = own["items_per_s"] >= TARGET
    verdict = "ok" if ok else "MISSED"
    print(f"harness overhead (rescore with reparse): {own['items_per_s']:.0f} items/s, target {TARGET:.0f}: {verdict}")
    record = {
        "benchmark": "eval_overhead",
        "n": n,
        "target_items_per_s": TARGET,
        "target_met": ok,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
