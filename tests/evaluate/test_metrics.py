"""Accuracy, bootstrap CIs and the tie threshold: arithmetic checked against hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest

from rationalrewards.evaluate.metrics import (
    NONE,
    TIE,
    A,
    B,
    accuracy,
    bootstrap_ci,
    split_heldout,
    sweep,
    threshold_grid,
    tie_threshold,
    verdict_from_diff,
)


def test_accuracy_point_and_ci_contains_it() -> None:
    correct = np.array([1, 1, 1, 0, 1, 0, 1, 1, 1, 1], dtype=bool)
    acc = accuracy(correct, seed=3)
    assert (acc.correct, acc.total, acc.value) == (8, 10, 0.8)
    assert acc.ci_low <= 0.8 <= acc.ci_high
    assert 0.0 <= acc.ci_low < acc.ci_high <= 1.0
    assert acc.fmt() == f"80.0 [{100 * acc.ci_low:.1f}, {100 * acc.ci_high:.1f}]"


def test_empty_accuracy_is_none_not_zero() -> None:
    acc = accuracy(np.array([], dtype=bool))
    assert acc.value is None and acc.ci_low is None and acc.fmt() == "n/a"


def test_ci_is_seeded_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 400, 4000):
        correct = rng.random(n) < 0.7
        lo, hi = bootstrap_ci(correct, seed=1)
        assert lo <= correct.mean() <= hi
        assert bootstrap_ci(correct, seed=1) == (lo, hi)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # roughly the normal-approximation width 2 * 1.96 * sqrt(p(1-p)/n)
    assert widths[1] == pytest.approx(2 * 1.96 * np.sqrt(0.21 / 400), rel=0.25)


def test_cluster_bootstrap_matches_index_resampling() -> None:
    """The multinomial shortcut draws the same distribution as resampling cluster indices."""
    rng = np.random.default_rng(5)
    clusters = np.repeat(np.arange(300), 2)  # two judgements per pair, correlated
    base = rng.random(300) < 0.6
    correct = np.repeat(base, 2)
    correct[rng.random(600) < 0.1] ^= True
    lo, hi = bootstrap_ci(correct, clusters, n_boot=4000, seed=2)
    hits = correct.reshape(300, 2).sum(axis=1)
    idx = np.random.default_rng(9).integers(0, 300, size=(4000, 300))
    naive = hits[idx].sum(axis=1) / 600
    nlo, nhi = np.quantile(naive, [0.025, 0.975])
    assert lo == pytest.approx(nlo, abs=0.01) and hi == pytest.approx(nhi, abs=0.01)
    # clustering widens the interval compared with treating 600 judgements as independent
    ilo, ihi = bootstrap_ci(correct, None, n_boot=4000, seed=2)
    assert (hi - lo) > (ihi - ilo)


def test_verdict_from_diff() -> None:
    d = np.array([0.3, -0.3, 0.1, -0.1, 0.0, np.nan])
    assert verdict_from_diff(d, 0.0).tolist() == [A, B, A, B, TIE, NONE]
    assert verdict_from_diff(d, 0.1).tolist() == [A, B, TIE, TIE, TIE, NONE]


def test_sweep_hand_counted() -> None:
    diff = np.array([0.5, 0.05, -0.4, -0.02, 0.2])
    labels = np.array([A, TIE, B, TIE, B])
    grid = threshold_grid(diff)
    assert grid.tolist() == [0.0, 0.02, 0.05, 0.2, 0.4, 0.5]
    acc = sweep(diff, labels, grid)
    # eps=0: A ok, tie x, B ok, tie x, B x -> 2/5; eps=.02: +1 -> 3/5; eps=.05: 4/5; eps=.2: last->tie (x) 4/5
    # eps=.4: 3rd->tie (x) 3/5; eps=.5: 1st->tie (x) 2/5
    assert acc.tolist() == pytest.approx([0.4, 0.6, 0.8, 0.8, 0.6, 0.4])


def test_tie_threshold_best_and_heldout() -> None:
    rng = np.random.default_rng(0)
    n = 400
    # truth: |diff| < 0.1 means tie, else the sign; 10% label noise
    diff = rng.uniform(-1, 1, n)
    labels = np.where(np.abs(diff) < 0.1, TIE, np.where(diff > 0, A, B))
    noise = rng.random(n) < 0.1
    labels[noise] = rng.integers(0, 3, noise.sum())
    ids = np.array([f"p{i}" for i in range(n)], dtype=object)
    out = tie_threshold(diff, labels, ids, seed=0)
    assert out["best"]["eps"] == pytest.approx(0.1, abs=0.03)
    held = out["heldout"]
    assert held["eps"] == pytest.approx(0.1, abs=0.05)
    calib = split_heldout(ids, seed=0)
    assert held["n_calib"] == calib.sum() and 0 < calib.sum() < n
    test_acc = (verdict_from_diff(diff[~calib], held["eps"]) == labels[~calib]).mean()
    assert held["test"]["value"] == pytest.approx(test_acc)
    assert held["test"]["total"] == n - calib.sum()
    # the oracle best is never below the accuracy at eps = 0
    assert out["best"]["accuracy"] >= out["accuracy"][0]


def test_heldout_split_is_deterministic_by_cluster() -> None:
    ids = np.array(["x", "y", "x", "z", "y"], dtype=object)
    s = split_heldout(ids, seed=4)
    assert s[0] == s[2] and s[1] == s[4]
    assert (split_heldout(ids, seed=4) == s).all()
