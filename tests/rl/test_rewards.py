"""Reward-function adapters: every image layout, the dict convention, failure policies and TRL's calling style."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

from rationalrewards.images import image_hash
from rationalrewards.model import RationalRewardModel
from rationalrewards.rl.rewards import MASK_KEY, flow_grpo_reward, to_pil_images, trl_reward
from rationalrewards.rubric import DIMENSION_KEYS

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, size=(3, 12, 10, 3), dtype=np.uint8)  # N H W C
REFERENCE = [Image.fromarray(a) for a in PIXELS]
REF_HASHES = [image_hash(im) for im in REFERENCE]
PROMPTS = ["a cat", "a dog", "a bird"]


def _expected_avg(tf: float, *others: float) -> float:
    vals = [tf, *others]
    return (sum(vals) / len(vals) - 1) / 3


def _layouts(tmp_path):
    nchw = torch.from_numpy(PIXELS.transpose(0, 3, 1, 2).copy())
    paths = []
    for i, im in enumerate(REFERENCE):
        p = tmp_path / f"img{i}.png"
        im.save(p)
        paths.append(p)
    return {
        "uint8 NHWC numpy": (PIXELS, {}),
        "float NCHW torch [0,1]": (nchw.float() / 255, {}),
        "float NCHW torch [-1,1]": (nchw.double() / 127.5 - 1, {"value_range": (-1, 1)}),
        "uint8 NCHW torch": (nchw, {}),
        "PIL list": (list(REFERENCE), {}),
        "path list": (paths, {}),
        "str path list": ([str(p) for p in paths], {}),
        "bytes list": ([p.read_bytes() for p in paths], {}),
        "CHW tensor list": ([t.float() / 255 for t in nchw], {}),
    }


def test_every_layout_shows_the_critic_the_same_pixels(tmp_path, critic, backend):
    expected = [_expected_avg(round(1 + 3 * a.mean() / 255, 4), 3.0) for a in PIXELS]
    for name, (images, opts) in _layouts(tmp_path).items():
        critic.seen.clear()
        fn = flow_grpo_reward(RationalRewardModel(backend), **opts)
        rewards, meta = fn(images, PROMPTS, [{} for _ in PROMPTS])
        assert critic.seen == REF_HASHES, name
        np.testing.assert_allclose(rewards["avg"], expected, rtol=0, atol=1e-9, err_msg=name)
        assert meta["failed_indices"] == []


def test_dict_holds_avg_every_dimension_and_the_mask_from_one_batched_call(backend):
    fn = flow_grpo_reward(RationalRewardModel(backend))
    prompts = ["score=3.5 a", "score=1.0 b", "score=4 c"]
    rewards, meta = fn(PIXELS, prompts, {})
    assert set(rewards) == {"avg", MASK_KEY, *DIMENSION_KEYS}
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 3
    assert all(v.dtype == np.float64 and v.shape == (3,) for v in rewards.values())
    np.testing.assert_allclose(rewards["text_faithfulness"], [3.5, 1.0, 4.0])
    np.testing.assert_allclose(rewards["physical_quality"], [3.0] * 3)
    assert np.isnan(rewards["text_rendering"]).all()  # N/A
    assert np.isnan(rewards["image_faithfulness"]).all()  # not applicable to t2i
    np.testing.assert_allclose(rewards["avg"], [_expected_avg(3.5, 3), _expected_avg(1, 3), _expected_avg(4, 3)])
    np.testing.assert_array_equal(rewards[MASK_KEY], [1.0, 1.0, 1.0])
    assert meta["parse_status"] == ["ok"] * 3


def test_model_weights_change_the_aggregate(backend):
    fn = flow_grpo_reward(RationalRewardModel(backend, weights={"text_faithfulness": 1.0}))
    rewards, _ = fn(PIXELS[:1], ["score=2.5"], None)
    assert rewards["avg"][0] == pytest.approx((2.5 - 1) / 3)


def test_ref_images_make_it_an_edit(critic, backend):
    source = RNG.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    fn = flow_grpo_reward(backend)  # a Backend is wrapped in a RationalRewardModel
    rewards, _ = fn(PIXELS, ["score=3 x", "score=2 y", "score=4 z"], [{}] * 3, [Image.fromarray(s) for s in source])
    assert critic.n_images == [2, 2, 2]
    assert critic.seen == REF_HASHES  # the output comes after the source
    np.testing.assert_allclose(rewards["image_faithfulness"], [2.0] * 3)
    np.testing.assert_allclose(rewards["avg"][0], _expected_avg(3, 3, 2))


def test_flow_grpo_keyword_call_and_ignored_options(backend):
    fn = flow_grpo_reward(backend)
    rewards, _ = fn(PIXELS[:2], ["score=2 a", "score=3 b"], [{}, {}], ref_images=None, only_strict=True)
    np.testing.assert_allclose(rewards["text_faithfulness"], [2.0, 3.0])


def test_dict_output_false_gives_the_multi_score_shape(backend):
    fn = flow_grpo_reward(backend, dict_output=False)
    avg, meta = fn(PIXELS[:2], ["score=4 a", "score=1 b"], {})
    np.testing.assert_allclose(avg, [_expected_avg(4, 3), _expected_avg(1, 3)])
    assert meta["n"] == 2


@pytest.mark.parametrize(
    ("images", "opts", "message"),
    [
        (torch.full((1, 3, 4, 4), -0.5), {}, "value_range=\\(-1, 1\\)"),
        (torch.full((1, 3, 4, 4), 2.0), {"value_range": (-1, 1)}, "must lie in"),
        (np.zeros((1, 4, 4, 3), dtype=np.float32), {}, "uint8 NHWC"),
        (np.zeros((1, 3, 8, 8), dtype=np.uint8), {}, "NHWC"),
        (torch.zeros((3, 4, 4)), {}, "NCHW"),
        ("not images", {}, "cannot read images"),
    ],
)
def test_bad_layouts_raise_concise_errors(images, opts, message):
    with pytest.raises((ValueError, TypeError), match=message):
        to_pil_images(images, **opts)


def test_length_mismatch_raises(backend):
    fn = flow_grpo_reward(backend)
    with pytest.raises(ValueError, match="3 images but 2 prompts"):
        fn(PIXELS, ["a", "b"], {})
    with pytest.raises(ValueError, match="ref_images"):
        fn(PIXELS, PROMPTS, {}, list(REFERENCE[:1]))


# ------------------------------------------------------------------------------------------- failure policies

MIXED = ["score=4 fine", "FAILME broken", "score=1 fine too"]


def test_policy_none_gives_nan_and_mask_and_counts(backend, caplog):
    fn = flow_grpo_reward(backend)
    with caplog.at_level(logging.WARNING, logger="rationalrewards.rl"):
        rewards, meta = fn(PIXELS, MIXED, {})
    assert np.isnan(rewards["avg"][1]) and not np.isnan(rewards["avg"][[0, 2]]).any()
    assert all(np.isnan(rewards[k][1]) for k in DIMENSION_KEYS)
    np.testing.assert_array_equal(rewards[MASK_KEY], [1.0, 0.0, 1.0])
    assert meta["failed_indices"] == [1] and meta["parse_status"][1] == "failed" and 1 in meta["errors"]
    assert fn.stats.failed == 1 and fn.stats.as_none == 1 and fn.stats.items == 3 and fn.stats.scored == 2
    assert "1 of 3 critiques failed" in caplog.text
    fn(PIXELS[:2], MIXED[:2], {})
    assert fn.stats.failed == 2 and fn.stats.calls == 2 and fn.stats.as_dict()["failure_rate"] == pytest.approx(2 / 5)


def test_policy_drop_excludes_and_reports_indices(backend):
    fn = flow_grpo_reward(backend, on_failure="drop")
    rewards, meta = fn(PIXELS, MIXED, {})
    assert all(len(v) == 2 for v in rewards.values())
    np.testing.assert_allclose(rewards["avg"], [_expected_avg(4, 3), _expected_avg(1, 3)])
    assert meta["kept_indices"] == [0, 2] and meta["dropped_indices"] == [1]
    assert fn.stats.dropped == 1 and fn.stats.as_none == 0


def test_policy_value_fills_the_configured_number_visibly(backend):
    fn = flow_grpo_reward(backend, on_failure="value", failure_value=-1.0)
    rewards, meta = fn(PIXELS, MIXED, {})
    assert rewards["avg"][1] == -1.0
    assert rewards[MASK_KEY][1] == 0.0 and np.isnan(rewards["text_faithfulness"][1])
    assert meta["filled_indices"] == [1] and fn.stats.filled == 1


def test_policy_configuration_is_checked(backend):
    with pytest.raises(ValueError, match="explicit failure_value"):
        flow_grpo_reward(backend, on_failure="value")
    with pytest.raises(ValueError, match="only used with"):
        flow_grpo_reward(backend, failure_value=0.0)
    with pytest.raises(ValueError, match="on_failure"):
        flow_grpo_reward(backend, on_failure="zero")
    with pytest.raises(TypeError, match="RationalRewardModel"):
        flow_grpo_reward(42)


# ------------------------------------------------------------------------------------------- TRL


def test_trl_reward_returns_floats_and_none_with_a_name(backend):
    fn = trl_reward(backend, name="rr_total")
    assert fn.__name__ == "rr_total"
    out = fn(prompts=MIXED, completions=list(REFERENCE), completion_ids=None, trainer_state=None)
    assert out[1] is None
    assert out[0] == pytest.approx(_expected_avg(4, 3)) and out[2] == pytest.approx(_expected_avg(1, 3))
    assert fn.stats.failed == 1 and fn.stats.as_none == 1


def test_trl_conversational_prompts_and_image_messages(critic, backend):
    prompts = [[{"role": "system", "content": "be nice"}, {"role": "user", "content": "score=2.5 draw"}]]
    prompts.append([{"role": "user", "content": [{"type": "text", "text": "score=3.5 paint"}]}])
    completions = [
        [{"role": "assistant", "content": [{"type": "image", "image": REFERENCE[0]}]}],
        {"image": REFERENCE[1]},
    ]
    out = trl_reward(backend)(prompts, completions)
    assert out == pytest.approx([_expected_avg(2.5, 3), _expected_avg(3.5, 3)])
    assert critic.seen == REF_HASHES[:2]


def test_trl_columns_for_images_sources_and_requests(critic, backend):
    fn = trl_reward(backend, image_key="images", source_key="source", request_key="request")
    logged = []
    out = fn(
        ["<templated prompt>"] * 2,
        ["ignored text completion"] * 2,
        images=[[REFERENCE[0]], [REFERENCE[1]]],
        source=[REFERENCE[2], REFERENCE[2]],
        request=["score=4 edit it", "FAILME"],
        log_metric=lambda name, value: logged.append((name, value)),
    )
    assert out[0] == pytest.approx(_expected_avg(4, 3, 2)) and out[1] is None
    assert critic.n_images == [2, 2] and critic.seen == REF_HASHES[:2]
    assert logged == [("rationalrewards/parse_failed", 1.0)]


def test_trl_value_policy_and_refusals(backend):
    assert trl_reward(backend, on_failure="value", failure_value=0.25)(["FAILME"], [REFERENCE[0]]) == [0.25]
    with pytest.raises(ValueError, match="one reward per completion"):
        trl_reward(backend, on_failure="drop")
    with pytest.raises(KeyError, match="column 'images'"):
        trl_reward(backend, image_key="images")(["a"], [REFERENCE[0]])
    with pytest.raises(ValueError, match="one image or one message"):
        trl_reward(backend)(["a"], [[REFERENCE[0], REFERENCE[1]]])


def test_trl_tensor_completions(backend, critic):
    nchw = torch.from_numpy(PIXELS.transpose(0, 3, 1, 2).copy()).float() / 255
    out = trl_reward(backend)(PROMPTS, nchw)
    assert critic.seen == REF_HASHES and all(isinstance(r, float) and not math.isnan(r) for r in out)
