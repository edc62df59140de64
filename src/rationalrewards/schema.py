"""The data types every stage shares: inputs (Sample, PreferencePair) and critiques (Critique, PairwiseCritique)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from .images import image_hash
from .rubric import DIMENSION_KEYS, Task, aggregate, dimensions_for

Preference = Literal["A", "B", "tie"]
ParseStatus = Literal["ok", "partial", "failed"]


def stable_id(*parts: Any) -> str:
    """A short hash of JSON-serialisable parts: the key of a record in a resumable stage."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Sample(BaseModel):
    """One output to judge: a request, the generated image and, for edits, the source image."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: str
    image: Any = Field(description="the output: PIL image, bytes, path or {'bytes'|'path'} dict")
    source: Any | None = Field(default=None, description="the source image of an edit")
    id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def task(self) -> Task:
        return Task.EDIT if self.source is not None else Task.T2I

    def key(self) -> str:
        """``id`` if given, else a hash of the request and the image contents."""
        if self.id:
            return self.id
        src = image_hash(self.source) if self.source is not None else None
        return stable_id(self.request, image_hash(self.image), src)


class PreferencePair(BaseModel):
    """Two outputs for one request, with a human label where one is known."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: str
    image_a: Any
    image_b: Any
    source: Any | None = None
    label: Preference | None = None
    id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def task(self) -> Task:
        return Task.EDIT if self.source is not None else Task.T2I

    def key(self) -> str:
        if self.id:
            return self.id
        src = image_hash(self.source) if self.source is not None else None
        return stable_id(self.request, image_hash(self.image_a), image_hash(self.image_b), src)

    def swapped(self) -> PreferencePair:
        """The same pair with A and B exchanged (the label follows)."""
        label = {"A": "B", "B": "A"}.get(self.label, self.label) if self.label else None
        return self.model_copy(update={"image_a": self.image_b, "image_b": self.image_a, "label": label})

    def sample_a(self) -> Sample:
        return Sample(request=self.request, image=self.image_a, source=self.source, meta=dict(self.meta))

    def sample_b(self) -> Sample:
        return Sample(request=self.request, image=self.image_b, source=self.source, meta=dict(self.meta))


class _ParsedText(BaseModel):
    """What both critique kinds share: the raw text and how parsing went."""

    task: Task = Task.T2I
    request_analysis: str | None = None
    summary: str | None = None
    refinement_comments: str | None = None
    refined_request: str | None = None
    raw_text: str = ""
    parse_status: ParseStatus = "failed"
    parse_errors: list[str] = Field(default_factory=list, description="why parsing was not clean")
    missing: list[str] = Field(default_factory=list, description="applicable dimensions with no score found")
    na: list[str] = Field(default_factory=list, description="dimensions the text marked N/A")
    clamped: list[str] = Field(default_factory=list, description="dimensions whose score was out of range")
    template: str | None = None
    template_version: str | None = None
    n_samples: int = 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def parse_ok(self) -> bool:
        return self.parse_status == "ok"


class Critique(_ParsedText):
    """A pointwise critique: per dimension a justification and a 1-4 score (None = N/A or missing)."""

    scores: dict[str, float | None] = Field(default_factory=dict)
    justifications: dict[str, str] = Field(default_factory=dict)
    spread: dict[str, float] | None = Field(
        default=None, description="per-dimension standard deviation over self-consistency samples"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reward(self) -> float | None:
        """Normalized mean over parsed applicable dimensions, in [0, 1]; None when nothing parsed."""
        if self.parse_status == "failed":
            return None
        keys = [d.key for d in dimensions_for(self.task)]
        return aggregate(self.scores, keys=keys)

    def vector(self) -> dict[str, float | None]:
        """Scores for all four dimension keys (None where N/A, missing or not applicable)."""
        return {k: self.scores.get(k) for k in DIMENSION_KEYS}


class PairwiseCritique(_ParsedText):
    """A pairwise critique: per dimension scores for A and B, a winner, and an overall preference."""

    scores_a: dict[str, float | None] = Field(default_factory=dict)
    scores_b: dict[str, float | None] = Field(default_factory=dict)
    justifications: dict[str, str] = Field(default_factory=dict)
    winners: dict[str, Preference | None] = Field(default_factory=dict)
    preference: Preference | None = None
    position_consistent: bool | None = Field(
        default=None, description="with both orders judged: whether the swapped judgement agreed"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reward_a(self) -> float | None:
        keys = [d.key for d in dimensions_for(self.task)]
        return aggregate(self.scores_a, keys=keys) if self.parse_status != "failed" else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reward_b(self) -> float | None:
        keys = [d.key for d in dimensions_for(self.task)]
        return aggregate(self.scores_b, keys=keys) if self.parse_status != "failed" else None
