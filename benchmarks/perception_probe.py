"""What the embedded model's vision tower can see: probes of world-image facts from its image tokens.

The embedded student, trained on critiques alone, barely uses its images (issue: PARROT). This script
measures why. Each arm puts linear heads (on mean- and max-pooled image tokens) over a Qwen3-VL
vision tower of the embedded model's size (hidden 128, 2 layers, output 256) and trains them on
``synthetic.perception`` targets of fresh world images; held-out images come from another seed:

  shipped, frozen        the shipped embedded model's tower, frozen (what it learnt from critiques)
  random, frozen         a seeded untrained tower (patch 16), frozen
  patch 16, trained      the same tower trained with the heads (16 image tokens per 128 px image)
  patch 8, trained       a tower with 8-pixel patches, trained with the heads (64 image tokens)

Reported per target: held-out accuracy for one-class targets (background, colour intensity, any
defect) and micro-F1 for set targets (colours present, colour-shape combinations present), beside
the majority-class baseline (F1 0 for predicting nothing).

    .venv/bin/python benchmarks/perception_probe.py            # 6000 training images, 400 steps
    .venv/bin/python benchmarks/perception_probe.py --quick    # 1500 images, 100 steps

Writes ``benchmarks/results/perception_probe.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine, print_table, write_results

IMAGE_SIDE = 128
TRAIN_SEED, TEST_SEED = 7, 99


def run_arm(tower: Any, train_tower: bool, data: dict[str, Any], steps: int, lr: float, seed: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from rationalrewards.synthetic.perception import TARGETS

    torch.manual_seed(seed)
    pv, grid, y = data["train"]
    pvt, _, yt = data["test"]
    width = 2 * tower.config.out_hidden_size
    heads = torch.nn.ModuleDict({k: torch.nn.Linear(width, len(c)) for k, (_, c) in TARGETS.items()})
    tower.train(train_tower)
    for p in tower.parameters():
        p.requires_grad_(train_tower)
    params = list(heads.parameters()) + (list(tower.parameters()) if train_tower else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)

    def features(x: Any) -> Any:
        out = tower(x.reshape(-1, x.shape[-1]), grid_thw=grid.repeat(x.shape[0], 1)).pooler_output
        f = out.view(x.shape[0], -1, out.shape[-1])
        return torch.cat([f.mean(1), f.amax(1)], -1)

    def loss(f: Any, yb: dict[str, Any]) -> Any:
        total = 0.0
        for k, (kind, _) in TARGETS.items():
            logits = heads[k](f)
            total = total + (
                F.cross_entropy(logits, yb[k])
                if kind == "single"
                else F.binary_cross_entropy_with_logits(logits, yb[k])
            )
        return total

    cached = None
    if not train_tower:
        with torch.no_grad():
            cached = torch.cat([features(pv[i : i + 256]) for i in range(0, len(pv), 256)])
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(pv), (64,), generator=g)
        f = cached[idx] if cached is not None else features(pv[idx])
        batch_loss = loss(f, {k: v[idx] for k, v in y.items()})
        opt.zero_grad()
        batch_loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    tower.eval()
    with torch.no_grad():
        f = torch.cat([features(pvt[i : i + 256]) for i in range(0, len(pvt), 256)])
        scores = {}
        for k, (kind, _) in TARGETS.items():
            logits = heads[k](f)
            if kind == "single":
                scores[k] = float((logits.argmax(-1) == yt[k]).float().mean())
            else:
                pred = (logits > 0).float()
                tp = float((pred * yt[k]).sum())
                scores[k] = 2 * tp / max(1.0, float(pred.sum() + yt[k].sum()))
    return {"scores": scores, "train_s": round(seconds, 1), "final_loss": round(batch_loss.item(), 4)}


def baselines(y_train: dict[str, Any], y_test: dict[str, Any]) -> dict[str, float]:
    from rationalrewards.synthetic.perception import TARGETS

    out = {}
    for k, (kind, _) in TARGETS.items():
        if kind == "single":
            top = Counter(y_train[k].tolist()).most_common(1)[0][0]
            out[k] = float((y_test[k] == top).float().mean())
        else:
            out[k] = 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6000, help="training images")
    ap.add_argument("--test", type=int, default=500, help="held-out images")
    ap.add_argument("--steps", type=int, default=400, help="optimizer steps (batch 64)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="1500 images, 100 steps")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "perception_probe.json")
    args = ap.parse_args()
    if args.quick:
        args.images, args.test, args.steps = 1500, 200, 100
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rationalrewards.models.embedded import EMBEDDED_DIR
    from rationalrewards.models.processor import load_processor
    from rationalrewards.models.tiny import make_tiny_qwen3vl
    from rationalrewards.models.vision_pretrain import encode_images, perception_targets
    from rationalrewards.synthetic.perception import TARGETS, perception_records

    torch.set_num_threads(args.threads)
    train_recs = list(perception_records(args.images, seed=TRAIN_SEED))
    test_recs = list(perception_records(args.test, seed=TEST_SEED))
    # the pooled targets only (the probe's heads sit on pooled tokens)
    y_train = {k: v for k, v in perception_targets(train_recs, grid=1).items() if k in TARGETS}
    y_test = {k: v for k, v in perception_targets(test_recs, grid=1).items() if k in TARGETS}

    def towers() -> Any:
        from transformers import AutoModelForImageTextToText

        shipped = AutoModelForImageTextToText.from_pretrained(EMBEDDED_DIR, dtype=torch.float32)
        yield "shipped, frozen", shipped.model.visual, load_processor(EMBEDDED_DIR), False
        pixels = IMAGE_SIDE * IMAGE_SIDE
        for patch, train in ((16, False), (16, True), (8, True)):
            model, processor = make_tiny_qwen3vl(
                seed=0, vocab_size=512, text_layers=1, min_pixels=pixels, max_pixels=pixels, patch_size=patch
            )
            name = f"patch {patch}, trained" if train else "random, frozen"
            yield name, model.model.visual, processor, train

    rows = [{"arm": "majority baseline", **{k: round(100 * v, 1) for k, v in baselines(y_train, y_test).items()}}]
    record: dict[str, Any] = {"machine": machine(), "config": vars(args), "arms": {}}
    for name, tower, processor, train in towers():
        pv, grid = encode_images(processor, [r.render() for r in train_recs])
        pvt, _ = encode_images(processor, [r.render() for r in test_recs])
        data = {"train": (pv, grid, y_train), "test": (pvt, grid, y_test)}
        res = run_arm(tower, train, data, args.steps, args.lr, seed=0)
        res["image_tokens"] = int(pv.shape[1] // 4)
        record["arms"][name] = res
        rows.append(
            {"arm": name, "tokens": res["image_tokens"], **{k: round(100 * v, 1) for k, v in res["scores"].items()}}
        )
        print(f"{name}: {res}", flush=True)
    record["baseline"] = rows[0]
    cols = [("arm", "arm", "s"), ("tokens", "tokens", "d")] + [(k, k, ".1f") for k in TARGETS]
    print_table(rows, cols)
    write_results(args.out, record)


if __name__ == "__main__":
    main()
