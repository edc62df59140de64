"""GRPO on the CPU over the synthetic world's generator policy (``rl.policy``): groups, advantages, updates.

Each step draws ``prompts_per_step`` prompts, ``group_size`` seeded generations per prompt from the policy,
scores them with a reward function, turns the scores into group-relative advantages with the functions of
``rl.advantages`` and takes ``ppo_epochs`` Adam steps on the clipped surrogate
``-mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))`` (with one epoch the ratio is 1: REINFORCE with a
group baseline). Advantage modes:

- ``"aggregate"``: ``group_advantages`` of the scalar reward (optionally floored by per-dimension scores);
- ``"decoupled"``: ``decoupled_advantages`` of the per-dimension scores (each dimension normalised within
  its group, then combined with ``weights``; optional ``floor``).

A reward function takes the step's ``PolicySample`` list and returns a ``RewardOutput``: a reward per sample
(``None`` where the reward model failed: advantage 0, counted) and, for decoupled advantages, the
per-dimension 1-4 scores. ``rational_reward(model)`` adapts a ``RationalRewardModel``; ``scalar_reward(fn)``
any ``list[Sample] -> list[float | None]`` scorer (a Bradley-Terry model's ``score``). ``monitor`` sees the
same samples and returns numbers to log (the benchmark logs the hidden true utility there); it never
touches training.

    policy = GeneratorPolicy()
    result = train_grpo(policy, prompts, rational_reward(RationalRewardModel("synthetic-teacher")),
                        GRPOConfig(steps=100, advantage="decoupled"))
    result.history[-1]["reward_mean"]
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .advantages import decoupled_advantages, group_advantages
from .policy import GeneratorPolicy, PolicySample

if TYPE_CHECKING:
    from ..model import RationalRewardModel
    from ..schema import Sample
    from ..synthetic.world import World

AdvantageMode = Literal["aggregate", "decoupled"]


@dataclass
class RewardOutput:
    """What a reward function returns for a batch: a reward per sample, and per-dimension scores if it has them."""

    rewards: list[float | None]
    vectors: list[dict[str, float | None]] | None = None


RewardFn = Callable[[list[PolicySample]], RewardOutput]
Monitor = Callable[[list[PolicySample]], Mapping[str, float]]


def rational_reward(model: RationalRewardModel) -> RewardFn:
    """A reward function over a ``RationalRewardModel``: one batched ``score`` call (reward and vector)."""

    def reward(samples: list[PolicySample]) -> RewardOutput:
        scored = model.score([s.to_sample() for s in samples])
        return RewardOutput([s.reward for s in scored], [dict(s.vector) for s in scored])

    reward.__name__ = f"rational_reward[{model.name}]"
    return reward


def scalar_reward(score: Callable[[list[Sample]], Sequence[float | None]], name: str | None = None) -> RewardFn:
    """A reward function over any scorer of ``Sample`` lists (e.g. ``BradleyTerryRewardModel.score``)."""

    def reward(samples: list[PolicySample]) -> RewardOutput:
        values = list(score([s.to_sample() for s in samples]))
        if len(values) != len(samples):
            raise ValueError(f"the scorer returned {len(values)} rewards for {len(samples)} samples")
        return RewardOutput([None if v is None or not math.isfinite(v) else float(v) for v in values])

    reward.__name__ = name or getattr(score, "__qualname__", "scalar_reward")
    return reward


@dataclass
class Prompt:
    """One training prompt: the request text, an edit's source image (None for text-to-image) and a key."""

    request: str
    source: Any = None
    id: Hashable = None
    task: str | None = None


def as_prompts(items: Sequence[Any]) -> list[Prompt]:
    """Strings, ``Prompt`` s or anything with ``request`` (and ``source``, ``id``, ``task``: a ``BenchItem``)."""
    out = []
    for i, it in enumerate(items):
        if isinstance(it, Prompt):
            p = it
        elif isinstance(it, str):
            p = Prompt(it)
        elif hasattr(it, "request"):
            p = Prompt(it.request, getattr(it, "source", None), getattr(it, "id", None), getattr(it, "task", None))
        else:
            raise TypeError(f"prompt {i}: expected a string, a Prompt or an object with .request, got {type(it)}")
        if p.id is None:
            p = Prompt(p.request, p.source, f"prompt-{i}", p.task)
        out.append(p)
    if not out:
        raise ValueError("no prompts given")
    if len({p.id for p in out}) != len(out):
        raise ValueError("prompt ids must be unique (they key the GRPO groups)")
    return out


@dataclass
class GRPOConfig:
    """Settings of one GRPO run."""

    steps: int = 200  # optimiser steps (one batch of generations each)
    prompts_per_step: int = 8  # prompts per batch
    group_size: int = 8  # generations per prompt (G)
    learning_rate: float = 0.05  # Adam
    advantage: AdvantageMode = "aggregate"  # "aggregate" (scalar reward) or "decoupled" (per dimension)
    weights: dict[str, float] | None = None  # decoupled: weight per dimension (default: 1 each)
    floor: float | dict[str, float] | None = None  # any scored dimension below this: advantage capped at 0
    scale: Literal["group", "batch", "none"] = "group"  # how advantages are scaled (see rl.advantages)
    clip_advantage: float | None = None  # symmetric clip of the advantages
    ppo_epochs: int = 1  # optimiser passes per batch (> 1 uses the clipped ratio)
    ppo_clip: float = 0.2
    seed: int = 0  # prompt order and generation seeds
    render: bool = True  # draw pixels (a reward model needs them; toy rewards may not)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.prompts_per_step < 1 or self.group_size < 1 or self.ppo_epochs < 1:
            raise ValueError("steps >= 0, prompts_per_step >= 1, group_size >= 1 and ppo_epochs >= 1 are required")
        if self.advantage not in ("aggregate", "decoupled"):
            raise ValueError(f"advantage must be 'aggregate' or 'decoupled', got {self.advantage!r}")
        if self.learning_rate <= 0 or self.ppo_clip <= 0:
            raise ValueError("learning_rate and ppo_clip must be positive")


@dataclass
class GRPOResult:
    """The trained policy and one record per step (reward, failures, policy state, monitor numbers)."""

    policy: GeneratorPolicy
    history: list[dict[str, Any]] = field(default_factory=list)
    config: GRPOConfig | None = None


def generation_seed(*key: Any) -> int:
    """A 31-bit generation seed fixed by a key (independent across keys)."""
    h = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % 2**31


def sample_batch(
    policy: GeneratorPolicy,
    prompts: Sequence[Prompt],
    group_size: int,
    seed_key: Sequence[Any],
    world: World | None = None,
    render: bool = True,
) -> list[PolicySample]:
    """``group_size`` generations for each prompt, grouped by the prompt's id, seeded by ``seed_key``."""
    out = []
    for p in prompts:
        for g in range(group_size):
            s = policy.sample(
                p.request,
                generation_seed(*seed_key, p.id, g),
                source=p.source,
                world=world,
                render=render,
                group=p.id,
                task=p.task,
            )
            out.append(s)
    return out


def compute_advantages(out: RewardOutput, groups: Sequence[Hashable], config: GRPOConfig) -> Any:
    """Advantages (numpy, one per sample; 0 where the reward is missing) under ``config``'s mode."""
    if config.advantage == "decoupled":
        if out.vectors is None:
            raise ValueError("decoupled advantages need per-dimension scores; this reward function gives none")
        return decoupled_advantages(
            out.vectors, groups, weights=config.weights, scale=config.scale, clip=config.clip_advantage,
            floor=config.floor,
        )  # fmt: skip
    if config.floor is not None and out.vectors is None:
        raise ValueError("a floor needs per-dimension scores; this reward function gives none")
    return group_advantages(
        out.rewards, groups, scale=config.scale, clip=config.clip_advantage, floor=config.floor,
        scores=out.vectors if config.floor is not None else None,
    )  # fmt: skip


def train_grpo(
    policy: GeneratorPolicy,
    prompts: Sequence[Any],
    reward_fn: RewardFn,
    config: GRPOConfig | None = None,
    monitor: Monitor | None = None,
    world: World | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> GRPOResult:
    """Train ``policy`` in place with GRPO against ``reward_fn``; see the module docstring."""
    import numpy as np
    import torch

    cfg = config or GRPOConfig()
    prompts = as_prompts(prompts)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    result = GRPOResult(policy, [], cfg)
    order: list[Prompt] = []
    rng = random.Random(f"grpo-prompts|{cfg.seed}")
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        batch = []
        while len(batch) < min(cfg.prompts_per_step, len(prompts)):
            if not order:
                order = list(prompts)
                rng.shuffle(order)
            p = order.pop()
            if all(p.id != q.id for q in batch):
                batch.append(p)
        samples = sample_batch(policy, batch, cfg.group_size, ("grpo", cfg.seed, step), world, cfg.render)
        groups = [s.group for s in samples]
        out = reward_fn(samples)
        if len(out.rewards) != len(samples):
            raise ValueError(f"the reward function returned {len(out.rewards)} rewards for {len(samples)} samples")
        adv_np = np.asarray(compute_advantages(out, groups, cfg), dtype=np.float64)
        adv = torch.from_numpy(adv_np)
        with torch.no_grad():
            old = policy.log_prob(samples)
        loss_value = 0.0
        for _ in range(cfg.ppo_epochs):
            lp = policy.log_prob(samples)
            ratio = torch.exp(lp - old)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - cfg.ppo_clip, 1 + cfg.ppo_clip) * adv)
            loss = -surrogate.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
        valid = [r for r in out.rewards if r is not None]
        rec: dict[str, Any] = {
            "step": step,
            "reward_mean": float(np.mean(valid)) if valid else None,
            "reward_failed": len(out.rewards) - len(valid),
            "vividness_mean": float(np.mean([s.vividness for s in samples])),
            "failures_mean": float(np.mean([s.fired() for s in samples])),
            "advantage_abs_mean": float(np.abs(adv_np).mean()),
            "loss": loss_value,
            "seconds": time.perf_counter() - t0,
        }
        if out.vectors is not None:
            keys = sorted({k for v in out.vectors for k in v})
            for k in keys:
                vals = [v[k] for v in out.vectors if v.get(k) is not None]
                rec[f"score_{k}"] = float(np.mean(vals)) if vals else None
        summary = policy.summary()
        rec["policy_vividness_median"] = summary["vividness_median"]
        rec["policy_vividness_std"] = summary["vividness_std"]
        if monitor is not None:
            rec.update({f"true_{k}": v for k, v in monitor(samples).items()})
        result.history.append(rec)
        if callback is not None:
            callback(rec)
    return result


__all__ = [
    "GRPOConfig",
    "GRPOResult",
    "Prompt",
    "RewardFn",
    "RewardOutput",
    "as_prompts",
    "compute_advantages",
    "generation_seed",
    "rational_reward",
    "sample_batch",
    "scalar_reward",
    "train_grpo",
]
