"""Read Sample and PreferencePair records from JSONL or parquet files.

Columns (any other name through ``columns``, a mapping ``field -> column``):

- ``request`` (or ``prompt``): the user's request or edit instruction;
- ``image`` (pointwise) / ``image_a`` + ``image_b`` (pairs), ``source`` for edits:
  raw bytes, a ``{"bytes": ..., "path": ...}`` struct (the Hugging Face image
  layout; in JSONL the bytes are base64), a ``data:`` URL, or a path relative
  to the data file's folder;
- ``id`` (optional; a content hash is used when absent), ``label`` (pairs:
  ``A``, ``B`` or ``tie``; pointwise: kept in ``meta``).

Every other column is kept in ``meta``. Bad input raises ``DataError`` naming
the file, the row and the field.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..schema import PreferencePair, Sample

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")

# field -> accepted column names, first match wins
_ALIASES: dict[str, tuple[str, ...]] = {"request": ("request", "prompt")}
_SAMPLE_FIELDS = ("request", "image", "source", "id")
_PAIR_FIELDS = ("request", "image_a", "image_b", "source", "id", "label")
_IMAGE_FIELDS = ("image", "image_a", "image_b", "source")
_LABELS = {"a": "A", "b": "B", "tie": "tie"}


class DataError(ValueError):
    """A data file, row or field could not be read."""


def iter_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row_number, row)`` from a JSONL or parquet file (rows counted from 1; JSONL counts lines)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _iter_jsonl(path)
    elif suffix in PARQUET_SUFFIXES:
        yield from _iter_parquet(path)
    else:
        known = ", ".join(JSONL_SUFFIXES + PARQUET_SUFFIXES)
        raise DataError(f"{path}: unknown data format {suffix or '(no suffix)'!r}; expected one of {known}")


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types on a bad file
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=256):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec


def _resolve_columns(
    fields: tuple[str, ...], columns: Mapping[str, str] | None, path: Path
) -> dict[str, tuple[str, ...]]:
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(fields) - {"label"})
    if unknown:
        raise DataError(f"{path}: column mapping names unknown fields {unknown}; known fields: {', '.join(fields)}")
    out: dict[str, tuple[str, ...]] = {}
    for f in fields:
        out[f] = (columns[f],) if f in columns else _ALIASES.get(f, (f,))
    if "label" in columns:
        out["label"] = (columns["label"],)
    return out


def _pick(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if name in row and row[name] is not None:
            return name, row[name]
    return None, None


def _image_value(value: Any, base_dir: Path, where: str) -> Any:
    """Normalise one image cell to bytes or an absolute path, checking that it can be opened."""
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            value = value["bytes"]
            if isinstance(value, str):  # JSON carries bytes as base64
                value = _b64(value, where)
        elif value.get("path"):
            value = value["path"]
        else:
            raise DataError(f"{where}: image struct has neither 'bytes' nor 'path' (keys {sorted(value)})")
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        _check_header(io.BytesIO(value), where)
        return value
    if isinstance(value, str):
        if value.startswith("data:"):
            data = _b64(value.split(",", 1)[1] if "," in value else "", where)
            _check_header(io.BytesIO(data), where)
            return data
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = base_dir / p
        if not p.is_file():
            raise DataError(f"{where}: image file not found: {p}")
        with open(p, "rb") as f:
            _check_header(f, where)
        return p
    raise DataError(f"{where}: cannot read an image from a {type(value).__name__}")


def _b64(s: str, where: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise DataError(f"{where}: image bytes are not valid base64") from None


def _check_header(f: Any, where: str) -> None:
    from PIL import Image

    try:
        with Image.open(f) as img:
            img.size  # noqa: B018 - reading the header is the check
    except Exception as exc:
        raise DataError(f"{where}: not a readable image ({type(exc).__name__}: {exc})") from None


def _read(
    path: str | Path, fields: tuple[str, ...], required: tuple[str, ...], columns: Mapping[str, str] | None
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """For each row: where it is, the named fields (images normalised), and the remaining columns."""
    path = Path(path)
    cols = _resolve_columns(fields, columns, path)
    base_dir = path.resolve().parent
    unit = "line" if path.suffix.lower() in JSONL_SUFFIXES else "row"
    for n, row in iter_rows(path):
        where = f"{path}: {unit} {n}"
        values: dict[str, Any] = {}
        used: set[str] = set()
        for f, names in cols.items():
            name, value = _pick(row, names)
            used.update(names)
            if value is None:
                if f in required:
                    tried = " or ".join(repr(x) for x in names)
                    raise DataError(f"{where}: missing field {f!r} (column {tried})")
                continue
            fw = f"{where}, field {f!r}"
            if f in _IMAGE_FIELDS:
                values[f] = _image_value(value, base_dir, fw)
            elif f == "request":
                if not isinstance(value, str) or not value.strip():
                    raise DataError(f"{fw}: the request must be a non-empty string")
                values[f] = value
            elif f == "id":
                values[f] = str(value)
            else:
                values[f] = value
        meta = {k: v for k, v in row.items() if k not in used and not isinstance(v, (bytes, bytearray))}
        yield where, values, meta


def iter_samples(path: str | Path, columns: Mapping[str, str] | None = None) -> Iterator[Sample]:
    """Samples one by one (see ``load_samples``)."""
    for _where, v, meta in _read(path, _SAMPLE_FIELDS + ("label",), ("request", "image"), columns):
        if "label" in v:
            meta["label"] = v.pop("label")
        yield Sample(**v, meta=meta)


def load_samples(path: str | Path, columns: Mapping[str, str] | None = None) -> list[Sample]:
    """All samples of a JSONL or parquet file; ``columns`` maps a field to the file's column name."""
    return list(iter_samples(path, columns))


def iter_pairs(path: str | Path, columns: Mapping[str, str] | None = None) -> Iterator[PreferencePair]:
    """Preference pairs one by one (see ``load_pairs``)."""
    for where, v, meta in _read(path, _PAIR_FIELDS, ("request", "image_a", "image_b"), columns):
        if "label" in v:
            raw = v["label"]
            label = _LABELS.get(str(raw).strip().lower()) if isinstance(raw, str) else None
            if label is None:
                raise DataError(f"{where}, field 'label': expected 'A', 'B' or 'tie', got {raw!r}")
            v["label"] = label
        yield PreferencePair(**v, meta=meta)


def load_pairs(path: str | Path, columns: Mapping[str, str] | None = None) -> list[PreferencePair]:
    """All preference pairs of a JSONL or parquet file; ``columns`` maps a field to the file's column name."""
    return list(iter_pairs(path, columns))
