"""Perception pre-training of a from-scratch vision tower on synthetic-world images.

A real student starts from a VLM that already sees; the embedded model starts from random weights, and
critique SFT alone never teaches its tower to see (``benchmarks/perception_probe.py``). This stage trains
the tower of a Qwen3-VL (in place) on what is truly visible in world images
(``synthetic.perception``): pooled heads for the background, colour intensity, defects by kind,
colours and colour-shape combinations present, and per-token heads (one cell of the canvas per image
token) for which colour-shape is centred there, which colour covers it and where the sign is. The
per-token heads are applied to the tower's output and to each deepstack feature, so every input the
language model gets from the tower carries the same local, bound code. The heads are thrown away.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class VisionPretrainConfig:
    """Settings of the perception pre-training stage."""

    images: int = 6000  # training images (generator outputs of both tasks and edit sources)
    held_out: int = 400  # held-out images, from another world seed
    steps: int = 500  # optimizer steps
    batch_size: int = 64  # images per step
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0  # heads' initialisation and batch order
    data_seed: int = 7  # world seed of the training images
    held_out_seed: int = 99  # world seed of the held-out images

    def __post_init__(self) -> None:
        for name in ("images", "held_out", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"VisionPretrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"VisionPretrainConfig.learning_rate must be > 0, got {self.learning_rate}")


def encode_images(processor: Any, images: list[Any]) -> tuple[Any, Any]:
    """Pixel patches ``[n, patches, dim]`` of same-sized ``images`` and their (shared) ``image_grid_thw`` row."""
    enc = processor.image_processor(images=images, return_tensors="pt")
    pv, grid = enc["pixel_values"], enc["image_grid_thw"]
    if not bool((grid == grid[:1]).all()):
        raise ValueError("encode_images needs images of one size (one patch grid)")
    return pv.view(len(images), -1, pv.shape[-1]), grid[:1]


def perception_targets(records: list[Any], grid: int) -> dict[str, Any]:
    """Tensors of every pooled target (class index or multi-hot) and every per-cell target of ``records``."""
    import torch

    from ..synthetic.perception import ARTEFACT_KINDS, DENSE_TARGETS, TARGETS, artefact_kinds, cell_labels, labels

    rows = [labels(r) for r in records]
    out: dict[str, Any] = {}
    for name, (kind, classes) in TARGETS.items():
        if kind == "single":
            out[name] = torch.tensor([classes.index(row[name]) for row in rows])
        else:
            out[name] = torch.tensor([[float(c in row[name]) for c in classes] for row in rows])
    out["artefacts"] = torch.tensor([[float(k in artefact_kinds(r)) for k in ARTEFACT_KINDS] for r in records])
    cells = [cell_labels(r, grid) for r in records]
    for name in DENSE_TARGETS:
        out[f"cell_{name}"] = torch.tensor([c[name] for c in cells])
    return out


def _heads(width: int) -> tuple[Any, dict[str, tuple[str, bool]]]:
    """The heads (``ModuleDict``) and each target's (kind, per-cell?): kind single (softmax) or multi (sigmoid)."""
    import torch

    from ..synthetic.perception import ARTEFACT_KINDS, DENSE_TARGETS, TARGETS

    spec = {name: (kind, len(classes), False) for name, (kind, classes) in TARGETS.items()}
    spec["artefacts"] = ("multi", len(ARTEFACT_KINDS), False)
    spec |= {f"cell_{name}": (kind, len(classes), True) for name, (kind, classes) in DENSE_TARGETS.items()}
    heads = torch.nn.ModuleDict(
        {k: torch.nn.Linear(width if cell else 2 * width, n) for k, (_, n, cell) in spec.items()}
    )
    return heads, {k: (kind, cell) for k, (kind, _, cell) in spec.items()}


def _features(tower: Any, pixels: Any, grid: Any) -> list[Any]:
    """Per-image token features ``[n, tokens, width]``: the tower's output, then each deepstack feature."""
    out = tower(pixels.reshape(-1, pixels.shape[-1]), grid_thw=grid.repeat(pixels.shape[0], 1))
    levels = [out.pooler_output] + list(out.deepstack_features or [])
    return [f.view(pixels.shape[0], -1, f.shape[-1]) for f in levels]


def _pooled(levels: list[Any]) -> Any:
    """Mean- and max-pooled tokens of the tower's output: what the image-level heads see."""
    import torch

    return torch.cat([levels[0].mean(1), levels[0].amax(1)], -1)


def _pos_weights(y: dict[str, Any], kinds: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """Per-class positive weights (negatives / positives, in [1, 20]) of the set targets: rare classes count."""
    out = {}
    for name, (kind, _) in kinds.items():
        if kind == "multi":
            flat = y[name].reshape(-1, y[name].shape[-1]).float()
            p = flat.mean(0).clamp(1e-3, 1 - 1e-3)
            out[name] = ((1 - p) / p).clamp(1.0, 20.0)
    return out


def _loss(heads: Any, kinds: dict[str, tuple[str, bool]], levels: list[Any], y: dict[str, Any], pos: dict) -> Any:
    import torch.nn.functional as F

    pooled = _pooled(levels)
    total = 0.0
    for name, (kind, cell) in kinds.items():
        for f in levels if cell else [pooled]:
            logits = heads[name](f)
            if kind == "single":
                term = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[name].reshape(-1))
            else:
                term = F.binary_cross_entropy_with_logits(logits, y[name], pos_weight=pos[name])
            total = total + term / (len(levels) if cell else 1)
    return total


def _scores(heads: Any, kinds: dict[str, tuple[str, bool]], levels: list[Any], y: dict[str, Any]) -> dict[str, float]:
    """Held-out scores on the tower's output: accuracy for one-class image targets, micro-F1 otherwise.

    For per-cell one-class targets the F1 is over the cells that are not "none" (index 0) in truth or
    prediction, so an all-"none" guess scores 0.
    """
    pooled = _pooled(levels)
    scores = {}
    for name, (kind, cell) in kinds.items():
        logits = heads[name](levels[0] if cell else pooled)
        if kind == "single" and not cell:
            scores[name] = float((logits.argmax(-1) == y[name]).float().mean())
        elif kind == "single":
            pred, true = logits.argmax(-1), y[name]
            tp = float(((pred == true) & (true > 0)).sum())
            scores[name] = 2 * tp / max(1.0, float((pred > 0).sum() + (true > 0).sum()))
        else:
            pred = (logits > 0).float()
            tp = float((pred * y[name]).sum())
            scores[name] = 2 * tp / max(1.0, float(pred.sum() + y[name].sum()))
    return scores


def pretrain_vision(
    model: Any,
    processor: Any,
    config: VisionPretrainConfig | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train ``model``'s vision tower in place on world perception targets; returns a record of the run.

    The record holds the config, the token grid, the loss curve, held-out scores before and after
    (accuracy or micro-F1 per target) and wall times. ``on_step(step, loss)`` is called after every
    optimizer step (progress). The model is left in eval mode.
    """
    import torch

    from ..synthetic.perception import perception_records

    cfg = config or VisionPretrainConfig()
    tower = model.model.visual
    merge = tower.config.spatial_merge_size
    t0 = time.perf_counter()
    train_recs = list(perception_records(cfg.images, seed=cfg.data_seed))
    test_recs = list(perception_records(cfg.held_out, seed=cfg.held_out_seed))
    pv, grid_thw = encode_images(processor, [r.render() for r in train_recs])
    pvt, grid_t = encode_images(processor, [r.render() for r in test_recs])
    grid_h, grid_w = int(grid_thw[0, 1]) // merge, int(grid_thw[0, 2]) // merge
    if grid_h != grid_w:
        raise ValueError(f"world images are square; the processor made a {grid_h}x{grid_w} token grid")
    y, yt = perception_targets(train_recs, grid_h), perception_targets(test_recs, grid_h)
    data_s = time.perf_counter() - t0

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        heads, kinds = _heads(tower.config.out_hidden_size)
    dtype = next(tower.parameters()).dtype
    heads.to(dtype)

    def held_out() -> dict[str, float]:
        tower.eval()
        with torch.no_grad():
            chunks = [_features(tower, pvt[i : i + 100].to(dtype), grid_t) for i in range(0, len(pvt), 100)]
            levels = [torch.cat([c[k] for c in chunks]) for k in range(len(chunks[0]))]
            return {k: round(v, 4) for k, v in _scores(heads, kinds, levels, yt).items()}

    before = held_out()
    pos = _pos_weights(y, kinds)
    params = list(heads.parameters()) + list(tower.parameters())
    for p in tower.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then cosine decay to zero
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / cfg.steps)))
    )
    g = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    tower.train()
    t1 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, len(pv), (min(cfg.batch_size, len(pv)),), generator=g)
        levels = _features(tower, pv[idx].to(dtype), grid_thw)
        loss = _loss(heads, kinds, levels, {k: v[idx] for k, v in y.items()}, pos)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(round(float(loss.detach()), 4))
        if on_step is not None:
            on_step(step, losses[-1])
    train_s = time.perf_counter() - t1
    after = held_out()
    model.eval()
    return {
        "config": asdict(cfg),
        "token_grid": [grid_h, grid_w],
        "losses": losses,
        "held_out_before": before,
        "held_out_after": after,
        "data_s": round(data_s, 1),
        "train_s": round(train_s, 1),
    }
