"""The GRPO loop over the generator policy: it follows toy rewards, uses the rl advantage functions, and runs
end to end against the privileged synthetic teacher (a real critic, not a mock)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rationalrewards.model import RationalRewardModel
from rationalrewards.rl.advantages import decoupled_advantages, group_advantages
from rationalrewards.rl.grpo import (
    GRPOConfig,
    Prompt,
    RewardOutput,
    as_prompts,
    compute_advantages,
    rational_reward,
    scalar_reward,
    train_grpo,
)
from rationalrewards.rl.policy import GeneratorPolicy
from rationalrewards.synthetic import World, default_world, judge, make_bench

NEGATIONS = [
    "Draw two blue squares with no red shapes.",
    "Show a green circle and a yellow star, without any triangles.",
    "Draw three purple diamonds with no orange shapes.",
]


def _sim(**kw) -> GRPOConfig:
    return GRPOConfig(render=False, prompts_per_step=3, group_size=8, **kw)


def test_toy_reward_on_vividness_moves_the_policy_up():
    policy = GeneratorPolicy()
    start = policy.summary()["vividness_median"]
    res = train_grpo(
        policy, NEGATIONS, lambda ss: RewardOutput([s.vividness for s in ss]), _sim(steps=15), world=World()
    )
    assert policy.summary()["vividness_median"] > start + 0.1
    assert res.history[-1]["vividness_mean"] > res.history[0]["vividness_mean"]
    assert [r["step"] for r in res.history] == list(range(15))


def test_toy_reward_on_one_failure_kind_lowers_that_rate_most():
    def reward(samples):
        return RewardOutput([0.0 if s.fired("ignored_negation") else 1.0 for s in samples])

    policy = GeneratorPolicy()
    train_grpo(policy, NEGATIONS, reward, _sim(steps=20, learning_rate=0.1), world=World())
    scales = policy.scale_map()
    assert scales["ignored_negation"] < 0.5
    others = [v for k, v in scales.items() if k != "ignored_negation"]
    assert scales["ignored_negation"] < min(others)


def test_constant_reward_gives_zero_advantage_and_leaves_the_policy_unchanged():
    policy = GeneratorPolicy()
    before = [p.detach().clone() for p in policy.parameters()]
    res = train_grpo(policy, NEGATIONS, lambda ss: RewardOutput([0.7] * len(ss)), _sim(steps=3), world=World())
    for a, b in zip(before, policy.parameters(), strict=True):
        assert torch.equal(a, b.detach())
    assert all(r["advantage_abs_mean"] == 0.0 for r in res.history)


def test_compute_advantages_are_the_rl_advantage_functions():
    rng = np.random.default_rng(0)
    groups = ["a"] * 4 + ["b"] * 4
    vectors = [
        {"text_faithfulness": float(rng.uniform(1, 4)), "physical_quality": float(rng.uniform(1, 4)),
         "text_rendering": None if i % 3 else float(rng.uniform(1, 4))}
        for i in range(8)
    ]  # fmt: skip
    rewards = [float(rng.uniform()) for _ in range(8)]
    rewards[2] = None
    out = RewardOutput(rewards, vectors)
    weights = {"text_faithfulness": 2.0, "physical_quality": 1.0}
    cfg = GRPOConfig(advantage="decoupled", weights=weights, floor=2.0)
    np.testing.assert_allclose(
        compute_advantages(out, groups, cfg), decoupled_advantages(vectors, groups, weights=weights, floor=2.0)
    )
    cfg = GRPOConfig(advantage="aggregate")
    got = compute_advantages(out, groups, cfg)
    np.testing.assert_allclose(got, group_advantages(rewards, groups))
    assert got[2] == 0.0  # a missing reward gets no advantage
    with pytest.raises(ValueError, match="per-dimension"):
        compute_advantages(RewardOutput(rewards), groups, GRPOConfig(advantage="decoupled"))
    with pytest.raises(ValueError, match="floor"):
        compute_advantages(RewardOutput(rewards), groups, GRPOConfig(floor=2.0))


def test_failed_rewards_are_counted_and_runs_are_deterministic():
    def reward(samples):
        return RewardOutput([None if i == 0 else s.vividness for i, s in enumerate(samples)])

    runs = []
    for _ in range(2):
        res = train_grpo(GeneratorPolicy(), NEGATIONS, reward, _sim(steps=3, seed=5), world=World())
        runs.append([{k: v for k, v in r.items() if k != "seconds"} for r in res.history])
    assert runs[0] == runs[1]
    assert all(r["reward_failed"] == 1 for r in runs[0])


def test_against_the_synthetic_teacher_end_to_end():
    world = default_world()  # the teacher finds the policy's images in the process-wide world's registry
    items = make_bench(4, seed=17, task="both", world=world)
    prompts = as_prompts(items)
    assert {p.task for p in prompts} == {"t2i", "edit"}

    def monitor(samples):
        return {"utility": float(np.mean([judge(s.record).utility for s in samples]))}

    cfg = GRPOConfig(steps=2, prompts_per_step=2, group_size=3, advantage="decoupled", floor=1.5)
    res = train_grpo(GeneratorPolicy(), prompts, rational_reward(RationalRewardModel("synthetic-teacher")), cfg,
                     monitor=monitor)  # fmt: skip
    for rec in res.history:
        assert rec["reward_failed"] == 0
        assert 0.0 <= rec["reward_mean"] <= 1.0
        assert 1.0 <= rec["score_text_faithfulness"] <= 4.0
        assert "true_utility" in rec


def test_scalar_reward_adapter_and_prompt_checks():
    seen = []

    def score(samples):
        seen.extend(samples)
        return [float("nan")] + [1.0] * (len(samples) - 1)

    policy = GeneratorPolicy()
    s = [policy.sample(NEGATIONS[0], seed=i, world=World()) for i in range(3)]
    out = scalar_reward(score)(s)
    assert out.rewards == [None, 1.0, 1.0] and out.vectors is None
    assert [x.request for x in seen] == [NEGATIONS[0]] * 3
    with pytest.raises(ValueError, match="unique"):
        as_prompts([Prompt("a", id=1), Prompt("b", id=1)])
    with pytest.raises(ValueError, match="no prompts"):
        as_prompts([])
