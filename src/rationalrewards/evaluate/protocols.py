"""Scoring protocols: how stored judgements become accuracies.

A *record* is what the runner stores per pair: the label, the task, group/K/subset
and the raw critiques (``forward`` and, with both orders, ``reverse`` for pairwise
mode; ``a`` and ``b`` for pointwise mode). A *view* says which verdict is read from a
record: the stated overall preference (pairwise mode) or the sign of a score
difference over some dimensions (pointwise mode; per-dimension views in both modes).
Every judgement counts: with both orders, a pair contributes two judgements, the
reverse one mapped back to the original orientation, and CIs resample whole pairs.

Protocols (selectable by name):

- ``mmrb2``: labels are A/B; every judgement counts; anything but the right letter
  (tie, unparsed) is wrong; per subset (t2i, edit).
- ``genai-4way``: labels A/B/tie (tievote and bothbad_vote are ties); the verdict must
  equal the label, a predicted tie is right only on a tie.
- ``genai-noties``: tie-labelled pairs dropped; a predicted tie is wrong.
- ``editreward``: with ties, per K (2/3/4) and group accuracy: a group counts as
  right only when every comparison in it is (groups missing comparisons are left out
  and counted).
- ``ties`` / ``noties``: the same two rules for any labelled pairs.

Score-based verdicts say tie when ``|score_a - score_b| <= ε`` (normalized 0-1
aggregate scores). Protocols with ties also report the ε sweep, the best ε (an
optimistic oracle) and the ε chosen on a held-out calibration half, scored on the
other half.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from ..rubric import Task, aggregate, dimension, dimensions_for
from . import metrics
from .metrics import NONE, TIE, A, B

CODE = {"A": A, "B": B, "tie": TIE}
LETTER = {A: "A", B: "B", TIE: "tie", NONE: None}
FLIP = {"A": "B", "B": "A", "tie": "tie", None: None}


@dataclass(frozen=True)
class View:
    """Which verdict to read: the stated preference, or the score difference over ``dims`` (None = all applicable)."""

    name: str
    title: str
    dims: tuple[str, ...] | None = None
    stated: bool = False

    def __post_init__(self) -> None:
        for key in self.dims or ():
            dimension(key)  # raises on an unknown key


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("overall", "overall", None, stated=True),
        View("text", "text faithfulness only", ("text_faithfulness",)),
        View("visual", "physical and visual quality only", ("physical_quality",)),
    )
}


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    title: str
    ties: Literal["include", "exclude"]
    by: tuple[str, ...] = ()
    grouped: bool = False
    description: str = ""


PROTOCOLS: dict[str, ProtocolSpec] = {
    p.name: p
    for p in (
        ProtocolSpec(
            "mmrb2",
            "MMRB2 accuracy (every judgement counts)",
            "exclude",
            by=("subset",),
            description="both orders judged; each judgement must name the chosen output; ties and failures are wrong",
        ),
        ProtocolSpec(
            "genai-4way",
            "accuracy with ties",
            "include",
            by=("subset",),
            description="leftvote=A, rightvote=B, tievote/bothbad_vote=tie; the verdict must equal the vote",
        ),
        ProtocolSpec(
            "genai-noties",
            "accuracy without ties",
            "exclude",
            by=("subset",),
            description="tie and both-bad votes dropped; a predicted tie is wrong",
        ),
        ProtocolSpec(
            "editreward",
            "pairwise accuracy with ties",
            "include",
            by=("k",),
            grouped=True,
            description="per K = 2/3/4 candidates; group accuracy needs every comparison of a group right",
        ),
        ProtocolSpec("ties", "accuracy with ties", "include", by=("subset",), description="A/B/tie must match"),
        ProtocolSpec("noties", "accuracy without ties", "exclude", by=("subset",), description="tie labels dropped"),
    )
}


def get_protocol(name: str) -> ProtocolSpec:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# ---------------------------------------------------------------------------
# judgements


@lru_cache(maxsize=64)
def _keys(task: str, dims: tuple[str, ...] | None) -> tuple[str, ...]:
    applicable = tuple(d.key for d in dimensions_for(Task(task)))
    return applicable if dims is None else tuple(k for k in dims if k in applicable)


def side_score(scores: Mapping[str, float | None] | None, task: str, dims: Sequence[str] | None) -> float | None:
    """Normalized 0-1 score of one side over ``dims`` (default: all dimensions applicable to ``task``)."""
    if not scores:
        return None
    keys = _keys(task, dims if dims is None or isinstance(dims, tuple) else tuple(dims))
    if not keys:
        return None
    return aggregate(scores, keys=keys)


def _scores(c: Mapping[str, Any] | None, side: str) -> Mapping[str, float | None] | None:
    if not c or c.get("parse_status") == "failed":
        return None
    return c.get(side)


def _diff(a: float | None, b: float | None) -> float:
    return float("nan") if a is None or b is None else a - b


def _sign(d: float) -> str | None:
    """The verdict of a score difference at ε = 0 (None for NaN), as ``metrics.verdict_from_diff``."""
    if d != d:
        return None
    return "A" if d > 0 else "B" if d < 0 else "tie"


@dataclass
class Judgements:
    """One row per judgement, in the pair's original orientation."""

    pair: np.ndarray
    order: np.ndarray
    label: np.ndarray
    verdict: np.ndarray
    diff: np.ndarray
    group: np.ndarray
    k: np.ndarray
    subset: np.ndarray
    raw: list[str | None] = field(default_factory=list)  # the verdict as stated, before un-swapping
    cluster: np.ndarray | None = None  # pair as an integer code (for fast resampling)

    def __post_init__(self) -> None:
        if self.cluster is None:
            self.cluster = np.unique(self.pair.astype(str), return_inverse=True)[1] if self.pair.size else self.pair

    def __len__(self) -> int:
        return int(self.pair.size)

    def select(self, mask: np.ndarray) -> Judgements:
        return Judgements(
            pair=self.pair[mask],
            order=self.order[mask],
            label=self.label[mask],
            verdict=self.verdict[mask],
            diff=self.diff[mask],
            group=self.group[mask],
            k=self.k[mask],
            subset=self.subset[mask],
            raw=[r for r, m in zip(self.raw, mask, strict=True) if m],
            cluster=self.cluster[mask],
        )


def judgements(records: Iterable[Mapping[str, Any]], view: View) -> Judgements:
    """Turn stored records into judgements for ``view`` (see the module docstring)."""
    pair, order, label, verdict, diff, group, ks, subset, raw = [], [], [], [], [], [], [], [], []

    def add(rec: Mapping[str, Any], o: str, v: str | None, d: float, stated: str | None) -> None:
        pair.append(str(rec["id"]))
        order.append(o)
        label.append(CODE.get(rec.get("label"), NONE))
        verdict.append(CODE.get(v, NONE))
        diff.append(d)
        group.append(str(rec.get("group")) if rec.get("group") is not None else "")
        ks.append(int(rec.get("k") or 0))
        subset.append(str(rec.get("subset") or ""))
        raw.append(stated)

    for rec in records:
        task = rec.get("task", "t2i")
        if rec.get("mode", "pairwise") == "pointwise":
            d = _diff(
                side_score(_scores(rec.get("a"), "scores"), task, view.dims),
                side_score(_scores(rec.get("b"), "scores"), task, view.dims),
            )
            v = _sign(d)
            add(rec, "pointwise", v, d, v)
            continue
        for o in ("forward", "reverse"):
            c = rec.get(o)
            if c is None:
                continue
            sa = side_score(_scores(c, "scores_a"), task, view.dims)
            sb = side_score(_scores(c, "scores_b"), task, view.dims)
            if view.stated:
                stated = c.get("preference") if c.get("parse_status") != "failed" else None
            else:
                stated = _sign(_diff(sa, sb))
            if o == "forward":
                add(rec, o, stated, _diff(sa, sb), stated)
            else:
                add(rec, o, FLIP[stated], _diff(sb, sa), stated)
    return Judgements(
        pair=np.array(pair, dtype=object),
        order=np.array(order, dtype=object),
        label=np.array(label, dtype=int),
        verdict=np.array(verdict, dtype=int),
        diff=np.array(diff, dtype=float),
        group=np.array(group, dtype=object),
        k=np.array(ks, dtype=int),
        subset=np.array(subset, dtype=object),
        raw=raw,
    )


# ---------------------------------------------------------------------------
# protocols


def _by_value(j: Judgements, field_name: str) -> np.ndarray:
    return getattr(j, field_name)


def group_accuracy(j: Judgements, seed: int = 0, n_boot: int = metrics.N_BOOT) -> dict[str, Any]:
    """A group is right when every judgement of every comparison in it is right; incomplete groups are left out."""
    correct = j.verdict == j.label
    per_group: dict[str, dict[str, Any]] = {}
    for g, p, k, ok in zip(j.group, j.pair, j.k, correct, strict=True):
        if not g:
            continue
        st = per_group.setdefault(g, {"pairs": set(), "k": int(k), "ok": True})
        st["pairs"].add(p)
        st["ok"] = st["ok"] and bool(ok)
    complete = {g: st for g, st in per_group.items() if st["k"] < 2 or len(st["pairs"]) == st["k"] * (st["k"] - 1) // 2}
    names = sorted(complete)
    ok = np.array([complete[g]["ok"] for g in names], dtype=bool)
    out: dict[str, Any] = {
        "accuracy": metrics.accuracy(ok, None, seed=seed, n_boot=n_boot).to_dict(),
        "incomplete_groups": len(per_group) - len(complete),
        "by": {},
    }
    kvals = np.array([complete[g]["k"] for g in names], dtype=int)
    for k in sorted(set(kvals.tolist())):
        out["by"][f"k={k}"] = metrics.accuracy(ok[kvals == k], None, seed=seed, n_boot=n_boot).to_dict()
    return out


def evaluate_protocol(
    proto: ProtocolSpec, j: Judgements, seed: int = 0, n_boot: int = metrics.N_BOOT
) -> dict[str, Any]:
    """Accuracy (with CI), breakdowns, group accuracy and the tie threshold for one protocol on one view."""
    mask = j.label != NONE
    if proto.ties == "exclude":
        mask &= j.label != TIE
    s = j.select(mask)
    correct = s.verdict == s.label
    out: dict[str, Any] = {
        "protocol": proto.name,
        "title": proto.title,
        "accuracy": metrics.accuracy(correct, s.cluster, seed=seed, n_boot=n_boot).to_dict(),
        "n_pairs": int(np.unique(s.cluster).size) if len(s) else 0,
        "n_judgements": len(s),
        "predicted": {LETTER[c] or "none": int((s.verdict == c).sum()) for c in (A, B, TIE, NONE)},
        "by": {},
    }
    for field_name in proto.by:
        values = _by_value(s, field_name)
        distinct = sorted({v for v in values.tolist() if v not in ("", 0)})
        if len(distinct) < 1 or (len(distinct) == 1 and field_name == "subset"):
            continue
        for v in distinct:
            m = values == v
            out["by"][f"{field_name}={v}"] = metrics.accuracy(
                correct[m], s.cluster[m], seed=seed, n_boot=n_boot
            ).to_dict()
    if proto.grouped:
        out["group"] = group_accuracy(s, seed=seed, n_boot=n_boot)
    if proto.ties == "include" and len(s) and not np.isnan(s.diff).all():
        out["tie_threshold"] = metrics.tie_threshold(s.diff, s.label, s.pair, seed=seed, n_boot=n_boot)
    return out


def score(
    records: Sequence[Mapping[str, Any]],
    protocols: Sequence[str],
    views: Sequence[str] = tuple(VIEWS),
    seed: int = 0,
    n_boot: int = metrics.N_BOOT,
    judged: Mapping[str, Judgements] | None = None,
) -> dict[str, Any]:
    """Every protocol on every view: ``{view: {"title", "protocols": {name: result}}}``.

    ``judged`` may hold judgements already built per view name (they are built here otherwise).
    """
    out: dict[str, Any] = {}
    for vname in views:
        view = VIEWS[vname]
        j = judged[vname] if judged is not None and vname in judged else judgements(records, view)
        out[vname] = {
            "title": view.title,
            "protocols": {p: evaluate_protocol(get_protocol(p), j, seed=seed, n_boot=n_boot) for p in protocols},
        }
    return out
