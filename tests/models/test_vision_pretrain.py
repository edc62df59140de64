"""Perception pre-training of a tiny Qwen3-VL's vision tower: only the tower moves, the loss falls, targets line up."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from rationalrewards.models.tiny import make_tiny_qwen3vl  # noqa: E402
from rationalrewards.models.vision_pretrain import (  # noqa: E402
    VisionPretrainConfig,
    encode_images,
    perception_targets,
    pretrain_vision,
)
from rationalrewards.synthetic.perception import COLOR_SHAPES, DENSE_TARGETS, perception_records  # noqa: E402

PIXELS = 128 * 128


@pytest.fixture(scope="module")
def tiny():
    return make_tiny_qwen3vl(seed=0, vocab_size=300, text_layers=1, min_pixels=PIXELS, max_pixels=PIXELS, patch_size=8)


def test_targets_have_one_row_per_image_and_one_cell_per_image_token(tiny):
    _, processor = tiny
    recs = list(perception_records(6, seed=1))
    pv, grid = encode_images(processor, [r.render() for r in recs])
    assert pv.shape[0] == 6 and grid.tolist() == [[1, 16, 16]]  # 8-px patches: 16 x 16, merged 2 x 2 -> 64 tokens
    y = perception_targets(recs, grid=8)
    assert y["colour_shapes"].shape == (6, len(COLOR_SHAPES))
    for name, (kind, classes) in DENSE_TARGETS.items():
        t = y[f"cell_{name}"]
        assert t.shape[:2] == (6, 64)
        assert (t.dtype == torch.int64) if kind == "single" else (t.shape[2] == len(classes))
    # every object centre is one non-"none" cell (unless two share a cell)
    for i, rec in enumerate(recs):
        assert int((y["cell_colour"][i] > 0).sum()) <= len(rec.scene.objects)
        assert (int((y["cell_colour"][i] > 0).sum()) > 0) == bool(rec.scene.objects)


def test_encode_images_rejects_mixed_sizes(tiny):
    _, processor = tiny
    with pytest.raises(ValueError, match="one size"):
        encode_images(processor, [Image.new("RGB", (128, 128)), Image.new("RGB", (256, 64))])


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="steps"):
        VisionPretrainConfig(steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        VisionPretrainConfig(learning_rate=0)


def test_pretraining_moves_only_the_tower_and_lowers_the_loss():
    model, processor = make_tiny_qwen3vl(
        seed=0, vocab_size=300, text_layers=1, min_pixels=PIXELS, max_pixels=PIXELS, patch_size=8
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = VisionPretrainConfig(images=96, held_out=32, steps=30, batch_size=16, learning_rate=3e-3)
    record = pretrain_vision(model, processor, cfg)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".visual." in f".{k}" for k in changed)
    assert any("merger" in k for k in changed) and any("blocks" in k for k in changed)
    losses = record["losses"]
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])
    assert record["token_grid"] == [8, 8]
    assert set(record["held_out_after"]) == set(record["held_out_before"]) >= {"background", "cell_colour"}
    assert all(0.0 <= v <= 1.0 for v in record["held_out_after"].values())
    assert not model.training
