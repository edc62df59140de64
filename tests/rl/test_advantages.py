"""Advantages against hand-computed cases: groups, ties, zero std, groups of one, NaN, floors, weights, clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rationalrewards.rl.advantages import (
    PerPromptStatTracker,
    apply_floor,
    decoupled_advantages,
    group_advantages,
    zero_std_ratio,
)

EPS = 1e-4


def test_grpo_per_group_by_hand():
    # group a: [1, 2, 3] mean 2, population std sqrt(2/3); group b: [10, 20] mean 15, std 5
    adv = group_advantages([1.0, 10.0, 2.0, 3.0, 20.0], ["a", "b", "a", "a", "b"])
    s = math.sqrt(2 / 3)
    np.testing.assert_allclose(adv, [-1 / (s + EPS), -5 / (5 + EPS), 0.0, 1 / (s + EPS), 5 / (5 + EPS)])


def test_unbiased_std_option():
    adv = group_advantages([1.0, 2.0, 3.0], ddof=1)  # sample std = 1
    np.testing.assert_allclose(adv, [-1 / (1 + EPS), 0.0, 1 / (1 + EPS)])


def test_ties_zero_std_and_group_of_one_give_exactly_zero():
    rewards = [0.1, 0.1, 0.1, 0.7, 0.3, 0.3]
    adv = group_advantages(rewards, ["tie", "tie", "tie", "one", "pair", "pair"])
    assert adv.tolist() == [0.0] * 6


def test_partial_ties_by_hand():
    adv = group_advantages([1.0, 1.0, 0.0, 0.0])  # mean .5, std .5
    np.testing.assert_allclose(adv, np.array([1, 1, -1, -1]) * 0.5 / (0.5 + EPS))


def test_nan_and_none_are_left_out_of_stats_and_get_zero_or_nan():
    rewards = [1.0, None, 3.0, float("nan")]
    adv = group_advantages(rewards)  # stats over [1, 3]: mean 2, std 1
    np.testing.assert_allclose(adv, [-1 / (1 + EPS), 0.0, 1 / (1 + EPS), 0.0])
    masked = group_advantages(rewards, missing="nan")
    assert np.isnan(masked[[1, 3]]).all() and masked[0] == pytest.approx(-1 / (1 + EPS))
    all_missing = group_advantages([None, None], missing="nan")
    assert np.isnan(all_missing).all()


def test_batch_and_none_scaling():
    rewards = [0.0, 2.0, 10.0, 14.0]
    groups = ["a", "a", "b", "b"]
    batch_std = np.std(rewards)
    np.testing.assert_allclose(
        group_advantages(rewards, groups, scale="batch"), np.array([-1, 1, -2, 2]) / (batch_std + EPS)
    )
    np.testing.assert_allclose(group_advantages(rewards, groups, scale="none"), [-1, 1, -2, 2])


def test_clip():
    adv = group_advantages([0.0, 0.0, 0.0, 1.0], clip=1.0)  # unclipped: [-0.577, -0.577, -0.577, 1.732]
    assert adv[3] == 1.0 and adv[0] == pytest.approx(-0.25 / (math.sqrt(3) / 4 + EPS))


def test_two_dimensional_rewards_are_per_column():
    r = np.array([[1.0, 5.0], [3.0, 5.0]])
    adv = group_advantages(r)
    np.testing.assert_allclose(adv, [[-1 / (1 + EPS), 0.0], [1 / (1 + EPS), 0.0]])


def test_torch_in_torch_out():
    t = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32)
    adv = group_advantages(t)
    assert isinstance(adv, torch.Tensor) and adv.dtype == torch.float32
    assert adv[0].item() == pytest.approx(-1 / (math.sqrt(2 / 3) + EPS), rel=1e-6)


def test_floor_caps_advantage_at_zero():
    rewards = [0.2, 0.9, 0.8]
    scores = {"text_faithfulness": [3.0, 1.5, 3.0], "text_rendering": [None, None, 1.0]}
    plain = group_advantages(rewards)
    floored = group_advantages(rewards, floor=2.0, scores=scores)
    assert plain[1] > 0 and floored[1] == 0.0  # text faithfulness 1.5 < 2
    assert floored[0] == plain[0] < 0  # already negative: unchanged
    assert plain[2] > 0 and floored[2] == 0.0  # text rendering 1.0 < 2 (N/A entries never trigger)
    only_tf = apply_floor(plain, scores, {"text_faithfulness": 2.0})
    assert only_tf[2] == plain[2] and only_tf[1] == 0.0
    with pytest.raises(ValueError, match="scores"):
        group_advantages(rewards, floor=2.0)
    with pytest.raises(ValueError, match="no scores"):
        apply_floor(plain, scores, {"physical_quality": 2.0})


def test_decoupled_normalisation_by_hand():
    # one group; tf spread 0.1 (tiny), pq spread 2: each becomes +-1/(std+eps) before the mean
    scores = {"text_faithfulness": [3.0, 3.1], "physical_quality": [1.0, 3.0]}
    adv = decoupled_advantages(scores)
    a_tf = 0.05 / (0.05 + EPS)
    a_pq = 1.0 / (1.0 + EPS)
    np.testing.assert_allclose(adv, [-(a_tf + a_pq) / 2, (a_tf + a_pq) / 2])
    weighted = decoupled_advantages(scores, weights={"text_faithfulness": 3.0, "physical_quality": 1.0})
    np.testing.assert_allclose(weighted, [-(3 * a_tf + a_pq) / 4, (3 * a_tf + a_pq) / 4])


def test_decoupled_skips_na_dimensions_per_sample_and_takes_reward_vectors():
    vectors = [
        {"text_faithfulness": 1.0, "physical_quality": 2.0, "text_rendering": None},
        {"text_faithfulness": 3.0, "physical_quality": 2.0, "text_rendering": 4.0},
        {"text_faithfulness": 2.0, "physical_quality": 2.0, "text_rendering": 2.0},
    ]
    adv = decoupled_advantages(vectors, ["g"] * 3)
    # tf over [1,3,2]: mean 2, std sqrt(2/3); pq all equal -> 0; tr over [4,2] (sample 0 N/A): +-1/(1+eps)
    s = math.sqrt(2 / 3)
    expected = [(-1 / (s + EPS) + 0) / 2, (1 / (s + EPS) + 0 + 1 / (1 + EPS)) / 3, (0 + 0 - 1 / (1 + EPS)) / 3]
    np.testing.assert_allclose(adv, expected)


def test_decoupled_floor_clip_missing_and_renormalize():
    scores = {"text_faithfulness": [1.0, 4.0, None, 2.5], "physical_quality": [4.0, 1.5, None, 2.5]}
    adv = decoupled_advantages(scores, floor=2.0, clip=0.5)
    assert adv[2] == 0.0  # nothing scored -> missing -> 0
    assert adv[0] <= 0 and adv[1] <= 0  # each has a dimension below 2
    assert np.abs(adv).max() <= 0.5
    ren = decoupled_advantages({"x": [1.0, 2.0, 4.0]}, renormalize=True, missing="nan")
    assert np.nanmean(ren) == pytest.approx(0.0, abs=1e-12) and np.std(ren) == pytest.approx(1.0, abs=1e-3)


def test_decoupled_checks_inputs():
    with pytest.raises(ValueError, match="no scores for"):
        decoupled_advantages({"x": [1.0, 2.0]}, keys=["y"])
    with pytest.raises(ValueError, match="negative"):
        decoupled_advantages({"x": [1.0, 2.0]}, weights={"x": -1.0})
    with pytest.raises(ValueError, match="group keys"):
        decoupled_advantages({"x": [1.0, 2.0]}, groups=["a"])
    with pytest.raises(ValueError, match="scale"):
        group_advantages([1.0], scale="global")


def test_tracker_matches_flow_grpo_example_by_hand():
    tracker = PerPromptStatTracker()
    adv = tracker.update(["a", "b", "a", "c", "b", "a"], [1, 2, 3, 4, 5, 6])
    a_mean, a_std = 10 / 3, np.std([1, 3, 6])
    expected = [(1 - a_mean) / (a_std + EPS), -1.5 / (1.5 + EPS), (3 - a_mean) / (a_std + EPS), 0.0]
    expected += [1.5 / (1.5 + EPS), (6 - a_mean) / (a_std + EPS)]
    np.testing.assert_allclose(adv, expected)
    assert tracker.get_stats() == (2.0, 3)


def test_tracker_history_global_std_nan_and_stats():
    tracker = PerPromptStatTracker()
    tracker.update(["p", "p"], [0.0, 2.0])
    adv = tracker.update(["p", "p"], [4.0, float("nan")])  # history [0, 2, 4]: mean 2, std sqrt(8/3)
    np.testing.assert_allclose(adv, [2 / (math.sqrt(8 / 3) + EPS), 0.0])
    tracker.clear()
    assert tracker.stats == {} and tracker.get_stats()[1] == 1
    g = PerPromptStatTracker(global_std=True)
    adv, stds, means = g.update(["a", "a", "b", "b"], np.array([0.0, 2.0, 10.0, 14.0]), return_stats=True)
    batch_std = np.std([0.0, 2.0, 10.0, 14.0])
    np.testing.assert_allclose(adv, np.array([-1, 1, -2, 2]) / (batch_std + EPS))
    np.testing.assert_allclose(means, [1, 1, 12, 12])
    np.testing.assert_allclose(stds, [batch_std + EPS] * 4)


def test_tracker_two_dimensional_and_torch():
    tracker = PerPromptStatTracker()
    r = torch.tensor([[1.0, 1.0], [3.0, 3.0]])
    adv = tracker.update(["x", "x"], r)
    assert isinstance(adv, torch.Tensor) and adv.shape == (2, 2)
    np.testing.assert_allclose(adv.numpy(), [[-1 / (1 + EPS)] * 2, [1 / (1 + EPS)] * 2], rtol=1e-6)
    assert tracker.get_mean_of_top_rewards(50) == pytest.approx(3.0)
    assert tracker.get_mean_of_top_rewards(100) == pytest.approx(2.0)


def test_zero_std_ratio():
    ratio, mean_std = zero_std_ratio(["a", "a", "b", "b", "c"], [1.0, 1.0, 0.0, 2.0, 5.0])
    assert ratio == pytest.approx(2 / 3)  # a (tie) and c (one sample)
    assert mean_std == pytest.approx((0 + 1 + 0) / 3)
    ratio, _ = zero_std_ratio(["a", "a", "b"], np.array([[1.0, 9.0], [2.0, 9.0], [float("nan"), 0.0]]))
    assert ratio == 0.0  # column 0 only; group b has no valid reward and is left out
