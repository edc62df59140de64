"""How much a student's critiques depend on its images: teacher-forced loss with the right images vs swapped ones.

For each model folder, the mean assistant-token loss on SFT examples of an exported PARROT dataset
(``rationalrewards parrot export``: chat ``messages`` + ``images``) is measured twice: with each example's
own images, and with the images of another example of the same shape (a fixed random permutation). A
student that reads its images has a lower loss with the right ones; the gap (swapped - true, nats per
token) is how much the images tell it. Greedy decoding can still ignore a small gap: the most likely
critique stays "no flaw" until the evidence is strong.

    .venv/bin/python benchmarks/image_use.py --data build/perceive/anchored/sft \\
        src/rationalrewards/models/embedded build/perceive/model-anchored build/perceive/model-direct

Writes ``benchmarks/results/image_use.json``.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, answer_encoding, machine, print_table, write_results


def example_loss(model: Any, processor: Any, example: dict[str, Any], images: list[Any]) -> float:
    """Mean loss over the assistant answer's tokens of ``example`` shown with ``images``."""
    import torch

    messages = example["messages"]
    full = processor.apply_chat_template(messages, tokenize=False)
    prompt = processor.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently alone and before its answer")
    enc, n_prompt = answer_encoding(processor, prompt, full[len(prompt) :], images)
    labels = enc["input_ids"].clone()
    labels[:, :n_prompt] = -100
    with torch.no_grad():
        return float(model(**enc, labels=labels).loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="checkpoint folders")
    ap.add_argument("--data", type=Path, required=True, help="an exported SFT folder (or its hf/ subfolder)")
    ap.add_argument("--examples", type=int, default=120, help="examples per image count (1, 2, 3 images)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "image_use.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch
    from transformers import AutoModelForImageTextToText

    from rationalrewards.models.processor import load_processor

    torch.set_num_threads(args.threads)
    folder = args.data / "hf" if (args.data / "hf").is_dir() else args.data
    ds = datasets.load_from_disk(str(folder))
    ds = ds["train"] if hasattr(ds, "keys") else ds
    rng = random.Random(args.seed)
    order = list(range(len(ds)))
    rng.shuffle(order)
    groups: dict[int, list[dict[str, Any]]] = {}
    for i in order:
        ex = ds[i]
        group = groups.setdefault(len(ex["images"]), [])
        if len(group) < args.examples:
            group.append(ex)
    # swap images within a group (same number of images), never an example with itself
    swaps = {n: [(k + 1 + rng.randrange(len(g) - 1)) % len(g) if len(g) > 1 else k for k in range(len(g))]
             for n, g in groups.items()}  # fmt: skip

    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "models"}
    rows, record = [], {"machine": machine(), "data": str(folder), "config": config, "models": {}}
    for path in args.models:
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=torch.float32).eval()
        processor = load_processor(path)
        per: dict[str, Any] = {}
        for n, group in sorted(groups.items()):
            true = [example_loss(model, processor, ex, ex["images"]) for ex in group]
            others = [group[j]["images"] for j in swaps[n]]
            swapped = [example_loss(model, processor, ex, imgs) for ex, imgs in zip(group, others, strict=True)]
            t, s = sum(true) / len(true), sum(swapped) / len(swapped)
            per[f"{n} image(s)"] = {"examples": len(group), "true": round(t, 4), "swapped": round(s, 4)}
            rows.append({"model": str(path), "images": n, "n": len(group), "true": t, "swapped": s, "gap": s - t})
        record["models"][str(path)] = per
        print(f"{path}: {per}", flush=True)
    print_table(
        rows,
        [("model", "model", "s"), ("images", "images", "d"), ("examples", "n", "d"),
         ("loss, own images", "true", ".3f"), ("loss, swapped", "swapped", ".3f"), ("gap", "gap", "+.3f")],
    )  # fmt: skip
    write_results(args.out, record)


if __name__ == "__main__":
    main()
