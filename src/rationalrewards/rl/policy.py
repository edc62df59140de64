"""A small trainable policy over the synthetic world's generator, with exact log-probabilities for REINFORCE / GRPO.

The policy stands in for a generator being fine-tuned by RL. It controls two things:

- **failure rates**: one logit ``theta_k`` per failure kind of ``GeneratorConfig`` (wrong counts, ignored
  negations, misspellings, artefacts, unrequested edit changes, ...). Every failure draw the generator makes
  fires with probability ``p = base_rate * max_scale * sigmoid(theta_k)``, where ``base_rate`` is the rate the
  default generator would use for that draw (wording and explicitness included). ``theta = 0`` with
  ``max_scale = 2`` is the default generator; lowering ``theta_k`` is learning to honour that constraint.
- **vividness**: a Gaussian in logit space, ``z ~ N(mu, sigma)``, ``vividness = sigmoid(z)`` (initialised at
  0.35, inside the range the preference pairs cover). Vividness is the world's documented reward-hacking trap.

The action of one generation is its vividness draw and the outcome (fired or not) of every failure draw, so

    log pi(sample) = log N(z; mu, sigma) + sum_draws [fired * log p + (1 - fired) * log(1 - p)]

is exact and differentiable in the parameters (``GeneratorPolicy.log_prob``). Sampling is seeded: the same
parameters, prompt and seed give the same generation. Draws whose base rate is 0 (or whose kind the policy
does not control) do not depend on the parameters and are left out.

    policy = GeneratorPolicy(PolicyConfig())
    s = policy.sample("Draw two red circles.", seed=7)          # PolicySample: image, record, vividness, draws
    lp = policy.log_prob([s])                                    # torch tensor (1,), differentiable
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..schema import Sample
from ..synthetic.generator import Decision, Generation, GenerationRecord, GeneratorConfig, WorldGenerator

if TYPE_CHECKING:
    import torch

    from ..synthetic.world import World

_NOT_RATES = ("decay", "clean_decay", "preserve_decay", "size", "supersample")
#: every failure kind of the world's generator (the rate fields of ``GeneratorConfig``)
FAILURE_KINDS: tuple[str, ...] = tuple(f.name for f in fields(GeneratorConfig) if f.name not in _NOT_RATES)
_P_EPS = 1e-12


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise ImportError("the RL policy needs torch: pip install 'rationalrewards'") from exc
    return torch


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


@dataclass
class PolicyConfig:
    """What the policy controls and where it starts."""

    kinds: tuple[str, ...] = FAILURE_KINDS  # failure kinds with a learnable logit (the others keep their rate)
    max_scale: float = 2.0  # a failure rate is scaled by max_scale * sigmoid(theta): (0, max_scale)
    init_scale: float = 1.0  # initial scale of every controlled failure rate (1: the default generator)
    init_vividness: float = 0.35  # initial median vividness (sigmoid of the Gaussian's mean)
    init_vividness_std: float = 0.5  # initial std of the Gaussian over logit(vividness)
    min_vividness_std: float = 0.05  # the std never shrinks below this (in logit space)
    learn_vividness_std: bool = True

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        unknown = sorted(set(self.kinds) - set(FAILURE_KINDS))
        if unknown:
            raise ValueError(f"unknown failure kind(s) {unknown}; known: {', '.join(FAILURE_KINDS)}")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds must not repeat")
        if self.max_scale <= 0:
            raise ValueError(f"max_scale must be positive, got {self.max_scale}")
        if not 0 < self.init_scale < self.max_scale:
            raise ValueError(f"init_scale must lie in (0, max_scale={self.max_scale}), got {self.init_scale}")
        if not 0 < self.init_vividness < 1:
            raise ValueError(f"init_vividness must lie in (0, 1), got {self.init_vividness}")
        if not 0 < self.min_vividness_std <= self.init_vividness_std:
            raise ValueError("need 0 < min_vividness_std <= init_vividness_std")


class _ScaledGenerator(WorldGenerator):
    """The world's generator with every failure draw's rate multiplied by a per-kind scale.

    Hooks ``WorldGenerator._decide``, the one place every failure draw goes through, and records each draw's
    unscaled base rate (the generator's own log keeps only the rounded scaled rate).
    """

    def __init__(self, config: GeneratorConfig, scales: Mapping[str, float]):
        super().__init__(config)
        self.scales = scales
        self.draws: list[tuple[str, float, bool]] = []

    def _decide(self, log: list[Decision], seed: int, kind: str, key: str, rate: float) -> bool:
        base = min(1.0, max(0.0, rate))
        fired = super()._decide(log, seed, kind, key, base * self.scales.get(kind, 1.0))
        self.draws.append((kind, base, fired))
        return fired


@dataclass
class PolicySample:
    """One generation of the policy: the image and its record, and the action it took (for ``log_prob``)."""

    request: str
    seed: int
    z: float  # the Gaussian draw: vividness = sigmoid(z)
    vividness: float  # what the generator used (rounded to 4 decimals by the world)
    draws: tuple[tuple[str, float, bool], ...]  # (failure kind, base rate, fired) for every failure draw
    generation: Generation = field(repr=False)
    source: Any = field(default=None, repr=False)  # the edit's source image as given (bytes, PIL, ...)
    group: Hashable = None  # the prompt key (GRPO groups)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> GenerationRecord:
        return self.generation.record

    @property
    def image(self) -> Any:
        return self.generation.image

    def fired(self, kind: str | None = None) -> int:
        """How many failure draws fired (of one kind, or of any)."""
        return sum(1 for k, _, f in self.draws if f and (kind is None or k == kind))

    def to_sample(self) -> Sample:
        """The generation as a reward-model ``Sample`` (request, image, and the source image for edits)."""
        if self.image is None:
            raise ValueError("this generation was simulated without pixels (render=False); a reward model needs them")
        return Sample(request=self.request, image=self.image, source=self.source, meta={"seed": self.seed})


class GeneratorPolicy:
    """Learnable failure-rate logits and a Gaussian over logit(vividness); see the module docstring.

    The parameters are float64 torch tensors (``parameters()`` for an optimiser); ``state_dict`` /
    ``load_state_dict`` save and restore them as plain lists.
    """

    def __init__(self, config: PolicyConfig | None = None):
        torch = _torch()
        self.config = config or PolicyConfig()
        cfg = self.config
        self.kinds = cfg.kinds
        self._kind_index = {k: i for i, k in enumerate(self.kinds)}
        theta0 = _logit(cfg.init_scale / cfg.max_scale)
        self.failure_logits = torch.full((len(self.kinds),), theta0, dtype=torch.float64, requires_grad=True)
        self.vivid_mu = torch.tensor(_logit(cfg.init_vividness), dtype=torch.float64, requires_grad=True)
        self.vivid_log_std = torch.tensor(
            math.log(cfg.init_vividness_std), dtype=torch.float64, requires_grad=cfg.learn_vividness_std
        )

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors (the vividness std only when ``learn_vividness_std``)."""
        out = [self.failure_logits, self.vivid_mu]
        return out + [self.vivid_log_std] if self.config.learn_vividness_std else out

    def state_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "failure_logits": self.failure_logits.detach().tolist(),
            "vivid_mu": float(self.vivid_mu.detach()),
            "vivid_log_std": float(self.vivid_log_std.detach()),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["kinds"]) != list(self.kinds):
            raise ValueError(f"state controls kinds {state['kinds']}, this policy {list(self.kinds)}")
        torch = _torch()
        with torch.no_grad():
            self.failure_logits.copy_(torch.tensor(state["failure_logits"], dtype=torch.float64))
            self.vivid_mu.fill_(float(state["vivid_mu"]))
            self.vivid_log_std.fill_(float(state["vivid_log_std"]))

    # ------------------------------------------------------------------ distribution
    def scales(self) -> torch.Tensor:
        """Per controlled kind, the factor its failure rates are multiplied by (differentiable)."""
        return self.config.max_scale * self.failure_logits.sigmoid()

    def vividness_std(self) -> torch.Tensor:
        torch = _torch()
        return torch.clamp(self.vivid_log_std.exp(), min=self.config.min_vividness_std)

    def scale_map(self) -> dict[str, float]:
        return {k: float(s) for k, s in zip(self.kinds, self.scales().detach().tolist(), strict=True)}

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        request: str,
        seed: int,
        source: Any = None,
        world: World | None = None,
        render: bool = True,
        group: Hashable = None,
        task: str | None = None,
    ) -> PolicySample:
        """One generation for ``request`` (seeded). ``source``: an edit's source image (or Scene / record).

        The image is registered in ``world`` (default: ``default_world()``, the one the synthetic teacher reads)
        so that a critic can find its scene; ``render=False`` simulates without pixels (nothing registered).
        """
        from ..synthetic.world import default_world

        world = world if world is not None else default_world()
        seed = int(seed)
        eps = random.Random(f"policy-vividness|{seed}").gauss(0.0, 1.0)
        z = float(self.vivid_mu.detach()) + float(self.vividness_std().detach()) * eps
        vividness = 1.0 / (1.0 + math.exp(-z))
        gen_ = _ScaledGenerator(world.config, self.scale_map())
        src_scene, src_viv = world.resolve_source(source)
        generation = gen_.generate(request, seed, vividness, src_scene, src_viv, task, render=render)
        if render:
            world.registry.add(generation.record)
        return PolicySample(
            request=request,
            seed=seed,
            z=z,
            vividness=generation.record.vividness,
            draws=tuple(gen_.draws),
            generation=generation,
            source=source,
            group=group,
        )

    # ------------------------------------------------------------------ likelihood
    def log_prob(self, samples: Sequence[PolicySample]) -> torch.Tensor:
        """``log pi(sample)`` under the current parameters, one per sample (differentiable, float64)."""
        torch = _torch()
        n = len(samples)
        owner: list[int] = []
        kind_idx: list[int] = []
        base: list[float] = []
        fired: list[bool] = []
        for i, s in enumerate(samples):
            for kind, b, f in s.draws:
                k = self._kind_index.get(kind)
                if k is None or b <= 0.0:
                    continue
                owner.append(i)
                kind_idx.append(k)
                base.append(b)
                fired.append(f)
        z = torch.tensor([s.z for s in samples], dtype=torch.float64)
        std = self.vividness_std()
        lp = -0.5 * ((z - self.vivid_mu) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
        if owner:
            p = torch.tensor(base, dtype=torch.float64) * self.scales()[torch.tensor(kind_idx)]
            p = p.clamp(_P_EPS, 1 - _P_EPS)
            f = torch.tensor(fired, dtype=torch.bool)
            per_draw = torch.where(f, torch.log(p), torch.log1p(-p))
            lp = lp + torch.zeros(n, dtype=torch.float64).index_add(0, torch.tensor(owner), per_draw)
        return lp

    # ------------------------------------------------------------------ reporting
    def summary(self) -> dict[str, Any]:
        """Median vividness, the Gaussian's parameters and every kind's failure-rate scale (plain floats)."""
        mu = float(self.vivid_mu.detach())
        return {
            "vividness_median": 1.0 / (1.0 + math.exp(-mu)),
            "vividness_mu": mu,
            "vividness_std": float(self.vividness_std().detach()),
            "failure_scales": self.scale_map(),
        }


__all__ = ["FAILURE_KINDS", "GeneratorPolicy", "PolicyConfig", "PolicySample"]
