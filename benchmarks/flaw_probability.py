"""Whether a student's token probabilities carry the preference its greedy critiques do not.

The embedded students write the flawless critique for almost every image, so their greedy pointwise
rewards tie. This reads, for each held-out image and dimension, the student's distribution over how
the justification line opens (teacher-forced on its own greedy critique; with the world tokenizer an
opening is one token, such as "Clean" or "A grey noise blotch at the") and turns it into an expected
score: each opening weighted by the mean score the training targets give after it. The soft reward
of an image is the mean over its dimensions, and the pair's verdict the image with the higher soft
reward. If the images move these probabilities the right way, the verdicts beat chance even though
greedy decoding never shows it.

    .venv/bin/python benchmarks/flaw_probability.py --work build/perceive --mode anchored

Needs a build work folder of ``scripts/build_embedded_model.py`` (its held-out pairs, exported SFT data,
greedy evaluation ``eval-MODE.json`` and trained model). Writes ``benchmarks/results/flaw_probability_MODE.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, answer_encoding, build_module, machine, print_table, write_results

JUSTIFICATION = "## Justification:"


def opening_scores(tokenizer: Any, dataset: Any) -> dict[int, float]:
    """Each justification line's first token id -> the mean score the training targets give after it."""
    pattern = re.compile(rf"^({re.escape(JUSTIFICATION)}[^\n]*)\n## Score: ([0-9.]+)\n", re.M)
    seen: dict[int, list[float]] = {}
    for ex in dataset:
        answer = ex["messages"][-1]["content"]
        text = answer if isinstance(answer, str) else "".join(p.get("text") or "" for p in answer)
        for m in pattern.finditer(text):
            seen.setdefault(tokenizer(m.group(1) + "\n")["input_ids"][0], []).append(float(m.group(2)))
    return {t: sum(v) / len(v) for t, v in seen.items()}


def soft_reward(model: Any, processor: Any, conv: Any, answer: str, scores: dict[int, float]) -> float | None:
    """Mean over the answer's justification lines of the expected score under the model's distribution over
    line openings (renormalised over the openings seen in training); None if the answer has no such line."""
    import torch

    from rationalrewards.images import load_image

    images = [load_image(im) for im in conv.images()]
    prompt = processor.apply_chat_template(conv.to_hf(), add_generation_prompt=True, tokenize=False)
    enc, n_prompt = answer_encoding(processor, prompt, answer, images)
    ids = enc["input_ids"][0].tolist()
    tok = processor.tokenizer
    positions = [i for i in range(n_prompt, len(ids)) if tok.decode([ids[i]]).startswith(JUSTIFICATION)]
    if not positions:
        return None
    with torch.no_grad():
        logits = model(**enc).logits[0]
    keys = sorted(scores)
    probs = torch.softmax(logits[[p - 1 for p in positions]].float(), -1)[:, keys]
    probs = probs / probs.sum(-1, keepdim=True)
    expected = probs @ torch.tensor([scores[k] for k in keys])
    return float(expected.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="a build work folder")
    ap.add_argument("--mode", default="anchored", choices=("anchored", "direct"))
    ap.add_argument("--pairs", type=int, default=200, help="held-out pairs (the first N)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="default: results/flaw_probability_MODE.json")
    args = ap.parse_args()
    args.out = args.out or RESULTS_DIR / f"flaw_probability_{args.mode}.json"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch
    from transformers import AutoModelForImageTextToText

    from rationalrewards.models.processor import load_processor
    from rationalrewards.templates import get_template

    torch.set_num_threads(args.threads)
    build = build_module()
    model_dir = args.work / f"model-{args.mode}"
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    processor = load_processor(model_dir)
    train = datasets.load_from_disk(str(args.work / args.mode / "sft" / "hf"))["train"]
    scores = opening_scores(processor.tokenizer, train)
    held = build.load_data(args.work / "data" / "eval.parquet")[: args.pairs]
    ev = json.loads((args.work / f"eval-{args.mode}.json").read_text(encoding="utf-8"))["pointwise"][: args.pairs]
    tpl = get_template(build.TEMPLATE)

    def verdict(a: float | None, b: float | None) -> str | None:
        return None if a is None or b is None else "A" if a > b else "B" if b > a else "tie"

    rows, soft, greedy = [], [], []
    for pair, rec in zip(held, ev, strict=True):
        ra = soft_reward(model, processor, tpl.pointwise(pair.sample_a()), rec["text_a"] or "", scores)
        rb = soft_reward(model, processor, tpl.pointwise(pair.sample_b()), rec["text_b"] or "", scores)
        rows.append(
            {"label": pair.label, "soft_a": ra, "soft_b": rb, "greedy_a": rec["reward_a"], "greedy_b": rec["reward_b"]}
        )
        if pair.label in ("A", "B"):  # a tie or a missing verdict counts wrong
            soft.append(verdict(ra, rb) == pair.label)
            greedy.append(verdict(rec["reward_a"], rec["reward_b"]) == pair.label)
    table = []
    for name, correct in (("greedy pointwise rewards", greedy), ("expected score over line openings", soft)):
        a = build._acc(correct)
        table.append({"verdict": name, "acc": 100 * a["value"], "low": 100 * a["ci_low"], "high": 100 * a["ci_high"],
                      "n": a["total"]})  # fmt: skip
    cols = [("verdict", "verdict", "s"), ("acc %", "acc", ".1f"), ("95% CI low", "low", ".1f"),
            ("high", "high", ".1f"), ("pairs", "n", "d")]  # fmt: skip
    print_table(table, cols)
    write_results(
        args.out,
        {
            "machine": machine(),
            "model": str(model_dir),
            "openings": len(scores),
            "summary": table,
            "soft_ties": sum(verdict(r["soft_a"], r["soft_b"]) == "tie" for r in rows),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
