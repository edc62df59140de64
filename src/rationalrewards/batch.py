"""Critique a whole data file into a resumable JSONL of records (the library side of ``critique-batch``).

Records are keyed by the sample's id (or a hash of its request and images);
a rerun skips the ids already written, and a crash loses at most the batch in
flight. Each record carries the critique, the reward under the model's weights,
the template and its version, and the backend's name. An output file written
by another model or template is refused rather than mixed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .model import RationalRewardModel
from .schema import Critique, Sample
from .stage import StageSummary, run_stage
from .store import JsonlStore

STAGE_NAME = "critique"
_SAMPLE_PREFIX = re.compile(r"^sample \d+: ")


def critique_record(sample: Sample, critique: Critique, model: RationalRewardModel) -> dict[str, Any]:
    """One output record: the request, the critique's fields, the reward and where it came from."""
    rec: dict[str, Any] = {"request": sample.request, "model": model.name}
    rec.update(critique.model_dump(mode="json"))
    rec["reward"] = model.reward_of(critique)
    if model.weights is not None:
        rec["weights"] = model.weights
    if sample.meta:
        rec["meta"] = sample.meta
    return rec


def failure_reason(record: dict[str, Any]) -> str | None:
    """Why a record failed, as a short reason to count by (None when it parsed)."""
    if record.get("parse_status") != "failed":
        return None
    errors = [_SAMPLE_PREFIX.sub("", str(e)) for e in record.get("parse_errors") or []]
    for e in errors:
        if e.startswith(("backend:", "input:")):
            return e.split(":", 1)[0]
    for known in ("empty output", "unterminated <think> block", "expected text"):
        if any(known in e for e in errors):
            return f"parse: {known}"
    not_found = sum(e.endswith("dimension not found") for e in errors)
    if not_found and not_found >= len(set(record.get("missing") or [])):
        return "parse: no dimension block found"
    return "parse: no readable score"


def _first_record(store: JsonlStore) -> dict[str, Any] | None:
    return next(iter(store), None)


def _check_compatible(previous: dict[str, Any] | None, model: RationalRewardModel, check_name: bool) -> None:
    """Refuse to append to records made with another template, sample count or (``check_name``) backend."""
    if previous is None:
        return
    made = (previous.get("template"), previous.get("template_version"), previous.get("n_samples", 1))
    now = (model.template.name, model.template.version, model.n_samples)
    if made != now or (check_name and previous.get("model") != model.name):
        raise ValueError(
            f"the output file holds records made with model={previous.get('model')!r}, template={made[0]!r} "
            f"v{made[1]}, n_samples={made[2]}; this run uses model={model.name!r}, template={now[0]!r} v{now[1]}, "
            f"n_samples={now[2]}. Write to a new output file."
        )


def critique_file(
    data: str | Path | Sequence[Sample],
    out: str | Path,
    model: RationalRewardModel | str,
    batch_size: int = 16,
    progress: bool = True,
    columns: dict[str, str] | None = None,
) -> StageSummary:
    """Critique every sample of ``data`` (a JSONL/parquet path or a list of Samples) into ``out``.

    Resumable: ids already in ``out`` are skipped. Returns the stage summary, whose
    ``failures`` count parse failures by reason.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(data, (str, Path)):
        from .data import load_samples

        samples = load_samples(data, columns=columns)
    else:
        samples = list(data)
    if isinstance(model, str):
        model = RationalRewardModel(model)
    store = JsonlStore(out)
    previous = _first_record(store)
    _check_compatible(previous, model, check_name=False)
    checked = [False]

    def process(batch: Sequence[Sample]) -> list[dict[str, Any]]:
        critiques = model.critique(batch)
        if not checked[0]:  # a backend may learn its full name (e.g. the served model) on its first call
            _check_compatible(previous, model, check_name=True)
            checked[0] = True
        return [critique_record(s, c, model) for s, c in zip(batch, critiques, strict=True)]

    return run_stage(
        STAGE_NAME,
        samples,
        key=lambda s: s.key(),
        process=process,
        out=store,
        batch_size=batch_size,
        progress=progress,
        failure_reason=failure_reason,
    )
