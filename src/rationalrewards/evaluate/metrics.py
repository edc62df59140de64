"""Accuracy with seeded cluster-bootstrap confidence intervals, and the tie threshold ε (swept, and chosen held-out)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

N_BOOT = 1000
ALPHA = 0.05


@dataclass
class Accuracy:
    """``correct / total`` over judgements, with a 95% CI from resampling clusters (pairs or groups)."""

    correct: int
    total: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n_clusters: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Accuracy:
        return cls(**{k: d.get(k) for k in ("correct", "total", "value", "ci_low", "ci_high", "n_clusters")})

    def fmt(self, digits: int = 1) -> str:
        """``72.3 [70.1, 74.5]`` in percent; ``n/a`` with nothing to count."""
        if self.value is None:
            return "n/a"
        s = f"{100 * self.value:.{digits}f}"
        if self.ci_low is not None and self.ci_high is not None:
            s += f" [{100 * self.ci_low:.{digits}f}, {100 * self.ci_high:.{digits}f}]"
        return s


def _cluster_sums(correct: np.ndarray, clusters: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    correct = np.asarray(correct, dtype=float)
    if clusters is None:
        return correct, np.ones_like(correct)
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    hits = np.bincount(inverse, weights=correct)
    counts = np.bincount(inverse).astype(float)
    return hits, counts


def bootstrap_ci(
    correct: np.ndarray,
    clusters: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    alpha: float = ALPHA,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the accuracy, resampling whole clusters with replacement (seeded; None when empty).

    A cluster matters only through its (right, judged) counts, so drawing m clusters
    with replacement is drawing how many of each distinct (right, judged) kind: one
    multinomial per replicate, the same distribution as resampling indices, at a cost
    independent of m.
    """
    hits, counts = _cluster_sums(correct, clusters)
    m = len(hits)
    if m == 0:
        return None
    kinds, freq = np.unique(np.stack([hits, counts], axis=1), axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(m, freq / m, size=n_boot)
    stats = (draws @ kinds[:, 0]) / (draws @ kinds[:, 1])
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def accuracy(correct: np.ndarray, clusters: np.ndarray | None = None, seed: int = 0, n_boot: int = N_BOOT) -> Accuracy:
    """Point accuracy and its bootstrap CI; ``clusters`` ties together judgements of one pair or group."""
    correct = np.asarray(correct, dtype=bool)
    total = int(correct.size)
    if total == 0:
        return Accuracy(correct=0, total=0, value=None)
    ci = bootstrap_ci(correct, clusters, n_boot=n_boot, seed=seed)
    n_clusters = total if clusters is None else int(np.unique(np.asarray(clusters)).size)
    return Accuracy(
        correct=int(correct.sum()),
        total=total,
        value=float(correct.mean()),
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        n_clusters=n_clusters,
    )


# ---------------------------------------------------------------------------
# tie threshold

A, B, TIE, NONE = 0, 1, 2, -1


def verdict_from_diff(diff: np.ndarray, eps: float) -> np.ndarray:
    """A where ``diff > eps``, B where ``diff < -eps``, tie in between, NONE where the diff is NaN."""
    diff = np.asarray(diff, dtype=float)
    out = np.full(diff.shape, TIE, dtype=int)
    out[diff > eps] = A
    out[diff < -eps] = B
    out[np.isnan(diff)] = NONE
    return out


def threshold_grid(diff: np.ndarray, max_points: int = 201) -> np.ndarray:
    """Every ε at which a verdict can change (0 and each |diff|), thinned to quantiles when there are many."""
    d = np.abs(np.asarray(diff, dtype=float))
    d = d[~np.isnan(d)]
    grid = np.unique(np.concatenate([[0.0], np.round(d, 9)]))
    if grid.size > max_points:
        grid = np.unique(np.quantile(grid, np.linspace(0, 1, max_points)))
    return grid


def sweep(diff: np.ndarray, labels: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Accuracy of the score-difference verdict at every ε of ``grid`` (labels: A/B/TIE codes)."""
    diff = np.asarray(diff, dtype=float)
    labels = np.asarray(labels, dtype=int)
    if labels.size == 0:
        return np.full(grid.shape, np.nan)
    absd = np.abs(diff)
    sign = np.where(diff > 0, A, B)
    nan = np.isnan(diff)
    # verdict at eps: TIE if |d| <= eps, else sign; NONE if nan
    is_tie = absd[None, :] <= grid[:, None]
    verdict = np.where(is_tie, TIE, sign[None, :])
    verdict[:, nan] = NONE
    return (verdict == labels[None, :]).mean(axis=1)


def split_heldout(clusters: np.ndarray, seed: int = 0) -> np.ndarray:
    """A deterministic half split by cluster id: True = calibration half, False = test half."""
    out = np.empty(len(clusters), dtype=bool)
    cache: dict[Any, bool] = {}
    for i, c in enumerate(clusters):
        if c not in cache:
            h = hashlib.sha256(f"{seed}:{c}".encode()).digest()
            cache[c] = h[0] % 2 == 0
        out[i] = cache[c]
    return out


def tie_threshold(
    diff: np.ndarray, labels: np.ndarray, clusters: np.ndarray, seed: int = 0, n_boot: int = N_BOOT
) -> dict[str, Any]:
    """Sweep ε over all data (oracle best, optimistic) and choose ε on a calibration half, scored on the other half.

    Returns ``{"grid", "accuracy", "best": {"eps", "accuracy"}, "heldout": {"eps", "calib_accuracy", "test"}}``;
    ``heldout`` is None when a half is empty.
    """
    diff = np.asarray(diff, dtype=float)
    labels = np.asarray(labels, dtype=int)
    clusters = np.asarray(clusters)
    grid = threshold_grid(diff)
    acc = sweep(diff, labels, grid)
    out: dict[str, Any] = {"grid": grid.tolist(), "accuracy": [None if np.isnan(a) else float(a) for a in acc]}
    if labels.size == 0:
        out["best"] = None
        out["heldout"] = None
        return out
    i = int(np.nanargmax(acc))  # first maximum: the smallest best ε
    out["best"] = {"eps": float(grid[i]), "accuracy": float(acc[i])}
    calib = split_heldout(clusters, seed)
    if calib.all() or not calib.any():
        out["heldout"] = None
        return out
    acc_c = sweep(diff[calib], labels[calib], grid)
    j = int(np.nanargmax(acc_c))
    eps = float(grid[j])
    test_correct = verdict_from_diff(diff[~calib], eps) == labels[~calib]
    out["heldout"] = {
        "eps": eps,
        "calib_accuracy": float(acc_c[j]),
        "n_calib": int(calib.sum()),
        "test": accuracy(test_correct, clusters[~calib], seed=seed, n_boot=n_boot).to_dict(),
    }
    return out
