"""Reward functions in the calling conventions of common diffusion-RL trainers, over one batched critique call.

**flow_grpo / DiffusionNFT** (``flow_grpo_reward``). flow_grpo's reward functions are built by a factory and
called as ``fn(images, prompts, metadata)``; its ``multi_score`` combiner, and the RationalRewards / DiffusionNFT
training scripts, call ``fn(images, prompts, metadata, ref_images=None, only_strict=...)`` and expect
``(rewards, reward_metadata)`` where ``rewards`` is a dict of per-sample arrays holding at least ``"avg"`` (the
scalar the trainer optimises; the scripts turn every key into a tensor and log its mean as ``reward_<key>``).
``FlowGRPOReward`` returns, as float64 numpy arrays of length N::

    "avg"                 the aggregate reward in [0, 1] (``RationalRewardModel.reward_of``: weights apply)
    "<dimension key>"     one per rubric dimension, the 1-4 score (NaN: N/A, missing, not applicable, failed)
    "valid"               1.0 where the critique gave a reward, 0.0 where it failed (the mask key)

``images`` may be uint8 NHWC numpy, a float NCHW torch tensor in [0, 1] (``value_range=(-1, 1)`` for [-1, 1]),
a uint8 NCHW torch tensor, or a list of anything ``images.load_image`` reads (PIL, bytes, paths, data URLs,
HWC uint8 arrays). ``ref_images`` (same forms) are the source images of an edit. ``only_strict`` and other
keyword arguments trainers pass are accepted and ignored. ``dict_output=False`` returns ``(avg, metadata)``
instead, the shape of one scorer inside flow_grpo's ``multi_score``.

**TRL** (``trl_reward``). ``fn(prompts, completions, **kwargs) -> list[float | None]`` with ``__name__`` set
for TRL's logging. TRL passes every extra dataset column as a keyword list. The generated image is read from
the completion by default (a PIL image / array / path / bytes, a one-image list, ``{"image": ...}``, or a
conversational message whose content has an ``{"type": "image", "image": ...}`` part), or from the column
named by ``image_key``. The request is the prompt (a string, or the last user text of a conversational prompt)
or the column named by ``request_key``; an edit's source image comes from the column ``source_key``.

**Failed critiques are never a silent number.** ``on_failure`` picks the policy, and every call counts it in
``.stats`` and logs a warning on the ``rationalrewards.rl`` logger:

- ``"none"`` (default): NaN in every array and ``valid = 0`` (flow_grpo); ``None`` (TRL, which then leaves the
  sample out of its group statistics and gives it advantage 0).
- ``"drop"`` (flow_grpo only): the arrays hold only the scored samples; ``metadata["kept_indices"]`` and
  ``metadata["dropped_indices"]`` say which. The trainer must realign. TRL needs one reward per completion, so
  ``trl_reward`` refuses it.
- ``"value"``: ``avg`` (or the TRL reward) is ``failure_value``, which must be given explicitly; dimension
  arrays stay NaN and ``valid`` stays 0, so the fill is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..images import load_image
from ..rubric import DIMENSION_KEYS
from ..schema import Critique, Sample

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from ..model import RationalRewardModel

log = logging.getLogger("rationalrewards.rl")

FailurePolicy = Literal["none", "drop", "value"]
MASK_KEY = "valid"
AVG_KEY = "avg"
_POLICIES = ("none", "drop", "value")
_RANGE_TOLERANCE = 1e-3


@dataclass
class ItemScore:
    """What a scorer returns per sample: local (``RationalRewardModel``) and remote (``RewardClient``) alike."""

    reward: float | None
    scores: dict[str, float | None]
    parse_status: str
    error: str | None = None
    critique: Critique | None = None


Scorer = Callable[[list[Sample], bool], list[ItemScore]]


def failure_reason(c: Critique) -> str | None:
    """Why a critique has no clean reward (None when it parsed cleanly)."""
    if c.parse_status == "ok":
        return None
    missing = f"no score for: {', '.join(c.missing)}" if c.missing else ""
    return "; ".join(c.parse_errors) or missing or f"parse status {c.parse_status}"


def model_scorer(model: RationalRewardModel) -> Scorer:
    """A scorer over a local ``RationalRewardModel``: one batched ``score`` call per invocation."""

    def score(samples: list[Sample], return_critiques: bool = False) -> list[ItemScore]:
        return [
            ItemScore(s.reward, s.vector, s.critique.parse_status, failure_reason(s.critique), s.critique)
            for s in model.score(samples)
        ]

    return score


def as_scorer(model: Any) -> Scorer:
    """A ``RationalRewardModel``, a ``Backend``, a backend spec string or a ``RewardClient`` -> a scorer."""
    if hasattr(model, "item_scores"):  # RewardClient (remote)
        return model.item_scores
    from ..backends import Backend
    from ..model import RationalRewardModel

    if isinstance(model, (str, Backend)):
        model = RationalRewardModel(model)
    if not isinstance(model, RationalRewardModel):
        raise TypeError(
            "expected a RationalRewardModel, a Backend, a backend spec string or a RewardClient, "
            f"got {type(model).__name__}"
        )
    return model_scorer(model)


# ---------------------------------------------------------------------------------------------------- images


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _from_uint8_hwc(arr: np.ndarray) -> Image.Image:
    from PIL import Image

    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return load_image(Image.fromarray(arr))


def _tensor_to_pil(t: Any, value_range: tuple[float, float]) -> list[Image.Image]:
    t = t.detach().cpu()
    if t.ndim != 4 or t.shape[1] not in (1, 3, 4):
        raise ValueError(f"a tensor of images must be NCHW with 1, 3 or 4 channels, got shape {tuple(t.shape)}")
    import torch

    if t.dtype == torch.uint8:
        arr = t.numpy()
    elif t.is_floating_point():
        t = t.float()
        lo, hi = value_range
        tmin, tmax = float(t.min()), float(t.max())
        if tmin < lo - _RANGE_TOLERANCE or tmax > hi + _RANGE_TOLERANCE:
            hint = " (pass value_range=(-1, 1) for images in [-1, 1])" if tmin < 0 and lo >= 0 else ""
            raise ValueError(f"float images must lie in [{lo}, {hi}], got values in [{tmin:.4g}, {tmax:.4g}]{hint}")
        t = (t - lo) / (hi - lo)
        arr = (t * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    else:
        raise ValueError(f"a tensor of images must be uint8 or floating point, got {t.dtype}")
    return [_from_uint8_hwc(a) for a in arr.transpose(0, 2, 3, 1)]


def to_pil_images(images: Any, value_range: tuple[float, float] = (0.0, 1.0)) -> list[Image.Image]:
    """RGB PIL images from any layout trainers hand over (see the module docstring); concise errors otherwise."""
    import numpy as np

    lo, hi = value_range
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    if _is_torch(images):
        return _tensor_to_pil(images, value_range)
    if isinstance(images, np.ndarray):
        if images.dtype == object:
            return [to_pil_images([x], value_range)[0] for x in images.reshape(-1)]
        if images.dtype != np.uint8:
            raise ValueError(
                f"numpy images must be uint8 NHWC, got dtype {images.dtype}; pass float images as a torch NCHW tensor"
            )
        if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
            raise ValueError(f"numpy images must be uint8 NHWC with 1, 3 or 4 channels, got shape {images.shape}")
        return [_from_uint8_hwc(a) for a in images]
    if isinstance(images, (list, tuple)):
        out = []
        for i, x in enumerate(images):
            if _is_torch(x):
                if x.ndim != 3:
                    raise ValueError(f"image {i}: a tensor image must be CHW, got shape {tuple(x.shape)}")
                out.append(_tensor_to_pil(x[None], value_range)[0])
            elif isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 3 and x.shape[-1] == 1:
                out.append(_from_uint8_hwc(x))
            else:
                out.append(load_image(x))
        return out
    raise TypeError(
        f"cannot read images from a {type(images).__name__}: pass uint8 NHWC numpy, an NCHW torch tensor or a list"
    )


# ---------------------------------------------------------------------------------------------------- policy


@dataclass
class RewardStats:
    """Counters over every call of one reward function."""

    calls: int = 0
    items: int = 0
    scored: int = 0
    failed: int = 0  # critiques with no reward (failed parse or backend error)
    partial: int = 0  # scored from a partial parse
    as_none: int = 0  # failures returned as None / NaN
    dropped: int = 0
    filled: int = 0  # failures given failure_value
    last_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failure_rate"] = self.failed / self.items if self.items else 0.0
        return d


class _Adapter:
    """Shared policy handling: score samples once, apply the failure policy, count and log."""

    def __init__(self, model: Any, on_failure: FailurePolicy, failure_value: float | None, return_critiques: bool):
        if on_failure not in _POLICIES:
            raise ValueError(f"on_failure must be one of {', '.join(_POLICIES)}, got {on_failure!r}")
        if on_failure == "value":
            if failure_value is None:
                raise ValueError("on_failure='value' needs an explicit failure_value (no default number is made up)")
            failure_value = float(failure_value)
        elif failure_value is not None:
            raise ValueError(f"failure_value is only used with on_failure='value', not {on_failure!r}")
        self.scorer = as_scorer(model)
        self.on_failure = on_failure
        self.failure_value = failure_value
        self.return_critiques = return_critiques
        self.stats = RewardStats()

    def _score(self, samples: list[Sample]) -> list[ItemScore]:
        results = self.scorer(samples, self.return_critiques)
        if len(results) != len(samples):
            raise RuntimeError(f"scorer returned {len(results)} results for {len(samples)} samples")
        return results

    def _count(self, results: list[ItemScore]) -> list[int]:
        failed = [i for i, r in enumerate(results) if r.reward is None]
        st = self.stats
        st.calls += 1
        st.items += len(results)
        st.failed += len(failed)
        st.scored += len(results) - len(failed)
        st.partial += sum(r.reward is not None and r.parse_status == "partial" for r in results)
        if failed:
            if self.on_failure == "none":
                st.as_none += len(failed)
            elif self.on_failure == "drop":
                st.dropped += len(failed)
            else:
                st.filled += len(failed)
            st.last_errors = [f"item {i}: {results[i].error or 'no reward'}" for i in failed[:5]]
            what = {"none": "left without a reward", "drop": "dropped", "value": f"given {self.failure_value}"}
            log.warning(
                "%d of %d critiques failed to parse (policy %r: %s; %d failed so far); first: %s",
                len(failed),
                len(results),
                self.on_failure,
                what[self.on_failure],
                st.failed,
                st.last_errors[0],
            )
        return failed


def _samples(
    requests: Sequence[str],
    outputs: list[Any],
    sources: list[Any] | None,
    metadata: Sequence[Any] | None = None,
) -> list[Sample]:
    out = []
    for i, (req, img) in enumerate(zip(requests, outputs, strict=True)):
        if not isinstance(req, str) or not req:
            raise ValueError(f"prompt {i} must be a non-empty string, got {type(req).__name__}")
        meta = metadata[i] if metadata is not None and isinstance(metadata[i], Mapping) else {}
        out.append(Sample(request=req, image=img, source=sources[i] if sources else None, meta=dict(meta)))
    return out


def _check_len(name: str, value: Sized, n: int) -> None:
    if len(value) != n:
        raise ValueError(f"{n} images but {len(value)} {name}")


# ---------------------------------------------------------------------------------------------------- flow_grpo


class FlowGRPOReward(_Adapter):
    """``fn(images, prompts, metadata, ref_images=None, **ignored) -> (rewards, reward_metadata)`` (flow_grpo).

    See the module docstring for the layouts, the keys of ``rewards`` and the failure policies.
    ``reward_metadata`` holds ``n``, ``failed_indices``, ``kept_indices`` / ``dropped_indices`` (drop),
    ``filled_indices`` (value), ``parse_status`` and ``errors`` per sample, the running ``stats`` and, with
    ``return_critiques``, the critiques.
    """

    def __init__(
        self,
        model: Any,
        on_failure: FailurePolicy = "none",
        failure_value: float | None = None,
        value_range: tuple[float, float] = (0.0, 1.0),
        return_critiques: bool = False,
        dict_output: bool = True,
        name: str = "rationalrewards",
    ):
        super().__init__(model, on_failure, failure_value, return_critiques)
        lo, hi = value_range
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
        self.value_range = (float(lo), float(hi))
        self.dict_output = dict_output
        self.__name__ = name

    def __call__(
        self,
        images: Any,
        prompts: Sequence[str],
        metadata: Sequence[Any] | Mapping[str, Any] | None = None,
        ref_images: Any = None,
        **_ignored: Any,
    ) -> tuple[Any, dict[str, Any]]:
        import numpy as np

        pil = to_pil_images(images, self.value_range)
        n = len(pil)
        prompts = list(prompts)
        _check_len("prompts", prompts, n)
        sources = None
        if ref_images is not None:
            sources = to_pil_images(ref_images, self.value_range)
            _check_len("ref_images", sources, n)
        per_item_meta = metadata if isinstance(metadata, (list, tuple)) and len(metadata) == n else None
        results = self._score(_samples(prompts, pil, sources, per_item_meta))
        failed = self._count(results)

        avg = np.array([np.nan if r.reward is None else r.reward for r in results], dtype=np.float64)
        rewards: dict[str, np.ndarray] = {AVG_KEY: avg}
        for key in DIMENSION_KEYS:
            vals = [r.scores.get(key) for r in results]
            rewards[key] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        rewards[MASK_KEY] = np.array([r.reward is not None for r in results], dtype=np.float64)

        meta: dict[str, Any] = {
            "n": n,
            "failed_indices": failed,
            "parse_status": [r.parse_status for r in results],
            "errors": {i: r.error for i, r in enumerate(results) if r.error},
        }
        if self.on_failure == "value" and failed:
            avg[failed] = self.failure_value
            meta["filled_indices"] = failed
        if self.on_failure == "drop":
            kept = [i for i in range(n) if results[i].reward is not None]
            rewards = {k: v[kept] for k, v in rewards.items()}
            meta["kept_indices"] = kept
            meta["dropped_indices"] = failed
        if self.return_critiques:
            meta["critiques"] = [r.critique for r in results]
        meta["stats"] = self.stats.as_dict()
        if not self.dict_output:
            return rewards[AVG_KEY], meta
        return rewards, meta


def flow_grpo_reward(model: Any, **options: Any) -> FlowGRPOReward:
    """A flow_grpo / DiffusionNFT reward function over ``model`` (RationalRewardModel, Backend, spec or client).

    ``options``: ``on_failure``, ``failure_value``, ``value_range``, ``return_critiques``, ``dict_output``, ``name``.
    """
    return FlowGRPOReward(model, **options)


# ---------------------------------------------------------------------------------------------------- TRL


def _request_text(prompt: Any, i: int) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):  # conversational: the last user message's text
        for message in reversed(prompt):
            if isinstance(message, Mapping) and message.get("role", "user") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, (list, tuple)):
                    return "".join(
                        p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"
                    )
    raise ValueError(f"prompt {i}: cannot read a request from a {type(prompt).__name__}; pass request_key")


def _completion_image(completion: Any, i: int) -> Any:
    if isinstance(completion, Mapping):
        if "image" in completion:
            return completion["image"]
        content = completion.get("content")
        if isinstance(content, (list, tuple)):
            for part in content:
                if isinstance(part, Mapping) and part.get("type") == "image":
                    return part.get("image")
        if "bytes" in completion or "path" in completion:
            return completion
        raise ValueError(f"completion {i}: no image in a dict with keys {sorted(completion)}")
    if isinstance(completion, (list, tuple)):
        if len(completion) != 1:
            raise ValueError(f"completion {i}: expected one image or one message, got a list of {len(completion)}")
        return _completion_image(completion[0], i)
    return completion


class TRLReward(_Adapter):
    """``fn(prompts, completions, **kwargs) -> list[float | None]`` for TRL trainers (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        on_failure: Literal["none", "value"] = "none",
        failure_value: float | None = None,
        image_key: str | None = None,
        source_key: str | None = None,
        request_key: str | None = None,
        value_range: tuple[float, float] = (0.0, 1.0),
        name: str = "rationalrewards",
    ):
        if on_failure == "drop":
            raise ValueError("TRL needs one reward per completion: use on_failure='none' (None) or 'value'")
        super().__init__(model, on_failure, failure_value, return_critiques=False)
        self.image_key = image_key
        self.source_key = source_key
        self.request_key = request_key
        self.value_range = value_range
        self.__name__ = name

    def _column(self, kwargs: Mapping[str, Any], key: str, n: int) -> list[Any]:
        if key not in kwargs:
            raise KeyError(f"column {key!r} not among the reward kwargs ({', '.join(sorted(kwargs)) or 'none'})")
        col = kwargs[key]
        if _is_torch(col):
            return list(to_pil_images(col, self.value_range))
        col = list(col)
        if len(col) != n:
            raise ValueError(f"{n} completions but {len(col)} values in column {key!r}")
        return [c[0] if isinstance(c, (list, tuple)) and len(c) == 1 else c for c in col]

    def __call__(self, prompts: Sequence[Any], completions: Any, **kwargs: Any) -> list[float | None]:
        n = len(prompts)
        if self.image_key is not None:
            raw = self._column(kwargs, self.image_key, n)
        elif _is_torch(completions):
            raw = list(completions)
        else:
            raw = [_completion_image(c, i) for i, c in enumerate(completions)]
        if len(raw) != n:
            raise ValueError(f"{n} prompts but {len(raw)} completions")
        outputs = to_pil_images(raw, self.value_range)
        requests = (
            [str(r) for r in self._column(kwargs, self.request_key, n)]
            if self.request_key is not None
            else [_request_text(p, i) for i, p in enumerate(prompts)]
        )
        sources = None
        if self.source_key is not None:
            sources = to_pil_images(self._column(kwargs, self.source_key, n), self.value_range)
        results = self._score(_samples(requests, outputs, sources))
        failed = self._count(results)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric(f"{self.__name__}/parse_failed", float(len(failed)))
        if self.on_failure == "value":
            return [self.failure_value if r.reward is None else r.reward for r in results]
        return [r.reward for r in results]


def trl_reward(model: Any, **options: Any) -> TRLReward:
    """A TRL reward function over ``model`` (RationalRewardModel, Backend, spec or client).

    ``options``: ``on_failure`` ("none" | "value"), ``failure_value``, ``image_key``, ``source_key``,
    ``request_key``, ``value_range``, ``name`` (the ``__name__`` TRL logs the reward under).
    """
    return TRLReward(model, **options)
