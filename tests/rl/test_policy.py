"""The generator policy: seeded sampling, exact log-probabilities, the scaled rates reaching the generator."""

from __future__ import annotations

import math

import pytest
import torch

from rationalrewards.rl.policy import FAILURE_KINDS, GeneratorPolicy, PolicyConfig
from rationalrewards.synthetic import World, make_bench

NEGATION = "Draw two blue squares with no red shapes."
RICH = (
    "Draw three red circles, a blue square to the left of a yellow star and a sign that says 'OPEN', "
    "with no green shapes."
)


@pytest.fixture
def world() -> World:
    return World()


def test_sampling_is_seeded(world):
    policy = GeneratorPolicy()
    a = policy.sample(RICH, seed=11, world=world)
    b = policy.sample(RICH, seed=11, world=world)
    c = policy.sample(RICH, seed=12, world=world)
    assert (a.z, a.vividness, a.draws, a.record.image_hash) == (b.z, b.vividness, b.draws, b.record.image_hash)
    assert (a.z, a.draws) != (c.z, c.draws)
    assert world.lookup(a.image) is not None  # registered, so a critic can find its scene


def test_vividness_is_sigmoid_of_a_gaussian_draw(world):
    policy = GeneratorPolicy(PolicyConfig(init_vividness=0.4, init_vividness_std=0.3))
    zs = [policy.sample(NEGATION, seed=s, world=world, render=False).z for s in range(400)]
    mean = sum(zs) / len(zs)
    std = math.sqrt(sum((z - mean) ** 2 for z in zs) / len(zs))
    assert mean == pytest.approx(math.log(0.4 / 0.6), abs=0.05)
    assert std == pytest.approx(0.3, abs=0.04)
    s = policy.sample(NEGATION, seed=3, world=world, render=False)
    assert s.vividness == pytest.approx(1 / (1 + math.exp(-s.z)), abs=1e-4)


def test_every_generator_draw_belongs_to_a_failure_kind(world):
    policy = GeneratorPolicy()
    items = make_bench(12, seed=3, task="both", world=world)
    for i, it in enumerate(items):
        s = policy.sample(it.request, seed=i, source=it.source, world=world, render=False, task=it.task)
        assert s.draws, "every request draws at least its artefacts"
        assert {d.kind for d in s.record.decisions} <= set(FAILURE_KINDS)
        assert [(d.kind, d.fired) for d in s.record.decisions] == [(k, f) for k, _, f in s.draws]


def _lp(policy: GeneratorPolicy, sample) -> float:
    return float(policy.log_prob([sample]).detach()[0])


def _policy_with_scale(kind: str, scale: float, **cfg) -> GeneratorPolicy:
    policy = GeneratorPolicy(PolicyConfig(**cfg))
    with torch.no_grad():
        p = scale / policy.config.max_scale
        policy.failure_logits[policy.kinds.index(kind)] = math.log(p / (1 - p))
    return policy


def test_scaled_rate_reaches_the_generator(world):
    # the default rate of ignoring a plainly stated negation is 0.45; scaled by 0.4 it must be 0.18
    policy = _policy_with_scale("ignored_negation", 0.4)
    n = 1500
    fired = 0
    for seed in range(n):
        s = policy.sample(NEGATION, seed=seed, world=world, render=False)
        (d,) = [d for d in s.record.decisions if d.kind == "ignored_negation"]
        assert d.rate == pytest.approx(0.45 * 0.4, abs=1e-6)
        fired += d.fired
    assert fired / n == pytest.approx(0.18, abs=3 * math.sqrt(0.18 * 0.82 / n))


def test_log_prob_by_hand(world):
    policy = _policy_with_scale("noise", 0.5, kinds=("noise", "ignored_negation"), init_vividness_std=0.4)
    with torch.no_grad():
        policy.failure_logits[policy.kinds.index("ignored_negation")] = 1.0
    neg_scale = 2 / (1 + math.exp(-1.0))
    mu, sigma = math.log(0.35 / 0.65), 0.4
    checked = set()
    for seed in range(60):
        s = policy.sample(NEGATION, seed=seed, world=world, render=False)
        expected = -0.5 * ((s.z - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
        for kind, fired in ((d.kind, d.fired) for d in s.record.decisions):
            if kind == "noise":
                p = 0.1 * 0.5
            elif kind == "ignored_negation":
                p = 0.45 * neg_scale
            else:
                continue  # not controlled: no dependence on the parameters
            expected += math.log(p) if fired else math.log(1 - p)
            checked.add((kind, fired))
        assert _lp(policy, s) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert {("noise", False), ("ignored_negation", True), ("ignored_negation", False)} <= checked


def test_log_prob_gradient_matches_finite_differences(world):
    policy = GeneratorPolicy()
    samples = [policy.sample(RICH, seed=s, world=world, render=False) for s in range(8)]
    with torch.no_grad():
        policy.failure_logits.add_(torch.linspace(-0.7, 0.6, len(policy.kinds), dtype=torch.float64))
        policy.vivid_mu.add_(0.3)
        policy.vivid_log_std.sub_(0.2)
    total = policy.log_prob(samples).sum()
    total.backward()
    h = 1e-6
    for param in policy.parameters():
        flat = param.detach().view(-1)
        grad = param.grad.view(-1)
        for i in range(flat.numel()):
            with torch.no_grad():
                flat[i] += h
                up = float(policy.log_prob(samples).detach().sum())
                flat[i] -= 2 * h
                down = float(policy.log_prob(samples).detach().sum())
                flat[i] += h
            assert float(grad[i]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("which", ["fired", "clean"])
def test_positive_advantage_step_makes_the_sample_more_likely(world, which):
    policy = GeneratorPolicy()
    samples = [policy.sample(req, seed=s, world=world, render=False) for s in range(30) for req in (RICH, NEGATION)]
    s = next(x for x in samples if (x.fired() > 0) == (which == "fired"))
    before = _lp(policy, s)
    others_before = policy.log_prob(samples).detach()
    opt = torch.optim.SGD(policy.parameters(), lr=0.05)
    loss = -(1.0 * policy.log_prob([s])).sum()
    loss.backward()
    opt.step()
    assert _lp(policy, s) > before
    # and a negative advantage makes it less likely
    opt.zero_grad()
    mid = _lp(policy, s)
    (1.0 * policy.log_prob([s])).sum().backward()
    opt.step()
    assert _lp(policy, s) < mid
    assert not torch.equal(policy.log_prob(samples).detach(), others_before)


def test_edit_requests_and_reward_samples(world):
    (item,) = make_bench(1, seed=9, task="edit", world=world)
    policy = GeneratorPolicy()
    s = policy.sample(item.request, seed=1, source=item.source, world=world, task="edit")
    assert s.record.task == "edit"
    sample = s.to_sample()
    assert sample.source is item.source and sample.request == item.request
    sim = policy.sample(item.request, seed=1, source=item.source, world=world, task="edit", render=False)
    with pytest.raises(ValueError, match="render=False"):
        sim.to_sample()


def test_state_dict_round_trip_and_config_errors(world):
    a = GeneratorPolicy()
    with torch.no_grad():
        a.failure_logits.add_(0.5)
        a.vivid_mu.add_(1.0)
    b = GeneratorPolicy()
    b.load_state_dict(a.state_dict())
    s = a.sample(RICH, seed=4, world=world, render=False)
    assert _lp(b, s) == pytest.approx(_lp(a, s))
    assert b.summary()["vividness_median"] == pytest.approx(a.summary()["vividness_median"])
    with pytest.raises(ValueError, match="unknown failure kind"):
        PolicyConfig(kinds=("wrong_count", "bad_kind"))
    with pytest.raises(ValueError, match="init_scale"):
        PolicyConfig(init_scale=2.0)
    with pytest.raises(ValueError, match="kinds"):
        b.load_state_dict({**a.state_dict(), "kinds": ["noise"]})
