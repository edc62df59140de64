"""Public preference datasets read into ``PreferencePair``: the formats people train reward models on.

Formats (``load_preference(source, format=...)``; ``format="auto"`` guesses from the columns):

- ``editreward`` (TIGER-Lab/EditReward-Data): ``instruction``, ``source_img``, ``left_output_image``,
  ``right_output_image``, ``vote_type`` (``leftvote`` / ``rightvote`` / ``tie`` / ``tievote`` /
  ``bothbad_vote``), per-side ``left_*_score`` / ``right_*_score`` (kept in ``meta``). Without a
  ``vote_type`` the label follows ``left_overall_score`` vs ``right_overall_score``. Left is A.
- ``hpdv3`` (MizzenAI/HPDv3 JSON): a list of ``{"prompt", "path1", "path2", ...}`` where ``path1`` is
  the preferred image; paths are relative to ``image_root`` (default: the JSON file's folder).
  ``swap=True`` (the default) puts the preferred image on side B for about half the rows, chosen by
  a hash of the row, so that a model trained on the pairs cannot learn "A wins"; ``swap=False``
  keeps ``path1`` as A.
- ``imagerewarddb`` (THUDM/ImageRewardDB): one row per image with ``prompt_id``, ``prompt``,
  ``image``, ``rank`` (1 = best within its prompt); every two images of one prompt make a pair,
  the lower rank is preferred, equal ranks are a tie.
- ``pickapic`` (yuvalkirstain/pickapic_v2): ``caption``, ``jpg_0``, ``jpg_1``, ``label_0``, ``label_1``
  (1/0 = a winner, 0.5/0.5 = tie). Rows with ``has_label`` false or ``are_different`` false are
  skipped and counted.
- ``pairs``: the generic layout of ``data.samples`` (``request``, ``image_a``, ``image_b``, ``source``,
  ``label``, ``id``), which the synthetic world's parquet files use.

Sources: a parquet file, a JSONL or JSON file, a folder of parquet files, a folder written by
``datasets.save_to_disk`` (``datasets`` imported only then), or a ``datasets.Dataset`` / list of
row dicts in memory. Image cells may be bytes, ``{"bytes", "path"}`` dicts, paths (relative to
the data file's folder or ``image_root``) or PIL images. Every pair gets ``meta["source_dataset"]``
and a stable ``id`` made from the dataset's own keys (no image decoding).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from ..schema import Preference, PreferencePair, stable_id
from .samples import PARQUET_SUFFIXES, DataError, cell_image, iter_rows, load_from_disk, load_pairs, select_split

FORMATS = ("editreward", "hpdv3", "imagerewarddb", "pickapic", "pairs")

_EDITREWARD_VOTES: dict[str, Preference] = {
    "leftvote": "A",
    "left": "A",
    "rightvote": "B",
    "right": "B",
    "tie": "tie",
    "tievote": "tie",
    "bothbad_vote": "tie",
    "bothbad": "tie",
    "bothgood_vote": "tie",
}


@dataclass
class LoadStats:
    """What a loader read and what it skipped (reason -> count)."""

    rows: int = 0
    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [f"{self.rows} rows -> {self.pairs} pairs"]
        out += [f"  skipped ({reason}): {n}" for reason, n in self.skipped.most_common()]
        return out


# ---------------------------------------------------------------------------- rows


@dataclass
class _Row:
    data: Mapping[str, Any]
    where: str
    base_dir: Path | None


def _rows(source: Any, split: str | None = None) -> Iterator[_Row]:
    """Rows of any supported source, with where they came from (for messages and relative paths)."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"data not found: {path}")
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                yield from _dataset_rows(load_from_disk(path), split, str(path), path)
                return
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES and p.is_file())
            if not files:
                raise DataError(f"{path}: no parquet files and no datasets.save_to_disk folder")
            for f in files:
                for n, row in iter_rows(f):
                    yield _Row(row, f"{f}: row {n}", f.resolve().parent)
            return
        if path.suffix.lower() == ".json":
            yield from _json_rows(path)
            return
        unit = "row" if path.suffix.lower() in PARQUET_SUFFIXES else "line"
        for n, row in iter_rows(path):
            yield _Row(row, f"{path}: {unit} {n}", path.resolve().parent)
        return
    if hasattr(source, "column_names"):
        yield from _dataset_rows(source, split, "dataset", None)
        return
    if isinstance(source, Iterable) and not isinstance(source, (bytes, dict)):
        for n, row in enumerate(source, start=1):
            if not isinstance(row, Mapping):
                raise DataError(f"row {n}: expected a mapping of column -> value, got {type(row).__name__}")
            yield _Row(row, f"row {n}", None)
        return
    raise DataError(f"cannot read preference rows from a {type(source).__name__}")


def _json_rows(path: Path) -> Iterator[_Row]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from None
    rows = obj if isinstance(obj, list) else obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of rows (or {{'data': [...]}})")
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {n}: expected an object, got {type(row).__name__}")
        yield _Row(row, f"{path}: item {n}", path.resolve().parent)


def _dataset_rows(ds: Any, split: str | None, label: str, base: Path | None) -> Iterator[_Row]:
    ds = _undecoded(select_split(ds, split, label))
    for n, row in enumerate(ds, start=1):
        yield _Row(row, f"{label}: row {n}", base)


def _undecoded(ds: Any) -> Any:
    """Image columns as ``{"bytes", "path"}`` dicts: decoding is left to whoever looks at the picture."""
    try:
        from datasets import Image as ImageFeature
    except ImportError:  # pragma: no cover - a Dataset implies datasets is installed
        return ds
    for name, feature in ds.features.items():
        if isinstance(feature, ImageFeature) and feature.decode:
            ds = ds.cast_column(name, ImageFeature(decode=False))
    return ds


# ---------------------------------------------------------------------------- cells


def _image(value: Any, row: _Row, column: str, root: Path | None = None) -> Any:
    """One image cell as bytes, an absolute path or a PIL image; a clear error when there is none."""
    base = root if root is not None else row.base_dir
    return cell_image(value, f"{row.where}, column {column!r}", base, local_files=True)


def _text(row: _Row, *columns: str) -> str:
    for c in columns:
        v = row.data.get(c)
        if isinstance(v, str) and v.strip():
            return v
    raise DataError(f"{row.where}: missing text column {' or '.join(repr(c) for c in columns)}")


def _meta(row: _Row, used: Iterable[str], source_dataset: str) -> dict[str, Any]:
    skip = set(used)
    meta: dict[str, Any] = {}
    for k, v in row.data.items():
        if k in skip or isinstance(v, (bytes, bytearray, memoryview, dict)) or hasattr(v, "mode"):
            continue
        meta[k] = v
    meta["source_dataset"] = source_dataset
    return meta


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


# ---------------------------------------------------------------------------- formats


def _editreward(source: Any, split: str | None, stats: LoadStats, **_: Any) -> Iterator[PreferencePair]:
    images = ("source_img", "left_output_image", "right_output_image")
    for row in _rows(source, split):
        stats.rows += 1
        d = row.data
        vote = d.get("vote_type")
        if isinstance(vote, str) and vote.strip():
            label = _EDITREWARD_VOTES.get(vote.strip().lower())
            if label is None:
                known = ", ".join(sorted(_EDITREWARD_VOTES))
                raise DataError(f"{row.where}, column 'vote_type': unknown vote {vote!r}; known: {known}")
        else:
            left, right = _float(d.get("left_overall_score")), _float(d.get("right_overall_score"))
            if left is None or right is None:
                stats.skipped["no vote_type and no overall scores"] += 1
                continue
            label = "A" if left > right else "B" if right > left else "tie"
        instruction = _text(row, "instruction", "instruct_prompt")
        key = d.get("unique_key") or (f"{d['key']}:{d.get('pair_index')}" if d.get("key") is not None else None)
        source_img = d.get("source_img", d.get("source_image"))
        pair = PreferencePair(
            request=instruction,
            source=_image(source_img, row, "source_img"),
            image_a=_image(d.get("left_output_image"), row, "left_output_image"),
            image_b=_image(d.get("right_output_image"), row, "right_output_image"),
            label=label,
            id=stable_id("editreward", key) if key is not None else None,
            meta=_meta(row, (*images, "source_image", "instruction"), "editreward"),
        )
        stats.pairs += 1
        yield pair


def _hpdv3(
    source: Any, split: str | None, stats: LoadStats, image_root: str | Path | None = None, swap: bool = True, **_: Any
) -> Iterator[PreferencePair]:
    root = Path(image_root).expanduser() if image_root is not None else None
    for row in _rows(source, split):
        stats.rows += 1
        d = row.data
        prompt = _text(row, "prompt", "caption")
        p1, p2 = d.get("path1"), d.get("path2")
        if p1 is None or p2 is None:
            raise DataError(f"{row.where}: needs 'path1' (preferred) and 'path2'")
        pid = stable_id("hpdv3", prompt, str(p1), str(p2))
        first_is_a = not swap or int(pid, 16) % 2 == 0
        win, lose = _image(p1, row, "path1", root), _image(p2, row, "path2", root)
        pair = PreferencePair(
            request=prompt,
            image_a=win if first_is_a else lose,
            image_b=lose if first_is_a else win,
            label="A" if first_is_a else "B",
            id=pid,
            meta=_meta(row, ("prompt", "caption"), "hpdv3"),
        )
        stats.pairs += 1
        yield pair


def _imagerewarddb(source: Any, split: str | None, stats: LoadStats, **_: Any) -> Iterator[PreferencePair]:
    groups: dict[str, list[tuple[_Row, float]]] = defaultdict(list)
    order: list[str] = []
    for row in _rows(source, split):
        stats.rows += 1
        d = row.data
        rank = _float(d.get("rank"))
        if rank is None:
            stats.skipped["no rank"] += 1
            continue
        pid = d.get("prompt_id")
        key = str(pid) if pid is not None else _text(row, "prompt")
        if key not in groups:
            order.append(key)
        groups[key].append((row, rank))
    for key in order:
        members = groups[key]
        if len(members) < 2:
            stats.skipped["prompt with one ranked image"] += 1
            continue
        for (ra, rank_a), (rb, rank_b) in combinations(members, 2):
            label: Preference = "A" if rank_a < rank_b else "B" if rank_b < rank_a else "tie"
            ida = ra.data.get("image_path") or ra.where
            idb = rb.data.get("image_path") or rb.where
            meta = _meta(ra, ("image", "prompt", "rank"), "imagerewarddb")
            meta.update({"rank_a": rank_a, "rank_b": rank_b})
            for side, r in (("a", ra), ("b", rb)):
                for col in ("overall_rating", "image_text_alignment_rating", "fidelity_rating", "image_path"):
                    if col in r.data:
                        meta[f"{col}_{side}"] = r.data[col]
            yield PreferencePair(
                request=_text(ra, "prompt"),
                image_a=_image(ra.data.get("image"), ra, "image"),
                image_b=_image(rb.data.get("image"), rb, "image"),
                label=label,
                id=stable_id("imagerewarddb", key, str(ida), str(idb)),
                meta=meta,
            )
            stats.pairs += 1


def _pickapic(source: Any, split: str | None, stats: LoadStats, **_: Any) -> Iterator[PreferencePair]:
    for row in _rows(source, split):
        stats.rows += 1
        d = row.data
        if d.get("has_label") is False:
            stats.skipped["no label (has_label false)"] += 1
            continue
        if d.get("are_different") is False:
            stats.skipped["identical images (are_different false)"] += 1
            continue
        l0, l1 = _float(d.get("label_0")), _float(d.get("label_1"))
        if l0 is None or l1 is None:
            raise DataError(f"{row.where}: needs numeric 'label_0' and 'label_1'")
        label: Preference = "A" if l0 > l1 else "B" if l1 > l0 else "tie"
        key = (d.get("ranking_id"), d.get("image_0_uid"), d.get("image_1_uid"))
        ident = stable_id("pickapic", *key) if any(k is not None for k in key) else None
        pair = PreferencePair(
            request=_text(row, "caption"),
            image_a=_image(d.get("jpg_0"), row, "jpg_0"),
            image_b=_image(d.get("jpg_1"), row, "jpg_1"),
            label=label,
            id=ident,
            meta=_meta(row, ("caption", "jpg_0", "jpg_1"), "pickapic"),
        )
        stats.pairs += 1
        yield pair


def _generic(
    source: Any, split: str | None, stats: LoadStats, columns: Mapping[str, str] | None = None, **_: Any
) -> Iterator[PreferencePair]:
    if not isinstance(source, (str, Path)) or Path(source).is_dir():
        raise DataError("the 'pairs' format reads a JSONL or parquet file (see rationalrewards.data.samples)")
    for pair in load_pairs(source, columns=columns):
        stats.rows += 1
        nested = pair.meta.pop("meta", None)  # the synthetic world stores its meta as one JSON column
        if isinstance(nested, str):
            try:
                nested = json.loads(nested)
            except json.JSONDecodeError:
                pair.meta["meta"] = nested
                nested = None
        if isinstance(nested, dict):
            pair.meta = {**nested, **pair.meta}
        pair.meta.setdefault("source_dataset", Path(source).stem)
        stats.pairs += 1
        yield pair


_LOADERS: dict[str, Callable[..., Iterator[PreferencePair]]] = {
    "editreward": _editreward,
    "hpdv3": _hpdv3,
    "imagerewarddb": _imagerewarddb,
    "pickapic": _pickapic,
    "pairs": _generic,
}

# columns that identify a format (all must be present)
_SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("editreward", frozenset({"instruction", "left_output_image", "right_output_image"})),
    ("pickapic", frozenset({"caption", "jpg_0", "jpg_1", "label_0", "label_1"})),
    ("hpdv3", frozenset({"prompt", "path1", "path2"})),
    ("imagerewarddb", frozenset({"prompt_id", "prompt", "image", "rank"})),
    ("pairs", frozenset({"image_a", "image_b"})),
)


def detect_format(source: Any, split: str | None = None) -> str:
    """The format whose columns the first row of ``source`` has; DataError when none fits."""
    first = next(_rows(source, split), None)
    if first is None:
        raise DataError(f"{source}: no rows to detect the format from")
    cols = set(first.data)
    for name, needed in _SIGNATURES:
        if needed <= cols:
            return name
    raise DataError(
        f"{first.where}: columns {sorted(cols)} match no known preference format ({', '.join(FORMATS)}); "
        "pass format= explicitly or map columns with the 'pairs' format"
    )


def iter_preference(
    source: Any,
    format: str = "auto",
    split: str | None = None,
    stats: LoadStats | None = None,
    **options: Any,
) -> Iterator[PreferencePair]:
    """Pairs one by one; ``options``: ``image_root`` / ``swap`` (hpdv3), ``columns`` (pairs)."""
    fmt = detect_format(source, split) if format == "auto" else format
    if fmt not in _LOADERS:
        raise DataError(f"unknown preference format {fmt!r}; known: auto, {', '.join(FORMATS)}")
    yield from _LOADERS[fmt](source, split, stats if stats is not None else LoadStats(), **options)


def load_preference(
    source: Any,
    format: str = "auto",
    split: str | None = None,
    limit: int | None = None,
    stats: LoadStats | None = None,
    **options: Any,
) -> list[PreferencePair]:
    """All preference pairs of ``source`` in ``format`` (see the module docs); ``limit`` stops early."""
    out: list[PreferencePair] = []
    for pair in iter_preference(source, format, split, stats, **options):
        out.append(pair)
        if limit is not None and len(out) >= limit:
            break
    return out


def load_editreward(source: Any, split: str | None = None, **kw: Any) -> list[PreferencePair]:
    return load_preference(source, "editreward", split, **kw)


def load_hpdv3(source: Any, image_root: str | Path | None = None, swap: bool = True, **kw: Any) -> list[PreferencePair]:
    return load_preference(source, "hpdv3", image_root=image_root, swap=swap, **kw)


def load_imagerewarddb(source: Any, split: str | None = None, **kw: Any) -> list[PreferencePair]:
    return load_preference(source, "imagerewarddb", split, **kw)


def load_pickapic(source: Any, split: str | None = None, **kw: Any) -> list[PreferencePair]:
    return load_preference(source, "pickapic", split, **kw)


__all__ = [
    "FORMATS",
    "LoadStats",
    "detect_format",
    "iter_preference",
    "load_editreward",
    "load_hpdv3",
    "load_imagerewarddb",
    "load_pickapic",
    "load_preference",
]
