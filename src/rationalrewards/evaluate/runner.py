"""Run a benchmark through a reward model into a resumable run folder, then score it from the stored outputs.

A run folder holds::

    manifest.json   model spec, template name/version, benchmark, protocols, mode, timestamps
    raw.jsonl       one record per pair: label, task, group/K/subset and the critiques (raw text included)
    metrics.json    accuracies with CIs per view and protocol, tie thresholds, diagnostics
    worst.json      the most confident wrong judgements, with rationales and thumbnails
    report.md       tables
    report.html     tables, plots and the worst disagreements beside their images

A rerun skips pairs already in ``raw.jsonl`` (no backend call when all are done) and
recomputes every metric from the stored critiques; ``reparse=True`` re-reads their raw
text with the current parser first.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ..backends import check_spec
from ..rubric import RUBRIC_VERSION
from ..schema import PreferencePair, Sample
from ..stage import StageSummary, run_stage
from ..store import JsonlStore
from . import diagnostics, metrics, protocols
from .benchmarks import BenchmarkData, load_benchmark

RAW = "raw.jsonl"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
WORST = "worst.json"

Mode = Literal["pairwise", "pointwise"]
# settings that must match for a run folder to be resumed
_RESUME_KEYS = ("bench", "mode", "both_orders", "model", "template")


@dataclass
class EvalResult:
    out_dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    summary: StageSummary | None = None
    reports: dict[str, Path] = field(default_factory=dict)


def model_label(model: Any) -> str:
    """A short, stable name for a model spec or object (recorded in the manifest and used for folder names)."""
    if isinstance(model, str):
        return model
    backend = getattr(model, "backend", None)
    name = getattr(backend, "name", None) or getattr(model, "name", None)
    return str(name or type(model).__name__)


def slug(text: str, max_len: int = 60) -> str:
    """A folder-safe name for a model spec or benchmark name."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"
    if len(s) > max_len:
        import hashlib

        s = s[: max_len - 9] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return s


def _as_model(model: Any, template: str) -> Any:
    if hasattr(model, "compare") and hasattr(model, "critique"):
        return model
    from ..model import RationalRewardModel

    return RationalRewardModel(model, template=template)


def _template_info(model: Any, template: str) -> dict[str, str | None]:
    t = getattr(model, "template", None)
    if t is None or not hasattr(t, "version"):
        from ..templates import get_template

        t = get_template(template)
    return {"name": getattr(t, "name", str(template)), "version": getattr(t, "version", None)}


def _dump(critique: Any) -> dict[str, Any]:
    if isinstance(critique, Mapping):
        return dict(critique)
    return critique.model_dump(mode="json")


def _base_record(pair: PreferencePair, mode: Mode) -> dict[str, Any]:
    return {
        "label": pair.label,
        "task": pair.task.value,
        "group": pair.meta.get("group"),
        "k": pair.meta.get("k"),
        "subset": pair.meta.get("subset"),
        "request": pair.request,
        "mode": mode,
    }


def _pairwise_process(model: Any, both_orders: bool) -> Callable[[Sequence[PreferencePair]], list[dict[str, Any]]]:
    def process(batch: Sequence[PreferencePair]) -> list[dict[str, Any]]:
        batch = list(batch)
        asked = batch + ([p.swapped() for p in batch] if both_orders else [])
        out = model.compare(asked, both_orders=False)
        if len(out) != len(asked):
            raise RuntimeError(f"model returned {len(out)} pairwise critiques for {len(asked)} pairs")
        records = []
        for i, pair in enumerate(batch):
            rec = _base_record(pair, "pairwise")
            rec["forward"] = _dump(out[i])
            rec["reverse"] = _dump(out[len(batch) + i]) if both_orders else None
            records.append(rec)
        return records

    return process


def _pointwise_process(model: Any) -> Callable[[Sequence[PreferencePair]], list[dict[str, Any]]]:
    def process(batch: Sequence[PreferencePair]) -> list[dict[str, Any]]:
        batch = list(batch)
        samples = [
            Sample(request=p.request, image=img, source=p.source, id=f"{p.id}/{side}", meta=dict(p.meta))
            for side in ("a", "b")
            for p, img in ((p, p.image_a if side == "a" else p.image_b) for p in batch)
        ]
        out = model.critique(samples)
        if len(out) != len(samples):
            raise RuntimeError(f"model returned {len(out)} critiques for {len(samples)} samples")
        records = []
        for i, pair in enumerate(batch):
            rec = _base_record(pair, "pointwise")
            rec["a"] = _dump(out[i])
            rec["b"] = _dump(out[len(batch) + i])
            records.append(rec)
        return records

    return process


def _failure_reason(rec: Mapping[str, Any]) -> str | None:
    for slot in ("forward", "reverse", "a", "b"):
        c = rec.get(slot)
        if c and c.get("parse_status") == "failed":
            errors = c.get("parse_errors") or []
            first = str(errors[0]) if errors else "unparsed"
            return "backend error" if first.startswith("backend") else "parse failed"
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _check_resume(out_dir: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.exists():
        if (out_dir / RAW).exists():
            raise ValueError(f"{out_dir} has {RAW} but no {MANIFEST}: not a run folder of this harness")
        return None
    old = read_json(path)
    diffs = [f"{k}: {old.get(k)!r} -> {manifest.get(k)!r}" for k in _RESUME_KEYS if old.get(k) != manifest.get(k)]
    if diffs:
        raise ValueError(
            f"{out_dir} holds a run with other settings ({'; '.join(diffs)}); "
            "write to another folder, or delete this one to start over"
        )
    return old


def run_eval(
    bench: str,
    data: Any,
    model: Any,
    out_dir: str | Path,
    mode: Mode = "pairwise",
    both_orders: bool | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    *,
    template: str = "request-first",
    protocol_names: Sequence[str] | None = None,
    views: Sequence[str] = tuple(protocols.VIEWS),
    columns: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
    split: str | None = None,
    subset: str | None = None,
    seed: int = 0,
    n_boot: int = metrics.N_BOOT,
    worst_k: int = 8,
    reparse: bool = False,
    progress: bool = True,
    report: bool = True,
) -> EvalResult:
    """Evaluate ``model`` (a spec string, a Backend or a RationalRewardModel) on benchmark ``bench``.

    ``mode="pairwise"`` asks one compare call per pair (and per order with
    ``both_orders``, default: the benchmark's own protocol, i.e. on for MMRB2);
    ``mode="pointwise"`` critiques A and B separately and compares their scores.
    Returns the metrics; writes the run folder described in the module docstring.
    """
    if mode not in ("pairwise", "pointwise"):
        raise ValueError(f"mode must be 'pairwise' or 'pointwise', got {mode!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for v in views:
        if v not in protocols.VIEWS:
            raise ValueError(f"unknown view {v!r}; known: {', '.join(protocols.VIEWS)}")
    out_dir = Path(out_dir)
    bd = load_benchmark(bench, data, limit=limit, columns=columns, labels=labels, split=split, subset=subset)
    spec = bd.spec
    if mode == "pointwise":
        if both_orders:
            raise ValueError("both_orders applies to pairwise mode only (a pointwise critique sees one image)")
        both = False
    else:
        both = spec.both_orders if both_orders is None else bool(both_orders)
    names = tuple(protocol_names or spec.protocols)
    for p in names:
        protocols.get_protocol(p)

    manifest: dict[str, Any] = {
        "bench": spec.name,
        "bench_description": spec.description,
        "data": str(data) if isinstance(data, (str, Path)) else f"<{type(data).__name__}>",
        "model": model_label(model),
        "mode": mode,
        "both_orders": both,
        "template": _template_info(model, template),
        "protocols": list(names),
        "protocol_descriptions": {p: protocols.get_protocol(p).description for p in names},
        "views": list(views),
        "limit": limit,
        "subset": subset,
        "seed": seed,
        "rubric_version": RUBRIC_VERSION,
        "package_version": _package_version(),
        "loader": bd.stats.to_dict(),
    }
    if isinstance(model, str) and not (out_dir / MANIFEST).exists():
        check_spec(model)  # a mistyped spec leaves no run folder behind (the model itself loads only if needed)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = _check_resume(out_dir, manifest)
    manifest["created"] = old.get("created", _now()) if old else _now()
    manifest["updated"] = _now()

    store = JsonlStore(out_dir / RAW)
    todo = [p for p in bd.pairs if p.id not in store]
    summary = None
    if todo:
        judge = _as_model(model, template)
        manifest["generation"] = _generation_info(judge)
        _write_json(out_dir / MANIFEST, manifest)  # before the first call: a crashed run is still resumable
        process = _pairwise_process(judge, both) if mode == "pairwise" else _pointwise_process(judge)
        summary = run_stage(
            f"eval {spec.name} ({mode})",
            bd.pairs,
            key=lambda p: p.id,
            process=process,
            out=store,
            batch_size=batch_size,
            progress=progress,
            failure_reason=_failure_reason,
        )
    elif old and "generation" in old:
        manifest["generation"] = old["generation"]
    _write_json(out_dir / MANIFEST, manifest)
    result = rescore(out_dir, data=bd, seed=seed, n_boot=n_boot, worst_k=worst_k, reparse=reparse, report=report)
    result.summary = summary
    return result


def _generation_info(model: Any) -> dict[str, Any] | None:
    gen = getattr(model, "generation", None)
    info: dict[str, Any] = {}
    if gen is not None:
        import dataclasses

        info.update(dataclasses.asdict(gen) if dataclasses.is_dataclass(gen) else {"repr": repr(gen)})
    if hasattr(model, "n_samples"):
        info["n_samples"] = model.n_samples
    return info or None


def _package_version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------
# scoring from stored records


def load_records(out_dir: Path, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The stored records of a run, in the benchmark's order when ``ids`` is given (missing ids are skipped)."""
    path = Path(out_dir) / RAW
    recs: dict[str, dict[str, Any]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a torn last line (a crash mid-write): the store drops it on its next open
                if line.strip():
                    rec = json.loads(line)
                    recs[str(rec["id"])] = rec
    if ids is None:
        return list(recs.values())
    return [recs[i] for i in ids if i in recs]


def _reparse(records: list[dict[str, Any]]) -> int:
    from ..parsing import parse_critique, parse_pairwise

    n = 0
    for rec in records:
        for slot in ("forward", "reverse", "a", "b"):
            c = rec.get(slot)
            if not c or not c.get("raw_text") or int(c.get("n_samples") or 1) > 1:
                continue  # backend failures have no text; self-consistency results are not one text
            parse = parse_pairwise if slot in ("forward", "reverse") else parse_critique
            fresh = dict(parse(c["raw_text"], task=rec.get("task", "t2i")).__dict__)  # the fields, unserialized
            for keep in ("template", "template_version", "n_samples"):
                fresh[keep] = c.get(keep)
            rec[slot] = fresh
            n += 1
    return n


def rescore(
    out_dir: str | Path,
    data: BenchmarkData | None = None,
    seed: int = 0,
    n_boot: int = metrics.N_BOOT,
    worst_k: int = 8,
    reparse: bool = False,
    report: bool = True,
) -> EvalResult:
    """Recompute metrics, diagnostics and reports of a run folder from its stored records (no model calls).

    With ``data`` (the loaded benchmark) only its pairs are scored and the worst cases get thumbnails.
    """
    out_dir = Path(out_dir)
    manifest = read_json(out_dir / MANIFEST)
    ids = [p.id for p in data.pairs] if data is not None else None
    records = load_records(out_dir, ids)
    if not records:
        raise ValueError(f"{out_dir}: no stored records to score")
    n_reparsed = _reparse(records) if reparse else 0
    views = manifest.get("views") or list(protocols.VIEWS)
    judged = {v: protocols.judgements(records, protocols.VIEWS[v]) for v in {*views, "overall"}}
    result: dict[str, Any] = {
        "bench": manifest["bench"],
        "model": manifest["model"],
        "mode": manifest["mode"],
        "both_orders": manifest["both_orders"],
        "n_pairs": len(records),
        "n_expected": len(ids) if ids is not None else None,
        "n_unlabelled": sum(1 for r in records if r.get("label") is None),
        "reparsed": n_reparsed,
        "seed": seed,
        "n_boot": n_boot,
        "views": protocols.score(records, manifest["protocols"], views, seed=seed, n_boot=n_boot, judged=judged),
        "diagnostics": diagnostics.diagnose(records),
        "scored_at": _now(),
    }
    _write_json(out_dir / METRICS, result)
    pairs = {p.id: p for p in data.pairs} if data is not None else None
    worst = worst_cases(records, pairs, k=worst_k, judged=judged["overall"])
    if pairs is None and (out_dir / WORST).exists():  # keep the thumbnails made when the images were at hand
        old_thumbs = {w["id"]: w.get("thumbs") or {} for w in read_json(out_dir / WORST)}
        for w in worst:
            w["thumbs"] = w["thumbs"] or old_thumbs.get(w["id"], {})
    _write_json(out_dir / WORST, worst)
    reports: dict[str, Path] = {}
    if report:
        from .report import write_run_report

        reports = write_run_report(out_dir)
    return EvalResult(out_dir=out_dir, manifest=manifest, metrics=result, reports=reports)


# ---------------------------------------------------------------------------
# worst disagreements


def thumbnail(image: Any, size: int = 160) -> str | None:
    """A base64 JPEG thumbnail (``data:`` URL) of any image input; None when it can't be read."""
    from ..images import ImageError, load_image

    try:
        img = load_image(image).copy()
    except (ImageError, OSError):
        return None
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def worst_cases(
    records: Sequence[Mapping[str, Any]],
    pairs: Mapping[str, PreferencePair] | None,
    k: int = 8,
    judged: protocols.Judgements | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` wrong judgements (overall view) the model was most sure of, with rationale and thumbnails."""
    if k <= 0:
        return []
    j = judged if judged is not None else protocols.judgements(records, protocols.VIEWS["overall"])
    by_id = {str(r["id"]): r for r in records}
    wrong: dict[str, dict[str, Any]] = {}
    for pid, order, label, verdict, diff in zip(j.pair, j.order, j.label, j.verdict, j.diff, strict=True):
        if label == metrics.NONE or verdict == label:
            continue
        conf = 0.0 if math.isnan(diff) else abs(float(diff))
        w = wrong.setdefault(pid, {"id": pid, "orders_wrong": [], "confidence": 0.0})
        w["orders_wrong"].append(order)
        w["confidence"] = max(w["confidence"], conf)
        w.setdefault("verdicts", {})[order] = protocols.LETTER[int(verdict)]
    ranked = sorted(wrong.values(), key=lambda w: (-len(w["orders_wrong"]), -w["confidence"], w["id"]))[:k]
    out = []
    for w in ranked:
        rec = by_id[w["id"]]
        first = rec.get("forward") or rec.get("a") or {}
        entry = {
            **w,
            "request": rec.get("request"),
            "label": rec.get("label"),
            "task": rec.get("task"),
            "mode": rec.get("mode"),
            "summary": first.get("summary"),
            "justifications": first.get("justifications") or {},
            "scores_a": first.get("scores_a") if rec.get("mode") == "pairwise" else first.get("scores"),
            "scores_b": first.get("scores_b") if rec.get("mode") == "pairwise" else (rec.get("b") or {}).get("scores"),
            "summary_b": (rec.get("b") or {}).get("summary") if rec.get("mode") == "pointwise" else None,
            "parse_status": first.get("parse_status"),
            "thumbs": {},
        }
        if pairs is not None and w["id"] in pairs:
            p = pairs[w["id"]]
            for name, img in (("source", p.source), ("a", p.image_a), ("b", p.image_b)):
                if img is not None:
                    entry["thumbs"][name] = thumbnail(img)
        out.append(entry)
    return out
