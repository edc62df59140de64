"""The ceiling and floor of the synthetic world: preference accuracy on a held-out pair set made by the world.

Every reward model trained in this world is read against this table. Judges:

- ``hidden utility``: the simulated people's own utility (A if u_a - u_b > tie margin, B if below
  minus it, else tie): the noise ceiling, since labels are Bradley-Terry draws around it;
- ``true rubric scores``: the truth's per-dimension scores (a perfect rubric critic), mean compared;
- ``teacher pairwise`` / ``teacher pointwise``: the privileged synthetic teacher through the real
  template -> backend -> parser path (``RationalRewardModel.compare`` and the sign of the
  difference of two ``critique`` rewards; equal rewards are a tie);
- ``generic pairwise`` / ``generic pointwise``: the miscalibrated generic VLM judge, same path;
- ``random``: A/B coin flips (and uniform A/B/tie for the with-ties column), seeded.

Columns: accuracy with ties (every pair; the verdict must equal the label) and without ties
(tie-labelled pairs dropped; a predicted tie is wrong), each with a 95% bootstrap CI
(``rationalrewards.evaluate.metrics.accuracy``), and no-ties accuracy per task. A second table
runs PARROT phases 1-2 with the teacher on the same pairs (hindsight rationale for the real
label, then the label-free consistency check) and reports what the filter keeps, by the
teacher's behaviour, and the hallucinated-claim rate of kept vs rejected rationales.

    .venv/bin/python benchmarks/world_ceiling.py [--n 800] [--seed 2026]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np

from _common import write_results
from rationalrewards.evaluate.metrics import accuracy
from rationalrewards.model import RationalRewardModel
from rationalrewards.parrot.consistency import consistency_conversation, parse_answer, rationale_view
from rationalrewards.parrot.hindsight import hindsight_conversation
from rationalrewards.parsing import parse_pairwise
from rationalrewards.rubric import aggregate
from rationalrewards.synthetic import EVAL_KEY, LabelerConfig, World, make_pairs, strip_eval
from rationalrewards.synthetic.teacher import SyntheticTeacher, check_claims

ROOT = Path(__file__).resolve().parent


def _verdict(diff: float | None, eps: float) -> str | None:
    if diff is None:
        return None
    return "A" if diff > eps else "B" if diff < -eps else "tie"


def _scores(pred: list[str | None], labels: list[str], tasks: list[str], seed: int) -> dict:
    pred_a = np.array(pred, dtype=object)
    lab = np.array(labels, dtype=object)
    task = np.array(tasks, dtype=object)
    ids = np.arange(len(lab))
    nt = lab != "tie"
    out = {
        "with_ties": accuracy(pred_a == lab, ids, seed=seed).to_dict(),
        "no_ties": accuracy(pred_a[nt] == lab[nt], ids[nt], seed=seed).to_dict(),
        "unparsed": int(sum(p is None for p in pred)),
        "predicted": dict(Counter(str(p) for p in pred)),
    }
    for t in ("t2i", "edit"):
        m = nt & (task == t)
        out[f"no_ties_{t}"] = accuracy(pred_a[m] == lab[m], ids[m], seed=seed).to_dict()
    return out


def _fmt(a: dict) -> str:
    if a["value"] is None:
        return "n/a"
    return f"{100 * a['value']:.1f} [{100 * a['ci_low']:.1f}, {100 * a['ci_high']:.1f}]"


def parrot_filter(world: World, pairs: list, seed: int) -> dict:
    """Hindsight (real labels) then the teacher's consistency check: what is kept, by behaviour."""
    teacher = SyntheticTeacher(world=world, seed=seed)
    rows = []
    for p in pairs:
        comp = teacher.generate([hindsight_conversation(p)])[0]
        rec = teacher.log[-1]
        text = comp.texts[0]
        c = parse_pairwise(text, p.task.value)
        ans = teacher.generate([consistency_conversation(p, rationale_view(c))])[0]
        kept = parse_answer(ans.texts[0]) == p.label
        claims = check_claims(text, p, world=world)
        rows.append(
            {
                "behaviour": rec["behaviour"],
                "kept": kept,
                "claims": len(claims),
                "false": sum(not x.supported for x in claims),
            }
        )
    by = {}
    for b in ("agree", "hallucinate", "inflate", "vague", "honest"):
        sel = [r for r in rows if r["behaviour"] == b]
        by[b] = {"n": len(sel), "kept": round(float(np.mean([r["kept"] for r in sel])), 4) if sel else None}

    def rate(sel):
        n = sum(r["claims"] for r in sel)
        return round(sum(r["false"] for r in sel) / n, 4) if n else None

    kept = [r for r in rows if r["kept"]]
    rejected = [r for r in rows if not r["kept"]]
    return {
        "pairs": len(rows),
        "retention": round(len(kept) / len(rows), 4) if rows else None,
        "by_behaviour": by,
        "hallucinated_claim_rate_kept": rate(kept),
        "hallucinated_claim_rate_rejected": rate(rejected),
        "rationales_with_a_false_claim_kept": round(float(np.mean([r["false"] > 0 for r in kept])), 4)
        if kept
        else None,
        "rationales_with_a_false_claim_rejected": (
            round(float(np.mean([r["false"] > 0 for r in rejected])), 4) if rejected else None
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=800, help="held-out pairs (half text-to-image, half edits)")
    ap.add_argument("--seed", type=int, default=2026, help="world seed of the held-out set")
    ap.add_argument("--parrot", type=int, default=400, help="pairs for the PARROT filter table (0: skip)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "world_ceiling.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    world = World()
    pairs = make_pairs(args.n, seed=args.seed, task="both", world=world)
    labels = [p.label for p in pairs]
    tasks = [p.task.value for p in pairs]
    truth = [p.meta[EVAL_KEY] for p in pairs]
    seen = [strip_eval(p) for p in pairs]  # what the judges get
    margin = LabelerConfig().tie_margin
    preds: dict[str, list[str | None]] = {}
    preds["hidden utility"] = [_verdict(t["utility_a"] - t["utility_b"], margin - 1e-12) for t in truth]
    preds["true rubric scores"] = [_verdict(aggregate(t["scores_a"]) - aggregate(t["scores_b"]), 1e-9) for t in truth]
    for judge in ("teacher", "generic"):
        model = RationalRewardModel(SyntheticTeacher(world=world, judge=judge))
        preds[f"{judge} pairwise"] = [c.preference for c in model.compare(seen)]
        ra = model.reward([p.sample_a() for p in seen])
        rb = model.reward([p.sample_b() for p in seen])
        preds[f"{judge} pointwise"] = [
            _verdict(a - b, 1e-9) if a is not None and b is not None else None for a, b in zip(ra, rb, strict=True)
        ]
    rng = random.Random(args.seed)
    coin = [rng.choice("AB") for _ in pairs]
    three = [rng.choice(("A", "B", "tie")) for _ in pairs]
    results = {name: _scores(p, labels, tasks, args.seed) for name, p in preds.items()}
    rnd = _scores(coin, labels, tasks, args.seed)
    rnd["with_ties"] = _scores(three, labels, tasks, args.seed)["with_ties"]
    results["random"] = rnd

    print(f"held-out pairs: {len(pairs)} ({dict(Counter(tasks))}), labels {dict(Counter(labels))}")
    print(f"{'judge':22} {'with ties':>22} {'no ties':>22} {'no ties t2i':>12} {'no ties edit':>13}")
    for name, r in results.items():
        t2i, edit = r["no_ties_t2i"]["value"], r["no_ties_edit"]["value"]
        print(f"{name:22} {_fmt(r['with_ties']):>22} {_fmt(r['no_ties']):>22} {100 * t2i:>12.1f} {100 * edit:>13.1f}")
    out = {
        "benchmark": "world_ceiling",
        "pairs": len(pairs),
        "world_seed": args.seed,
        "labels": dict(Counter(labels)),
        "tasks": dict(Counter(tasks)),
        "labeler": LabelerConfig().__dict__,
        "results": results,
    }
    if args.parrot:
        pf = parrot_filter(world, seen[: args.parrot], args.seed)
        out["parrot_filter"] = pf
        print(f"\nPARROT filter on {pf['pairs']} pairs (real labels): retention {pf['retention']}")
        print(f"{'teacher behaviour':18} {'n':>5} {'kept':>6}")
        for b, r in pf["by_behaviour"].items():
            kept = "" if r["kept"] is None else f"{r['kept']:.2f}"
            print(f"{b:18} {r['n']:>5} {kept:>6}")
        print(
            f"hallucinated-claim rate: kept {pf['hallucinated_claim_rate_kept']}, "
            f"rejected {pf['hallucinated_claim_rate_rejected']}"
        )
    out.update(
        seconds=round(time.perf_counter() - t0, 1),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        note="labels: Bradley-Terry around the hidden utility (LabelerConfig defaults); judges see no eval truth",
    )
    write_results(args.out, out)


if __name__ == "__main__":
    main()
