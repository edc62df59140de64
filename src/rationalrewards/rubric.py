"""The rubric, written once: dimensions, tasks, the score scale and aggregation.

Templates, the parser, the synthetic teacher and every report derive dimension
names, titles and level descriptions from here; nothing else spells them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

RUBRIC_VERSION = "1"

SCORE_MIN = 1.0
SCORE_MAX = 4.0


class Task(str, Enum):
    """What is being judged: a generation from text, or an edit of a source image."""

    T2I = "t2i"
    EDIT = "edit"


@dataclass(frozen=True)
class Dimension:
    """One axis of the critique."""

    key: str
    title: str
    measures: str
    levels: tuple[str, str, str, str]  # descriptions of scores 1, 2, 3, 4
    tasks: tuple[Task, ...]
    allows_na: bool = False
    na_when: str = ""

    def applies_to(self, task: Task | str) -> bool:
        return Task(task) in self.tasks


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        key="text_faithfulness",
        title="Text Faithfulness",
        measures=(
            "how completely and precisely the output follows the request: every object, "
            "count, attribute, colour, spatial relation and negation it asks for"
        ),
        levels=(
            "the main subject or most requirements are missing or contradicted",
            "several requirements are missed or wrong (a wrong count, a missing object, an ignored negation)",
            "the request is mostly met with one minor deviation",
            "every requirement of the request is met exactly",
        ),
        tasks=(Task.T2I, Task.EDIT),
    ),
    Dimension(
        key="image_faithfulness",
        title="Image Faithfulness",
        measures=(
            "how well the edited output preserves everything in the source image that "
            "the instruction did not ask to change"
        ),
        levels=(
            "the source is largely lost or replaced",
            "several unrequested changes to content that should be kept",
            "one small unrequested change",
            "everything not mentioned by the instruction is preserved",
        ),
        tasks=(Task.EDIT,),
    ),
    Dimension(
        key="physical_quality",
        title="Physical and Visual Quality",
        measures=(
            "visual soundness regardless of the request: artefacts, noise, blur, seams, "
            "cut or unnaturally overlapping objects, implausible structure"
        ),
        levels=(
            "severe artefacts make the image unusable",
            "clear artefacts that a viewer notices at once",
            "minor blemishes visible on close inspection",
            "clean and coherent, free of artefacts",
        ),
        tasks=(Task.T2I, Task.EDIT),
    ),
    Dimension(
        key="text_rendering",
        title="Text Rendering",
        measures="whether every piece of text the request asks for is rendered legibly and spelled exactly",
        levels=(
            "the requested text is absent or illegible",
            "the text is present but misspelt or garbled",
            "the text is correct but slightly malformed or hard to read",
            "the text is rendered exactly and legibly",
        ),
        tasks=(Task.T2I, Task.EDIT),
        allows_na=True,
        na_when="the request asks for no text in the image",
    ),
)

DIMENSION_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS)
BY_KEY: dict[str, Dimension] = {d.key: d for d in DIMENSIONS}


def dimensions_for(task: Task | str) -> tuple[Dimension, ...]:
    """The dimensions that apply to ``task``, in protocol order."""
    return tuple(d for d in DIMENSIONS if d.applies_to(task))


def dimension(key: str) -> Dimension:
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown dimension {key!r}; known: {', '.join(DIMENSION_KEYS)}") from None


def clamp_score(value: float) -> float:
    v = float(value)
    if math.isnan(v):  # min/max would silently turn NaN into SCORE_MIN
        raise ValueError("score is NaN")
    return min(SCORE_MAX, max(SCORE_MIN, v))


def normalize(score: float) -> float:
    """Map a 1-4 score to [0, 1]."""
    return (score - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)


def aggregate(
    scores: Mapping[str, float | None],
    weights: Mapping[str, float] | None = None,
    keys: Sequence[str] | None = None,
) -> float | None:
    """Normalized weighted mean ``(mean - 1) / 3`` over the dimensions that have a score.

    ``None`` entries (N/A or missing) are left out of the mean. Returns ``None``
    when no scored dimension remains: no number is ever made up. ``keys`` limits
    the mean to some dimensions (e.g. text faithfulness only).
    """
    total = 0.0
    weight_sum = 0.0
    for key, value in scores.items():
        if value is None or (keys is not None and key not in keys):
            continue
        w = 1.0 if weights is None else float(weights.get(key, 0.0))
        if w <= 0:
            continue
        total += w * value
        weight_sum += w
    if weight_sum == 0:
        return None
    return normalize(total / weight_sum)


def score_vector(scores: Mapping[str, float | None], task: Task | str, fill: float = float("nan")) -> list[float]:
    """Per-dimension scores in protocol order for ``task``; ``fill`` stands for N/A or missing."""
    out = []
    for d in dimensions_for(task):
        v = scores.get(d.key)
        out.append(fill if v is None else float(v))
    return out
