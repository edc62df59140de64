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
import re
import tempfile
from pathlib import Path

from _common import RATE_COLUMNS, RESULTS_DIR, machine, print_table, rate_row, timed, write_results
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.evaluate.runner import rescore, run_eval
from rationalrewards.model import RationalRewardModel
from rationalrewards.testing.eval_bench import genai_t2i_rows, pairwise_text, write_parquet

RESULTS = RESULTS_DIR / "eval_overhead.json"
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

        def measure(case: str, fn) -> None:
            rows.append(rate_row(case, n, timed(fn)[1]))

        measure("fresh run", lambda: run_eval("genai-bench-t2i", data, model, run_dir, batch_size=64, progress=False))
        calls = len(backend.calls)
        measure("rerun (all done)", lambda: run_eval("genai-bench-t2i", data, model, run_dir, progress=False))
        if len(backend.calls) != calls:
            raise RuntimeError("the rerun called the backend")
        failed = rescore(run_dir, report=False).metrics["diagnostics"]["parse"]["failed"]
        if failed:
            raise RuntimeError(f"{failed} critiques failed to parse: the benchmark would measure failures")
        measure("rescore", lambda: rescore(run_dir))
        measure("rescore (reparse)", lambda: rescore(run_dir, reparse=True))

    print_table(rows, RATE_COLUMNS)
    own = next(r for r in rows if r["case"] == "rescore (reparse)")
    ok = own["items_per_s"] >= TARGET
    verdict = "ok" if ok else "MISSED"
    print(f"harness overhead (rescore with reparse): {own['items_per_s']:.0f} items/s, target {TARGET:.0f}: {verdict}")
    record = {
        "benchmark": "eval_overhead",
        "n": n,
        "target_items_per_s": TARGET,
        "target_met": ok,
        "machine": machine(),
        "results": rows,
    }
    write_results(args.out, record)


if __name__ == "__main__":
    main()
