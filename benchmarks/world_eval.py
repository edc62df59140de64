"""Preference accuracy on the synthetic world's held-out pairs, through the evaluation harness (`rationalrewards eval`).

Held-out pairs: 400 labelled world pairs (text-to-image and edit alternating) from world seed 1000003, a
seed no training set uses (the embedded model trains on seed 0). Models: the embedded default model,
the privileged synthetic teacher (its pairwise mode) and the generic-judge baseline. Each model is run
in pairwise mode with both orders (so position bias is measured) and in pointwise mode (two critiques,
scores compared: the form RL and best-of-N use). Run folders go to ``runs/world_eval/`` (resumable:
a rerun only rescores).

    .venv/bin/python benchmarks/world_eval.py             # 400 pairs
    .venv/bin/python benchmarks/world_eval.py --quick     # 60 pairs

Writes ``benchmarks/results/world_eval.json`` and ``world_eval.md``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine, print_table, timed, write_results

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT_SEED = 1_000_003


def models(data: Path) -> dict[str, str]:
    return {
        "embedded": "embedded",
        "privileged teacher": f"synthetic-teacher:auto?registry={data}",
        "generic judge": f"synthetic-teacher:generic?registry={data}",
    }


def held_out(n: int, folder: Path) -> Path:
    from rationalrewards.synthetic import World, make_pairs, save_pairs

    path = folder / f"heldout-{n}.parquet"
    if not path.is_file():
        world = World()
        save_pairs(make_pairs(n, seed=HELD_OUT_SEED, task="both", world=world), path, registry=world.registry)
    return path


def _acc(metrics: dict[str, Any], protocol: str, key: str | None = None) -> dict[str, Any] | None:
    p = metrics["views"]["overall"]["protocols"].get(protocol)
    if p is None:
        return None
    return p["accuracy"] if key is None else p["by"].get(key)


def _pct(acc: dict[str, Any] | None) -> float | None:
    return None if acc is None else round(100 * acc["value"], 1)


def row(name: str, mode: str, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    diag = metrics["diagnostics"]
    noties = _acc(metrics, "noties")
    pred = metrics["views"]["overall"]["protocols"]["ties"]["predicted"]
    bias = diag.get("position_bias")
    return {
        "model": name,
        "mode": mode,
        "acc_noties": _pct(noties),
        "ci_noties": None if noties is None else [round(100 * noties["ci_low"], 1), round(100 * noties["ci_high"], 1)],
        "acc_ties": _pct(_acc(metrics, "ties")),
        "acc_t2i": _pct(_acc(metrics, "noties", "subset=t2i")),
        "acc_edit": _pct(_acc(metrics, "noties", "subset=edit")),
        "tie_verdicts": round(100 * pred["tie"] / max(1, sum(pred.values())), 1),
        "position_flips": None if not bias or bias.get("flip_rate") is None else round(100 * bias["flip_rate"], 1),
        "parse_failures": round(100 * diag["parse"]["failure_rate"], 1),
        "wall_s": round(seconds, 1),
    }


COLUMNS = (
    ("model", "model", "s"),
    ("mode", "mode", "s"),
    ("acc (no ties) %", "acc_noties", ".1f"),
    ("acc (ties) %", "acc_ties", ".1f"),
    ("t2i %", "acc_t2i", ".1f"),
    ("edit %", "acc_edit", ".1f"),
    ("tie verdicts %", "tie_verdicts", ".1f"),
    ("order flips %", "position_flips", ".1f"),
    ("parse fail %", "parse_failures", ".1f"),
    ("wall s", "wall_s", ".1f"),
)


def markdown(rows: list[dict[str, Any]], n: int, command: str) -> str:
    lines = [
        "### Preference accuracy on held-out synthetic-world pairs (`benchmarks/world_eval.py`)",
        "",
        f"{n} held-out world pairs (world seed {HELD_OUT_SEED}, t2i and edit alternating), scored by "
        "`rationalrewards eval --bench synthetic`; accuracy in % with 95% bootstrap CIs (no-ties protocol: tie "
        "labels left out, a predicted tie is wrong). Pairwise mode judges each pair in both orders (both "
        "judgements count); pointwise mode compares two critiques' overall scores.",
        "",
        "| model | mode | accuracy, no ties | with ties | t2i | edit | tie verdicts | order flips | parse failures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = r["ci_noties"]
        acc = "—" if r["acc_noties"] is None else f"{r['acc_noties']} [{ci[0]}, {ci[1]}]"
        flips = "—" if r["position_flips"] is None else f"{r['position_flips']}%"
        lines.append(
            f"| {r['model']} | {r['mode']} | {acc} | {r['acc_ties']} | {r['acc_t2i']} | {r['acc_edit']} | "
            f"{r['tie_verdicts']}% | {flips} | {r['parse_failures']}% |"
        )
    lines += ["", f"`{command}`", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="held-out pairs")
    ap.add_argument("--quick", action="store_true", help="60 pairs")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "world_eval", help="run folders")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the embedded model")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rationalrewards.evaluate.runner import run_eval

    torch.set_num_threads(args.threads)
    n = 60 if args.quick else args.n
    args.runs.mkdir(parents=True, exist_ok=True)
    data = held_out(n, args.runs)
    rows, runs = [], {}
    for name, spec in models(data).items():
        for mode in ("pairwise", "pointwise"):
            out = args.runs / f"n{n}" / f"{name.replace(' ', '-')}-{mode}"
            res, seconds = timed(
                lambda spec=spec, mode=mode, out=out: run_eval(
                    "synthetic",
                    data,
                    spec,
                    out,
                    mode=mode,
                    both_orders=mode == "pairwise",
                    batch_size=16,
                    progress=False,
                )
            )
            rows.append(row(name, mode, res.metrics, seconds))
            runs[f"{name}/{mode}"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    print_table(rows, COLUMNS)
    command = ".venv/bin/python benchmarks/world_eval.py" + (" --quick" if args.quick else "")
    write_results(
        RESULTS_DIR / "world_eval.json",
        {"machine": machine(), "n_pairs": n, "held_out_seed": HELD_OUT_SEED, "rows": rows, "runs": runs},
    )
    md = RESULTS_DIR / "world_eval.md"
    md.write_text(markdown(rows, n, command))
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
