"""The PARROT ablation in the synthetic world, on held-out pairs.

Systems, all judged on the same held-out world pairs (tie labels left out; a predicted tie or an
unparsed verdict counts as wrong; 95% bootstrap CIs over pairs):

- PARROT student: the embedded model (``scripts/build_embedded_model.py``, mode ``anchored``);
- direct-distillation student: the same base, tokenizer, data pairs, optimizer steps and batch size,
  trained on the teacher's unanchored critiques (no label in the prompt, no consistency filter);
- Bradley-Terry: a scalar reward model (``rationalrewards.baselines.bt``) trained on the same pairs' labels;
- the generic-judge teacher (``synthetic-teacher`` with ``judge=generic``) and the privileged teacher;
- the noise ceiling: the hidden human utility itself (how often the noisy labels follow it).

Columns: preference accuracy in pairwise mode and from two pointwise rewards, parse success, and the
hallucination rate of the critiques' defect claims (``synthetic.teacher.check_claims``: a claim is
hallucinated when no true finding of that image matches it). A second table compares the hallucination
rate of the PARROT rationales the consistency filter kept with those it rejected, all of them
(unfiltered) and the direct-distillation rationales.

    .venv/bin/python benchmarks/parrot_world.py                   # reuses build/embedded, trains what is missing
    .venv/bin/python benchmarks/parrot_world.py --work /tmp/w --n-train 200 --steps 40   # a quick check
    .venv/bin/python benchmarks/parrot_world.py --work build/perceive --patch-size 8 --perceive-steps 600 \
        --freeze-vision --max-length 1024 --out benchmarks/results/parrot_world_perceive.json   # vision pre-training

Training both students takes most of the time (see ``scripts/build_embedded_model.py``); every stage is
reused on a rerun with the same settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import RESULTS_DIR, ROOT, build_module

RESULTS_JSON = RESULTS_DIR / "parrot_world.json"
RESULTS_MD = RESULTS_DIR / "parrot_world.md"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------- accuracy


def acc(correct: list[bool]) -> dict[str, Any]:
    from rationalrewards.evaluate.metrics import accuracy

    return accuracy(np.asarray(correct, dtype=bool)).to_dict()


def paired_diff(a: list[bool], b: list[bool], n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Accuracy of a minus accuracy of b over the same pairs, with a paired bootstrap 95% CI."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"diff": float(x.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def _verdict(ra: float | None, rb: float | None) -> str | None:
    if ra is None or rb is None:
        return None
    return "A" if ra > rb else "B" if rb > ra else "tie"


def correctness(labels: list[str | None], preds: list[str | None]) -> list[bool]:
    return [p == lab for lab, p in zip(labels, preds, strict=True) if lab in ("A", "B")]


# ---------------------------------------------------------------------------- hallucination


@dataclasses.dataclass
class Halluc:
    rationales: int = 0
    claims: int = 0
    hallucinated: int = 0
    with_any: int = 0
    unchecked: int = 0

    def add(self, claims: list[Any] | None) -> None:
        self.rationales += 1
        if claims is None:
            self.unchecked += 1
            return
        bad = sum(1 for c in claims if not c.supported)
        self.claims += len(claims)
        self.hallucinated += bad
        self.with_any += bad > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rationales": self.rationales,
            "claims": self.claims,
            "hallucinated": self.hallucinated,
            "rate": self.hallucinated / self.claims if self.claims else None,
            "rationales_with_any": self.with_any / max(1, self.rationales - self.unchecked),
            "unchecked": self.unchecked,
        }


def _claims(text: str | None, pair_or_sample: Any, registry: list[Any]) -> list[Any] | None:
    from rationalrewards.synthetic.teacher import check_claims

    if not text:
        return None
    try:
        return check_claims(text, pair_or_sample, registry=registry)
    except ValueError:
        return None


def rationale_hallucinations(work: Path, mode: str, pairs_by_key: dict[str, Any], registry: list[Any]) -> dict:
    """Hallucination rates of the teacher's training rationales: kept vs rejected by the filter (and all)."""
    from rationalrewards.store import JsonlStore

    groups = {"kept": Halluc(), "rejected": Halluc(), "all": Halluc()}
    hind = {r["id"]: r for r in JsonlStore(work / mode / "hindsight.jsonl")}
    latest: dict[str, dict] = {}
    for rec in JsonlStore(work / mode / "filter.jsonl"):
        latest[rec["hindsight_id"]] = rec
    for hid, frec in latest.items():
        pair = pairs_by_key.get(frec["pair_key"])
        h = hind.get(hid)
        if pair is None or h is None:
            continue
        for verdict in frec["rationales"]:
            claims = _claims(h["samples"][verdict["index"]]["text"], pair, registry)
            groups["all"].add(claims)
            groups["kept" if verdict["kept"] else "rejected"].add(claims)
    return {k: v.to_dict() for k, v in groups.items()}


# ---------------------------------------------------------------------------- systems


def teacher_eval(build: Any, held: list[Any], eval_path: Path, judge: str) -> dict[str, Any]:
    """Pairwise and pointwise verdicts of the synthetic teacher (privileged or generic) on the held-out pairs."""
    from rationalrewards.model import RationalRewardModel

    backend = build.teacher([eval_path], judge=judge, log=False)
    rm = RationalRewardModel(backend, template=build.TEMPLATE)
    return build.verdicts(rm, held)


def system_row(name: str, ev: dict[str, Any], held: list[Any], registry: list[Any]) -> dict[str, Any]:
    labels = [p.label for p in held]
    row: dict[str, Any] = {"system": name}
    pw = ev.get("pairwise")
    if pw is not None:
        row["pairwise_correct"] = correctness(labels, [r["pred"] for r in pw])
        row["pairwise_accuracy"] = acc(row["pairwise_correct"])
        row["pairwise_ties"] = sum(r["pred"] == "tie" for r in pw) / len(pw)
        h = Halluc()
        for p, r in zip(held, pw, strict=True):
            h.add(_claims(r["text"], p, registry) if r["parse"] != "failed" else None)
        row["hallucination"] = h.to_dict()
    pt = ev.get("pointwise")
    if pt is not None:
        row["pointwise_correct"] = correctness(labels, [_verdict(r["reward_a"], r["reward_b"]) for r in pt])
        row["pointwise_accuracy"] = acc(row["pointwise_correct"])
        row["pointwise_ties"] = sum(_verdict(r["reward_a"], r["reward_b"]) == "tie" for r in pt) / len(pt)
    parsed = [r["parse"] == "ok" for r in pw or []] + [r[k] == "ok" for r in pt or [] for k in ("parse_a", "parse_b")]
    row["parse_ok"] = sum(parsed) / len(parsed) if parsed else None
    return row


def bt_row(build: Any, train: list[Any], held: list[Any], seed: int, work: Path) -> dict[str, Any]:
    from rationalrewards.baselines.bt import BradleyTerryRewardModel, BTConfig

    path = work / "bt.pt"
    cfg = BTConfig(seed=seed)
    t0 = time.perf_counter()
    if path.is_file() and BradleyTerryRewardModel.load(path).config == cfg:
        bt = BradleyTerryRewardModel.load(path)
    else:
        bt = BradleyTerryRewardModel(cfg).fit(train)
        bt.save(path)
    preds = bt.compare(held)
    ties = sum(p == "tie" for p in preds) / len(preds)
    correct = correctness([p.label for p in held], preds)
    return {
        "system": "Bradley-Terry (scalar CNN + bag of words)",
        "pointwise_correct": correct,
        "pointwise_accuracy": acc(correct),
        "pointwise_ties": ties,
        "parse_ok": None,
        "train_s": round(time.perf_counter() - t0, 1),
        "final_loss": bt.history[-1]["loss"] if bt.history else None,
        "config": dataclasses.asdict(cfg),
    }


def ceiling_row(held_truth: list[Any]) -> dict[str, Any]:
    from rationalrewards.synthetic import EVAL_KEY

    preds = []
    for p in held_truth:
        t = p.meta[EVAL_KEY]
        preds.append(_verdict(t["utility_a"], t["utility_b"]))
    correct = correctness([p.label for p in held_truth], preds)
    name = "noise ceiling (hidden utility)"
    return {"system": name, "pointwise_correct": correct, "pointwise_accuracy": acc(correct)}


# ---------------------------------------------------------------------------- report


def _pct(a: dict[str, Any] | None) -> str:
    if not a or a.get("value") is None:
        return "-"
    return f"{100 * a['value']:.1f} [{100 * a['ci_low']:.1f}, {100 * a['ci_high']:.1f}]"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def markdown(result: dict[str, Any]) -> str:
    c = {**{"patch_size": 16, "image_side": 128, "perceive_steps": 0, "freeze_vision": False}, **result["config"]}
    lines = [
        "### PARROT ablation in the synthetic world",
        "",
        f"Held-out world pairs: {result['held_out']['pairs']} ({result['held_out']['non_tie']} without a tie label: "
        "accuracies are over these; a predicted tie or an unparsed verdict is wrong). 95% bootstrap CIs over pairs. "
        "Greedy decoding for the students.",
        "",
        "| system | pairwise acc % | pointwise-derived acc % | parse ok | ties predicted (pairwise / pointwise) "
        "| hallucinated claims |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["systems"]:
        h = r.get("hallucination")
        halluc = f"{_rate(h['rate'])} of {h['claims']}" if h else "-"
        ties = f"{_rate(r.get('pairwise_ties'))} / {_rate(r.get('pointwise_ties'))}"
        lines.append(
            f"| {r['system']} | {_pct(r.get('pairwise_accuracy'))} | {_pct(r.get('pointwise_accuracy'))} | "
            f"{_rate(r.get('parse_ok'))} | {ties} | {halluc} |"
        )
    d = result["parrot_minus_direct"]
    lines += [
        "",
        f"PARROT student minus direct distillation (pairwise mode): {100 * d['pairwise']['diff']:+.1f} points "
        f"[{100 * d['pairwise']['ci_low']:+.1f}, {100 * d['pairwise']['ci_high']:+.1f}]; pointwise-derived: "
        f"{100 * d['pointwise']['diff']:+.1f} [{100 * d['pointwise']['ci_low']:+.1f}, "
        f"{100 * d['pointwise']['ci_high']:+.1f}] (paired bootstrap).",
        "",
        "Training rationales (the teacher's, on the training pairs):",
        "",
        "| rationales | n | defect claims | hallucinated | rate | with any |",
        "|---|---|---|---|---|---|",
    ]
    for name, h in result["rationales"].items():
        lines.append(
            f"| {name} | {h['rationales']} | {h['claims']} | {h['hallucinated']} | {_rate(h['rate'])} | "
            f"{_rate(h['rationales_with_any'])} |"
        )
    ret = result["retention"]
    lines += [
        "",
        f"Consistency-filter retention: {_rate(ret['retention'])} ({ret['kept']}/{ret['n']} rationales). "
        f"Filtered vs unfiltered hallucination rate: {_rate(result['hallucination_reduction'])} lower.",
        "",
        f"Both students: the same base model and tokenizer, {result['students']['steps']} steps x batch "
        f"{result['students']['batch_size']} (the same number of training examples seen; "
        f"{result['students']['unique_examples']['anchored']} unique PARROT examples, "
        f"{result['students']['unique_examples']['direct']} direct); training took "
        f"{result['students']['train']['anchored']['wall_s'] / 60:.0f} and "
        f"{result['students']['train']['direct']['wall_s'] / 60:.0f} min. Vision: patch {c['patch_size']} "
        f"({(c['image_side'] // (2 * c['patch_size'])) ** 2} tokens per image), perception pre-training "
        f"{c['perceive_steps'] or 'none'}{' steps' if c['perceive_steps'] else ''}, tower "
        f"{'frozen' if c['freeze_vision'] else 'trained'} in the SFT.",
        "",
        f"Targets: PARROT >= direct + 5 points: **{_met(result['targets']['parrot_beats_direct_by_5'])}**; "
        f"filtered rationales hallucinate >= 50% less: **{_met(result['targets']['halluc_halved'])}**.",
        "",
        f"Reproduce: `{result['command']}` ({result['machine']}; taken on a shared 2-core machine under load; "
        f"this run {result['wall_s'] / 60:.0f} min after the students' builds above, which it reuses or makes).",
        "",
    ]
    return "\n".join(lines)


def _args_without_work(argv: list[str]) -> list[str]:
    """The command-line arguments minus ``--work`` (a local folder: the results do not depend on it)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--work":
            skip = True
        elif not a.startswith("--work="):
            out.append(a)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "embedded", help="build work folder (reused)")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-eval", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--patch-size", type=int, default=None, help="students' vision patch side (build default 16)")
    ap.add_argument("--perceive-steps", type=int, default=None, help="perception pre-training steps (default 0)")
    ap.add_argument("--freeze-vision", action="store_true", default=None, help="freeze the vision tower in the SFT")
    ap.add_argument("--max-length", type=int, default=None, help="SFT sequence length limit")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    ap.add_argument("--out", type=Path, default=RESULTS_JSON)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    build = build_module()
    cfg = build.BuildConfig()
    for k in ("n_train", "n_eval", "steps", "patch_size", "perceive_steps", "freeze_vision", "max_length"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    t0 = time.perf_counter()
    records = {mode: build.build(cfg, args.work, mode=mode) for mode in ("anchored", "direct")}
    data = build.make_data(cfg, args.work)
    train = build.load_data(data["train"])
    held = build.load_data(data["eval"])
    held_truth = build.load_data(data["eval"], strip=False)
    from rationalrewards.synthetic.world import Registry, registry_path

    # loaded once: check_claims would read a registry file on every call
    reg_train = [Registry.load(registry_path(data["train"]))]
    reg_eval = [Registry.load(registry_path(data["eval"]))]

    systems = []
    parrot = "PARROT student (embedded model)" if cfg == build.BuildConfig() else "PARROT student (this build)"
    for name, mode in ((parrot, "anchored"), ("direct-distillation student", "direct")):
        ev = json.loads((args.work / f"eval-{mode}.json").read_text(encoding="utf-8"))
        systems.append(system_row(name, ev, held, reg_eval))
    _log("Bradley-Terry")
    systems.append(bt_row(build, train, held, cfg.seed, args.work))
    _log("teachers")
    for name, judge in (("generic-judge teacher", "generic"), ("privileged teacher", "teacher")):
        systems.append(system_row(name, teacher_eval(build, held, data["eval"], judge), held, reg_eval))
    systems.append(ceiling_row(held_truth))

    _log("rationale hallucinations")
    by_key = {p.key(): p for p in train}
    anchored = rationale_hallucinations(args.work, "anchored", by_key, reg_train)
    direct = rationale_hallucinations(args.work, "direct", by_key, reg_train)
    rationales = {
        "PARROT kept (filtered)": anchored["kept"],
        "PARROT rejected": anchored["rejected"],
        "PARROT all (unfiltered)": anchored["all"],
        "direct distillation (all kept)": direct["all"],
    }
    kept_rate, all_rate = anchored["kept"]["rate"], anchored["all"]["rate"]
    reduction = 1 - kept_rate / all_rate if kept_rate is not None and all_rate else None

    diff = {m: paired_diff(systems[0][f"{m}_correct"], systems[1][f"{m}_correct"]) for m in ("pairwise", "pointwise")}
    ret = records["anchored"]["data"]["retention"]
    result = {
        "benchmark": "parrot_world",
        "command": " ".join(["python benchmarks/parrot_world.py", *_args_without_work(sys.argv[1:])]),
        "machine": f"{platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}",
        "config": dataclasses.asdict(cfg),
        "held_out": {"pairs": len(held), "non_tie": sum(p.label in ("A", "B") for p in held)},
        "systems": [{k: v for k, v in s.items() if not k.endswith("_correct")} for s in systems],
        "parrot_minus_direct": diff,
        "rationales": rationales,
        "retention": ret,
        "hallucination_reduction": reduction,
        "students": {
            "steps": cfg.steps,
            "batch_size": cfg.batch_size,
            "unique_examples": {m: records[m]["data"]["examples"] for m in records},
            "train": {m: {k: records[m]["train"][k] for k in ("loss_first", "loss_last", "wall_s")} for m in records},
        },
        "targets": {
            "parrot_beats_direct_by_5": diff["pairwise"]["diff"] >= 0.05,
            "halluc_halved": reduction is not None and reduction >= 0.5,
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    for k in ("anchored", "direct"):
        ex = result["students"]["unique_examples"][k]
        result["students"]["unique_examples"][k] = sum(ex.values()) if isinstance(ex, dict) else ex
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    md = markdown(result)
    (args.out.with_suffix(".md")).write_text(md, encoding="utf-8")
    print(md)
    print(f"results: {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
