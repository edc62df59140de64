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
        yield from iter_jsonl(path)
    elif suffix in PARQUET_SUFFIXES:
        yield from _iter_parquet(path)
    else:
        known = ", ".join(JSONL_SUFFIXES + PARQUET_SUFFIXES)
        raise DataError(f"{path}: unknown data format {suffix or '(no suffix)'!r}; expected one of {known}")


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for each non-blank line of a JSONL file; ``DataError`` names a bad line."""
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


def load_from_disk(path: str | Path) -> Any:
    """A folder written by ``datasets.save_to_disk`` (the ``datasets`` package is imported only here)."""
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "reading a datasets.save_to_disk folder needs the datasets package: pip install 'rationalrewards[train]'"
        ) from None
    return datasets.load_from_disk(str(path))


def select_split(ds: Any, split: str | None, label: str = "dataset") -> Any:
    """One split of a ``DatasetDict`` (``split`` may be left out when there is only one); a Dataset as it is."""
    if not (isinstance(ds, Mapping) and ds and all(hasattr(v, "column_names") for v in ds.values())):
        return ds
    names = list(ds.keys())
    if split is None:
        if len(names) != 1:
            raise DataError(f"{label}: the dataset has splits {names}; choose one with split=")
        split = names[0]
    if split not in ds:
        raise DataError(f"{label}: no split {split!r}; the dataset has {names}")
    return ds[split]


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


def cell_images(value: Any, base_dir: str | Path | None = None, where: str = "image cell") -> list[Any]:
    """Every image in a dataset cell, flattened, none decoded: None -> [], lists/arrays -> their images.

    Cells may hold bytes, ``{"bytes", "path"}`` structs (bytes as base64 text in JSON), paths, ``data:``
    URLs, PIL images, pixel arrays, or lists / numpy object arrays of those. Bytes come back as ``bytes``,
    paths as path strings (relative ones joined to ``base_dir`` when given), anything else as it is. None,
    NaN, empty bytes or paths and parquet's null struct hold no image; other values raise ``DataError``.
    """
    if value is None or (isinstance(value, float) and value != value):  # NaN: pandas' missing value
        return []
    if isinstance(value, dict):
        data = value.get("bytes")
        if data is not None and len(data):
            return [_b64(data, where) if isinstance(data, str) else bytes(data)]
        if value.get("path"):
            return cell_images(str(value["path"]), base_dir, where)
        if "bytes" in value or "path" in value:
            return []  # parquet's null image
        raise DataError(f"{where}: image struct has neither 'bytes' nor 'path' (keys {sorted(value)})")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return [bytes(value)] if len(value) else []
    if isinstance(value, (str, Path)):
        text = str(value)
        if not text or text.startswith("data:"):
            return [text] if text else []
        path = Path(text).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        return [str(path)]
    if isinstance(value, (list, tuple)):
        return [img for v in value for img in cell_images(v, base_dir, where)]
    if hasattr(value, "size") and hasattr(value, "mode"):  # PIL image
        return [value]
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [img for v in value.reshape(-1) for img in cell_images(v, base_dir, where)]
        return [value]  # a pixel array
    raise DataError(f"{where}: cannot read an image from a {type(value).__name__}")


def cell_image(value: Any, where: str, base_dir: str | Path | None = None, *, local_files: bool = False) -> Any:
    """The single image of a cell (see ``cell_images``); ``DataError`` when it holds none or several.

    ``local_files``: a path must be absolute once joined to ``base_dir`` and name an existing file; it comes
    back as a ``Path``.
    """
    images = cell_images(value, base_dir, where)
    if len(images) != 1:
        raise DataError(f"{where} holds {len(images)} images where exactly one is expected")
    image = images[0]
    if local_files and isinstance(image, str) and not image.startswith("data:"):
        path = Path(image)
        if not path.is_absolute():
            raise DataError(
                f"{where}: relative image path {image!r} and no base folder (image_root) to resolve it against"
            )
        if not path.is_file():
            raise DataError(f"{where}: image file not found: {path}")
        return path
    return image


def _image_value(value: Any, base_dir: Path, where: str) -> Any:
    """Normalise one image cell to bytes or an absolute path, checking that it can be opened."""
    image = cell_image(value, where, base_dir, local_files=True)
    if isinstance(image, str):  # a data: URL
        image = _b64(image.split(",", 1)[1] if "," in image else "", where)
    if isinstance(image, bytes):
        _check_header(io.BytesIO(image), where)
    elif isinstance(image, Path):
        with open(image, "rb") as f:
            _check_header(f, where)
    return image


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
