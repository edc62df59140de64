"""The PARROT data stages as resumable runs over a data file: hindsight -> filter -> export.

Each stage appends one JSONL record per pair to its output (``store.JsonlStore`` through
``stage.run_stage``), keyed by a stable id of the pair and the stage's settings: a rerun skips what
is done, and a crash (even SIGKILL) loses at most the batch in flight. ``run_pipeline`` runs all
three in a work folder (``hindsight.jsonl``, ``filter.jsonl``, ``sft/``, ``summary.json``).
``mode="direct"`` is the direct-distillation baseline: the same prompt without the label and no
consistency filter (only rationales that parse are kept), otherwise identical settings.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..backends import Backend, load_backend
from ..schema import PreferencePair
from ..stage import StageSummary, run_stage
from ..store import JsonlStore
from . import consistency as cons
from . import hindsight as hs
from .config import ConsistencyConfig, ExportConfig, HindsightConfig, PipelineConfig
from .export import ExportSummary, export_examples


class _RetryingStore(JsonlStore):
    """A store that reports the ids in ``retry`` as not done (their new record replaces the old one)."""

    def __init__(self, path: str | Path, retry: Callable[[dict[str, Any]], bool]):
        super().__init__(path)
        self._retry = {k for k, rec in self.records().items() if retry(rec)}

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) not in self._retry and super().__contains__(item_id)

    def append(self, record: dict[str, Any]) -> None:
        super().append(record)
        self._retry.discard(str(record["id"]))


def _hindsight_teacher_failed(rec: dict[str, Any]) -> bool:
    return str(rec.get("error") or "").startswith("teacher:")


def _filter_teacher_failed(rec: dict[str, Any]) -> bool:
    if str(rec.get("error") or "").startswith("hindsight: teacher:"):
        return True
    return any(v.get("reason") == cons.TEACHER_ERROR for v in rec.get("rationales") or [])


def load_pairs(source: Any, format: str = "auto", limit: int | None = None, **options: Any) -> list[PreferencePair]:
    """Pairs from any supported preference format (``data.preference``) or the generic pairs layout."""
    from ..data.preference import load_preference

    return load_preference(source, format=format, limit=limit, **options)


def _keyed(pairs: Iterable[PreferencePair]) -> dict[str, PreferencePair]:
    out: dict[str, PreferencePair] = {}
    for p in pairs:
        out.setdefault(p.key(), p)
    return out


def _resolve(spec: str | Backend, cache: dict[str, Backend] | None = None) -> tuple[Backend, str]:
    """The backend and the name that identifies it in record ids: the spec string, or a given backend's name."""
    if isinstance(spec, Backend):
        return spec, hs.teacher_name(spec)
    if cache is not None and spec in cache:
        return cache[spec], spec
    b = load_backend(spec)
    if cache is not None:
        cache[spec] = b
    return b, spec


def run_hindsight(
    pairs: Sequence[PreferencePair],
    out: str | Path,
    config: HindsightConfig,
    backend: Backend | None = None,
    progress: bool = True,
    cache: dict[str, Backend] | None = None,
    retry_errors: bool = True,
) -> StageSummary:
    """Phase 1 over ``pairs`` into ``out`` (resumable); ``backend`` replaces ``config.teacher`` when given.

    ``retry_errors``: pairs whose earlier record holds a teacher error (e.g. an endpoint that was down) are
    asked again; their new record replaces the old one.
    """
    teacher, name = _resolve(backend if backend is not None else config.teacher, cache)
    tpl = hs.load_hindsight_template(config.template)
    items = [(hs.hindsight_id(p, config, name, tpl), p) for p in pairs]

    def process(batch: Sequence[tuple[str, PreferencePair]]) -> list[dict[str, Any]]:
        return hs.generate_hindsight([p for _, p in batch], teacher, config, teacher=name, template=tpl)

    return run_stage(
        "hindsight",
        items,
        key=lambda it: it[0],
        process=process,
        out=_RetryingStore(out, _hindsight_teacher_failed) if retry_errors else out,
        batch_size=config.batch_size,
        progress=progress,
        failure_reason=hs.failure_reason,
    )


def run_filter(
    pairs: Sequence[PreferencePair],
    hindsight_path: str | Path,
    out: str | Path,
    config: ConsistencyConfig,
    teacher: str | Backend | None = None,
    progress: bool = True,
    cache: dict[str, Backend] | None = None,
    retry_errors: bool = True,
) -> tuple[StageSummary, cons.FilterReport]:
    """Phase 2 over the hindsight records of ``pairs`` into ``out`` (resumable); the report covers these pairs.

    ``teacher``: the judge when ``config.teacher`` is not set (a spec or a Backend). ``retry_errors``: pairs
    with a rationale the judge failed to answer are judged again.
    """
    spec = config.teacher if config.teacher is not None else teacher
    use_teacher = "teacher" in config.checks
    if use_teacher and spec is None:
        raise ValueError("the teacher check needs a teacher: set consistency.teacher (or pass --teacher)")
    backend, name = _resolve(spec, cache) if use_teacher and spec is not None else (None, None)
    tpl = cons.load_consistency_template(config.template)
    by_key = _keyed(pairs)
    hpath = Path(hindsight_path)
    if not hpath.is_file():
        raise FileNotFoundError(f"hindsight records not found: {hpath} (run the hindsight stage first)")
    items = []
    missing = 0
    for hrec in JsonlStore(hpath):
        pair = by_key.get(hrec.get("pair_key"))
        if pair is None:
            missing += 1
            continue
        items.append((cons.filter_id(hrec["id"], config, name, tpl), hrec, pair))

    def process(batch: Sequence[tuple[str, dict[str, Any], PreferencePair]]) -> list[dict[str, Any]]:
        return cons.filter_rationales([(h, p) for _, h, p in batch], backend, config, teacher=name, template=tpl)

    summary = run_stage(
        "filter",
        items,
        key=lambda it: it[0],
        process=process,
        out=_RetryingStore(out, _filter_teacher_failed) if retry_errors else out,
        batch_size=config.batch_size,
        progress=progress,
        failure_reason=cons.failure_reason,
    )
    if missing:
        summary.failures["hindsight record without its pair in the data"] += missing
    ids = {it[0] for it in items}
    report = cons.FilterReport.from_records(r for r in JsonlStore(out) if r["id"] in ids)
    return summary, report


def run_export(
    pairs: Sequence[PreferencePair],
    filter_path: str | Path,
    out_dir: str | Path,
    config: ExportConfig,
) -> ExportSummary:
    """Phase 3 data: the kept rationales of ``filter_path`` as SFT datasets under ``out_dir``."""
    fpath = Path(filter_path)
    if not fpath.is_file():
        raise FileNotFoundError(f"filter records not found: {fpath} (run the filter stage first)")
    latest: dict[str, dict[str, Any]] = {}
    for rec in JsonlStore(fpath):
        latest[rec.get("hindsight_id", rec["id"])] = rec
    return export_examples(latest.values(), _keyed(pairs), out_dir, config)


def direct_config(config: PipelineConfig) -> PipelineConfig:
    """The direct-distillation baseline of ``config``: no label in the prompt, no consistency filter."""
    return dataclasses.replace(
        config,
        hindsight=dataclasses.replace(config.hindsight, mode="direct"),
        consistency=dataclasses.replace(config.consistency, checks=()),
    )


def run_pipeline(
    pairs: Sequence[PreferencePair],
    work_dir: str | Path,
    config: PipelineConfig | None = None,
    mode: str = "anchored",
    backend: Backend | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Hindsight, filter and export in ``work_dir``; returns (and writes ``summary.json``) every stage's summary."""
    config = config or PipelineConfig()
    if mode == "direct":
        config = direct_config(config)
    elif mode != "anchored":
        raise ValueError(f"mode must be anchored or direct, got {mode!r}")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Backend] = {}
    hpath, fpath = work / "hindsight.jsonl", work / "filter.jsonl"
    h = run_hindsight(pairs, hpath, config.hindsight, backend=backend, progress=progress, cache=cache)
    judge: str | Backend = backend if backend is not None else config.hindsight.teacher
    f, report = run_filter(pairs, hpath, fpath, config.consistency, teacher=judge, progress=progress, cache=cache)
    e = run_export(pairs, work / "filter.jsonl", work / "sft", config.export)
    result = {
        "mode": mode,
        "hindsight": _stage_dict(h),
        "filter": {**_stage_dict(f), "report": report.to_dict()},
        "export": e.to_dict(),
    }
    (work / "summary.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    result["_objects"] = {"hindsight": h, "filter": f, "report": report, "export": e}
    return result


def _stage_dict(s: StageSummary) -> dict[str, Any]:
    return {
        "total": s.total,
        "skipped": s.skipped,
        "processed": s.processed,
        "failed": s.failed,
        "failures": dict(s.failures),
    }
