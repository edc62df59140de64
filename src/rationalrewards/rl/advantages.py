"""Advantages from rational rewards for group-relative policy optimisation: pure numpy, torch in -> torch out.

- ``group_advantages``: GRPO on a scalar reward. Per prompt group ``(r - mean) / (std + eps)``; ``scale="batch"``
  divides by the standard deviation of the whole batch instead (flow_grpo's ``global_std``, TRL's
  ``scale_rewards="batch"``), ``scale="none"`` only centres. ``ddof=0`` is the population std flow_grpo uses;
  TRL uses ``ddof=1``. Optional symmetric ``clip``.
- ``decoupled_advantages``: each dimension normalised within its group first, then combined with weights, so a
  dimension with little spread does not drown the others (nor one with a large spread dominate).
- ``apply_floor``: any scored dimension below its floor makes the advantage non-positive.
- ``PerPromptStatTracker`` / ``zero_std_ratio``: flow_grpo's per-prompt history tracker and its zero-std logging.

Rules shared by every function (documented once here):

- **Missing rewards** (None or NaN: a failed critique) are left out of every mean and std; their advantage
  is 0 (``missing="zero"``, the default, as TRL does for unscorable completions) or NaN (``missing="nan"``, to
  mask them yourself).
- **No spread, no signal**: when the valid rewards of a group are all equal (ties, or a group of one) the
  advantage is exactly 0, not ``0 / eps`` rounding noise.
- ``groups`` is one hashable key per sample (usually the prompt); ``None`` makes the whole batch one group.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

Scale = Literal["group", "batch", "none"]
Missing = Literal["zero", "nan"]
ScoresLike = Any  # Mapping[str, array-like] or a list of per-sample dicts (``RationalRewardModel.reward_vectors``)


def _as_array(x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """float64 numpy array (None -> NaN) and a function that gives the output back in the input's kind."""
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        import torch

        device = x.device
        dtype = x.dtype if x.is_floating_point() else torch.float32
        arr = x.detach().cpu().double().numpy()
        return arr, lambda out: torch.from_numpy(np.ascontiguousarray(out)).to(device=device, dtype=dtype)
    if isinstance(x, np.ndarray) and x.dtype != object:
        return x.astype(np.float64), lambda out: out
    seq = list(x)
    if seq and isinstance(seq[0], (list, tuple, np.ndarray)):
        arr = np.array([[np.nan if v is None else float(v) for v in row] for row in seq], dtype=np.float64)
    else:
        arr = np.array([np.nan if v is None else float(v) for v in seq], dtype=np.float64)
    return arr, lambda out: out


def _group_codes(groups: Sequence[Hashable] | None, n: int) -> tuple[np.ndarray, int]:
    if groups is None:
        return np.zeros(n, dtype=np.int64), 1
    if type(groups).__module__.startswith("torch"):
        groups = groups.tolist()
    groups = list(groups)
    if len(groups) != n:
        raise ValueError(f"{n} rewards but {len(groups)} group keys")
    index: dict[Any, int] = {}
    codes = np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)
    return codes, len(index)


def _nanstats(block: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean, std and whether all valid values are equal, ignoring NaN (all-NaN columns: NaN, 0, True)."""
    valid = np.isfinite(block)
    count = valid.sum(axis=0)
    filled = np.where(valid, block, 0.0)
    mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
    dev = np.where(valid, block - mean, 0.0)
    denom = count - ddof
    std = np.where(denom > 0, np.sqrt((dev**2).sum(axis=0) / np.maximum(denom, 1)), 0.0)
    hi = np.where(valid, block, -np.inf).max(axis=0)
    lo = np.where(valid, block, np.inf).min(axis=0)
    equal = (count == 0) | (hi == lo)
    return mean, std, equal


def _check(scale: str, missing: str, eps: float, ddof: int, clip: float | None) -> None:
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    if missing not in ("zero", "nan"):
        raise ValueError(f"missing must be 'zero' or 'nan', got {missing!r}")
    if eps < 0:
        raise ValueError(f"eps must not be negative, got {eps}")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1, got {ddof}")
    if clip is not None and clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")


def _normalise(r: np.ndarray, codes: np.ndarray, n_groups: int, scale: str, eps: float, ddof: int) -> np.ndarray:
    """(N, K) rewards -> (N, K) group-relative advantages; NaN where the reward is NaN."""
    out = np.full_like(r, np.nan)
    batch_std = _nanstats(r, ddof)[1] if scale == "batch" else None
    for g in range(n_groups):
        idx = codes == g
        block = r[idx]
        mean, std, equal = _nanstats(block, ddof)
        adv = block - mean
        if scale == "group":
            adv = adv / (std + eps)
        elif scale == "batch":
            adv = adv / (batch_std + eps)
        adv = np.where(equal & np.isfinite(block), 0.0, adv)
        out[idx] = adv
    return out


def _finish(adv: np.ndarray, clip: float | None, missing: str) -> np.ndarray:
    if clip is not None:
        adv = np.clip(adv, -clip, clip)
    if missing == "zero":
        adv = np.where(np.isfinite(adv), adv, 0.0)
    return adv


def group_advantages(
    rewards: Any,
    groups: Sequence[Hashable] | None = None,
    *,
    scale: Scale = "group",
    eps: float = 1e-4,
    ddof: int = 0,
    clip: float | None = None,
    missing: Missing = "zero",
    floor: float | Mapping[str, float] | None = None,
    scores: ScoresLike | None = None,
) -> Any:
    """GRPO advantages of scalar ``rewards`` (shape (N,) or (N, T), columns normalised independently).

    ``floor`` with ``scores`` (per-dimension 1-4 scores) makes the advantage of any sample with a scored
    dimension below the floor non-positive (see ``apply_floor``). See the module docstring for the rules.
    """
    _check(scale, missing, eps, ddof, clip)
    arr, back = _as_array(rewards)
    if arr.ndim not in (1, 2):
        raise ValueError(f"rewards must be 1-D or 2-D, got shape {arr.shape}")
    n = arr.shape[0]
    codes, n_groups = _group_codes(groups, n)
    adv = _normalise(arr.reshape(n, -1), codes, n_groups, scale, eps, ddof).reshape(arr.shape)
    if floor is not None:
        if scores is None:
            raise ValueError("floor needs the per-dimension scores (scores=...)")
        adv = _floor(adv, _scores_mapping(scores, n), floor)
    return back(_finish(adv, clip, missing))


def _scores_mapping(scores: ScoresLike, n: int | None = None) -> dict[str, np.ndarray]:
    if isinstance(scores, Mapping):
        out = {k: _as_array(v)[0] for k, v in scores.items()}
    else:
        rows = list(scores)
        keys: list[str] = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise TypeError(f"scores must be a mapping of arrays or a list of dicts, got a list of {type(row)}")
            keys += [k for k in row if k not in keys]
        out = {k: _as_array([row.get(k) for row in rows])[0] for k in keys}
    for k, v in out.items():
        if v.ndim != 1:
            raise ValueError(f"scores[{k!r}] must be 1-D, got shape {v.shape}")
        if n is not None and len(v) != n:
            raise ValueError(f"{n} rewards but {len(v)} scores for {k!r}")
    return out


def _floor(adv: np.ndarray, scores: Mapping[str, np.ndarray], floor: float | Mapping[str, float]) -> np.ndarray:
    floors = dict(floor) if isinstance(floor, Mapping) else {k: float(floor) for k in scores}
    unknown = sorted(set(floors) - set(scores))
    if unknown:
        raise ValueError(f"floor names dimension(s) with no scores: {unknown}; scores have {sorted(scores)}")
    n = adv.shape[0]
    below = np.zeros(n, dtype=bool)
    for key, f in floors.items():
        s = scores[key]
        below |= np.isfinite(s) & (s < f)
    if adv.ndim == 2:
        below = below[:, None]
    return np.where(below & np.isfinite(adv), np.minimum(adv, 0.0), adv)


def apply_floor(advantages: Any, scores: ScoresLike, floor: float | Mapping[str, float]) -> Any:
    """Cap at 0 the advantage of every sample with a scored dimension below its floor.

    ``floor`` is one number for every dimension in ``scores`` or ``{key: floor}``; N/A and missing
    dimensions (None / NaN) never trigger it.
    """
    arr, back = _as_array(advantages)
    return back(_floor(arr, _scores_mapping(scores, arr.shape[0]), floor))


def decoupled_advantages(
    scores: ScoresLike,
    groups: Sequence[Hashable] | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    keys: Sequence[str] | None = None,
    scale: Scale = "group",
    eps: float = 1e-4,
    ddof: int = 0,
    clip: float | None = None,
    missing: Missing = "zero",
    renormalize: bool = False,
    floor: float | Mapping[str, float] | None = None,
) -> Any:
    """Per-dimension group advantages combined by a weighted mean (decoupled normalisation).

    ``scores``: ``{key: (N,) scores}`` or a list of per-sample dicts (``RationalRewardModel.reward_vectors``).
    Each dimension is normalised within its group (``group_advantages`` rules); the advantage of a sample
    is ``sum_k w_k a_k / sum_k w_k`` over the dimensions it has a score for (an N/A dimension neither helps
    nor hurts; a sample with none is missing). ``weights`` default to 1 for every key used; ``keys`` default
    to the weighted keys, else every key with at least one score. ``renormalize`` rescales the combined
    advantage to zero mean and unit std over the batch. ``floor`` and ``clip`` apply last, in that order.
    The output is numpy unless the first array in ``scores`` was a torch tensor.
    """
    _check(scale, missing, eps, ddof, clip)
    first = next(iter(scores.values())) if isinstance(scores, Mapping) and scores else None
    back = _as_array(first)[1] if first is not None else (lambda out: out)
    table = _scores_mapping(scores)
    if not table:
        raise ValueError("no dimension scores given")
    n = len(next(iter(table.values())))
    for k, v in table.items():
        if len(v) != n:
            raise ValueError(f"scores[{k!r}] has {len(v)} values, others have {n}")
    if keys is None:
        keys = list(weights) if weights is not None else [k for k, v in table.items() if np.isfinite(v).any()]
    keys = list(keys)
    unknown = sorted(set(keys) - set(table))
    if unknown:
        raise ValueError(f"no scores for dimension(s) {unknown}; scores have {sorted(table)}")
    w = {k: float((weights or {}).get(k, 1.0 if weights is None else 0.0)) for k in keys}
    if any(v < 0 for v in w.values()):
        raise ValueError("weights must not be negative")
    codes, n_groups = _group_codes(groups, n)
    total = np.zeros(n)
    weight_sum = np.zeros(n)
    for k in keys:
        if w[k] == 0:
            continue
        a = _normalise(table[k].reshape(n, 1), codes, n_groups, scale, eps, ddof)[:, 0]
        present = np.isfinite(a)
        total += np.where(present, w[k] * a, 0.0)
        weight_sum += np.where(present, w[k], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        adv = np.where(weight_sum > 0, total / np.where(weight_sum > 0, weight_sum, 1.0), np.nan)
    if renormalize:
        mean, std, equal = _nanstats(adv.reshape(n, 1), ddof)
        adv = np.where(np.isfinite(adv), 0.0 if equal[0] else (adv - mean[0]) / (std[0] + eps), np.nan)
    if floor is not None:
        adv = _floor(adv, table, floor)
    return back(_finish(adv, clip, missing))


# ---------------------------------------------------------------------------------------------------- tracker


class PerPromptStatTracker:
    """flow_grpo's per-prompt reward statistics, NaN-aware.

    ``update(prompts, rewards)`` appends this batch's rewards to each prompt's history (kept until ``clear()``,
    as flow_grpo's training loop clears it once per epoch) and returns ``(r - mean_history) / (std + eps)``,
    where ``std`` is the prompt's history std, or with ``global_std=True`` the std of this whole batch.
    ``rewards`` may be (N,) or (N, T) (flow_grpo repeats ``avg`` over timesteps); statistics are per column.
    ``return_stats=True`` also returns the per-sample stds and means (the DiffusionNFT fork's return value).
    NaN rewards are kept out of the statistics and get advantage 0; a prompt whose valid history is all equal
    gets advantage 0.
    """

    def __init__(self, global_std: bool = False, eps: float = 1e-4, ddof: int = 0):
        _check("group", "zero", eps, ddof, None)
        self.global_std = global_std
        self.eps = eps
        self.ddof = ddof
        self.stats: dict[Hashable, np.ndarray] = {}
        self.history_prompts: set[Hashable] = set()

    def update(self, prompts: Sequence[Hashable], rewards: Any, return_stats: bool = False) -> Any:
        arr, back = _as_array(rewards)
        if arr.ndim not in (1, 2):
            raise ValueError(f"rewards must be 1-D or 2-D, got shape {arr.shape}")
        n = arr.shape[0]
        codes, n_groups = _group_codes(prompts, n)
        keys = list(dict.fromkeys(prompts))
        r = arr.reshape(n, -1)
        for g, key in enumerate(keys):
            rows = r[codes == g]
            old = self.stats.get(key)
            if old is not None and old.shape[1] != rows.shape[1]:
                raise ValueError(f"rewards for {key!r} have {rows.shape[1]} columns, earlier ones {old.shape[1]}")
            self.stats[key] = rows.copy() if old is None else np.concatenate([old, rows])
            self.history_prompts.add(key)
        batch_std = _nanstats(r, self.ddof)[1] if self.global_std else None
        adv = np.zeros_like(r)
        stds = np.zeros_like(r)
        means = np.zeros_like(r)
        for g, key in enumerate(keys):
            idx = codes == g
            mean, std, equal = _nanstats(self.stats[key], self.ddof)
            if batch_std is not None:
                std = batch_std
            a = (r[idx] - mean) / (std + self.eps)
            a = np.where(equal, 0.0, a)
            adv[idx] = np.where(np.isfinite(a), a, 0.0)
            stds[idx] = std + self.eps
            means[idx] = mean
        shape = arr.shape
        if return_stats:
            return back(adv.reshape(shape)), back(stds.reshape(shape)), back(means.reshape(shape))
        return back(adv.reshape(shape))

    def get_stats(self) -> tuple[float, int]:
        """(average number of rewards per prompt in the current history, number of prompts ever seen)."""
        avg = sum(len(v) for v in self.stats.values()) / len(self.stats) if self.stats else 0.0
        return avg, len(self.history_prompts)

    def clear(self) -> None:
        self.stats = {}

    def get_mean_of_top_rewards(self, top_percentage: float) -> float:
        """Mean over prompts of the mean of each prompt's top ``top_percentage`` % rewards (column 0, NaN-aware)."""
        if not 0 <= top_percentage <= 100:
            raise ValueError(f"top_percentage must be in [0, 100], got {top_percentage}")
        means = []
        for rows in self.stats.values():
            vals = rows[:, 0][np.isfinite(rows[:, 0])]
            if vals.size == 0:
                continue
            top = vals[vals >= np.percentile(vals, 100 - top_percentage)]
            if top.size:
                means.append(float(top.mean()))
        return float(np.mean(means)) if means else 0.0


def zero_std_ratio(prompts: Sequence[Hashable], rewards: Any) -> tuple[float, float]:
    """(fraction of prompt groups whose rewards have zero std, mean std over groups), as flow_grpo logs them.

    Uses column 0 of 2-D rewards; NaN rewards are ignored; groups with no valid reward are left out.
    """
    arr, _ = _as_array(rewards)
    r = arr.reshape(arr.shape[0], -1)[:, :1]
    codes, n_groups = _group_codes(prompts, r.shape[0])
    stds = []
    for g in range(n_groups):
        block = r[codes == g]
        if not np.isfinite(block).any():
            continue
        _, std, equal = _nanstats(block, 0)
        stds.append(0.0 if equal[0] else float(std[0]))
    if not stds:
        return float("nan"), float("nan")
    stds_arr = np.array(stds)
    return float(np.count_nonzero(stds_arr == 0) / len(stds_arr)), float(stds_arr.mean())
