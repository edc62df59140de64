"""Prompt files of the downstream benchmarks people run GCR on, read into ``BenchItem``s.

Each item knows where its final image goes so that the benchmark's own scorer finds it
(paths relative to the run's ``final/`` folder):

=================  ==============================================  ======================================
format             input                                           final image (what the scorer reads)
=================  ==============================================  ======================================
``imgedit``        ImgEdit-Bench ``basic_edit.json``:              ``{key}.png`` (flat folder; the scorer
                   ``{key: {id, prompt, edit_type}}``; sources at   reads ``result_img_folder/{key}.png``)
                   ``--images DIR/{id}``
``gedit``          GEdit-Bench rows (parquet / jsonl / json):       ``fullset/{task_type}/{instruction_
                   ``key, instruction, input_image`` (+             language}/{key}.png`` (the layout of
                   ``task_type, instruction_language``); image a    Step1X-Edit's GEdit-Bench example)
                   HF image struct, bytes or a path under
                   ``--images``
``unigenbench``    UniGenBench++ CSV ``index, prompt_en,            ``{index}_{sample}.png`` (flat folder;
                   sub_dims_en`` (or ``prompt_zh`` / ``prompt``)    the scorer expects 4 samples a prompt:
                                                                   run with ``repeats=4``)
``jsonl``          ``{"id", "request", "source"?}`` per line;       ``{id}.png``
                   ``source`` relative to ``--images`` or the file
=================  ==============================================  ======================================

With ``repeats > 1`` a benchmark without a multi-sample convention gets ``sample{j}/<path>``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.samples import DataError, iter_jsonl

FORMATS = ("imgedit", "gedit", "unigenbench", "jsonl")


@dataclass
class BenchItem:
    """One benchmark prompt: its id, request, source image (edits) and where its final image goes."""

    id: str
    request: str
    source: Any | None = None
    output: str = ""
    output_multi: str | None = None  # a "{sample}" pattern where the benchmark names several samples itself
    meta: dict[str, Any] = field(default_factory=dict)

    def output_path(self, sample: int = 0, repeats: int = 1) -> str:
        if self.output_multi is not None:
            return self.output_multi.format(sample=sample)
        return self.output if repeats == 1 else f"sample{sample}/{self.output}"


class BenchFileError(ValueError):
    """A benchmark file could not be read or does not have the expected layout."""


def _safe(part: Any) -> str:
    text = re.sub(r"[^\w.\-]+", "_", str(part)).strip("._")
    if not text:
        raise BenchFileError(f"cannot make a file name from {part!r}")
    return text


def detect_format(path: str | Path) -> str:
    """Guess the format of a benchmark file from its suffix and first record."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return "unigenbench"
    if suffix == ".parquet":
        return "gedit"
    if suffix in (".json", ".jsonl"):
        first = _first_record(p)
        if isinstance(first, dict) and "edit_type" in first and "prompt" in first:
            return "imgedit"
        if isinstance(first, dict) and "instruction" in first and "key" in first:
            return "gedit"
        if isinstance(first, dict) and "request" in first:
            return "jsonl"
    raise BenchFileError(f"cannot tell the benchmark format of {p}; pass format= one of {', '.join(FORMATS)}")


def _first_record(p: Path) -> Any:
    text = p.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        raise BenchFileError(f"{p} is empty")
    if stripped[0] == "{" and p.suffix.lower() == ".json":
        data = json.loads(text)
        values = list(data.values())
        return values[0] if values and isinstance(values[0], dict) else data
    if stripped[0] == "[":
        data = json.loads(text)
        return data[0] if data else None
    return json.loads(stripped.splitlines()[0])


def read_bench(
    path: str | Path, format: str | None = None, images_dir: str | Path | None = None, language: str | None = None
) -> list[BenchItem]:
    """Read a benchmark prompt file (``format`` auto-detected when None); see the module docstring."""
    p = Path(path)
    if not p.is_file():
        raise BenchFileError(f"benchmark file not found: {p}")
    fmt = format or detect_format(p)
    if fmt == "imgedit":
        items = read_imgedit(p, images_dir)
    elif fmt == "gedit":
        items = read_gedit(p, images_dir, language)
    elif fmt == "unigenbench":
        items = read_unigenbench(p)
    elif fmt == "jsonl":
        items = read_jsonl(p, images_dir)
    else:
        raise BenchFileError(f"unknown benchmark format {fmt!r}; known: {', '.join(FORMATS)}")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise BenchFileError(f"{p}: item id {dup!r} occurs more than once")
    if not items:
        raise BenchFileError(f"{p}: no items")
    return items


def read_imgedit(path: str | Path, images_dir: str | Path | None) -> list[BenchItem]:
    """ImgEdit-Bench ``basic_edit.json``: ``{key: {id, prompt, edit_type}}``; sources at ``images_dir/id``."""
    p = Path(path)
    if images_dir is None:
        raise BenchFileError("ImgEdit-Bench needs the folder of original images (--images DIR)")
    root = Path(images_dir)
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise BenchFileError(f"{p}: expected a JSON object {{key: {{id, prompt, edit_type}}}}")
    items, missing = [], []
    for key, rec in data.items():
        if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str) or not rec.get("id"):
            raise BenchFileError(f"{p}: entry {key!r} needs 'id' and 'prompt'")
        src = root / rec["id"]
        if not src.is_file():
            missing.append(str(src))
        items.append(
            BenchItem(
                id=str(key),
                request=rec["prompt"].strip(),
                source=str(src),
                output=f"{_safe(key)}.png",
                meta={"edit_type": rec.get("edit_type"), "image_id": rec["id"]},
            )
        )
    if missing:
        raise BenchFileError(f"{len(missing)} source image(s) not found under {root}, e.g. {missing[0]}")
    return items


def _jsonl(p: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` of each line of a JSONL file; a bad line is a ``BenchFileError``."""
    try:
        return list(iter_jsonl(p))
    except DataError as exc:
        raise BenchFileError(str(exc)) from None


def _rows(p: Path) -> list[dict[str, Any]]:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    if suffix == ".jsonl":
        return [rec for _, rec in _jsonl(p)]
    if suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = [{"key": k, **v} for k, v in data.items()]
        return list(data)
    raise BenchFileError(f"{p}: expected a .parquet, .jsonl or .json file")


def read_gedit(path: str | Path, images_dir: str | Path | None = None, language: str | None = None) -> list[BenchItem]:
    """GEdit-Bench rows ``key, instruction, input_image[, task_type, instruction_language]``."""
    p = Path(path)
    items = []
    for n, row in enumerate(_rows(p)):
        key, instruction = row.get("key"), row.get("instruction")
        if key is None or not isinstance(instruction, str):
            raise BenchFileError(f"{p}: row {n} needs 'key' and 'instruction'")
        lang = row.get("instruction_language") or "en"
        if language is not None and lang != language:
            continue
        task_type = row.get("task_type") or "all"
        image = row.get("input_image")
        if image is None:
            image = row.get("input_image_raw")
        if image is None:
            raise BenchFileError(f"{p}: row {n} ({key}) has no input_image")
        if isinstance(image, str) and not image.startswith("data:"):
            base = Path(images_dir) if images_dir is not None else p.parent
            image = str(base / image)
        elif isinstance(image, dict) and image.get("bytes") is None and image.get("path"):
            base = Path(images_dir) if images_dir is not None else p.parent
            image = str(base / image["path"])
        rel = f"fullset/{_safe(task_type)}/{_safe(lang)}/{_safe(key)}.png"
        items.append(
            BenchItem(
                id=f"{task_type}/{lang}/{key}",
                request=instruction.strip(),
                source=image,
                output=rel,
                meta={"key": str(key), "task_type": task_type, "instruction_language": lang},
            )
        )
    return items


def read_unigenbench(path: str | Path) -> list[BenchItem]:
    """UniGenBench++ CSV: ``index, prompt_en, sub_dims_en`` (or the ``_zh`` columns, or ``prompt``/``sub_dims``)."""
    p = Path(path)
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        prompt_col = next((c for c in ("prompt_en", "prompt_zh", "prompt") if c in cols), None)
        dims_col = next((c for c in ("sub_dims_en", "sub_dims_zh", "sub_dims") if c in cols), None)
        if "index" not in cols or prompt_col is None:
            raise BenchFileError(f"{p}: expected columns index, prompt_en (or prompt_zh / prompt); got {cols}")
        items = []
        for row in reader:
            index = row["index"].strip()
            meta: dict[str, Any] = {"index": index}
            if dims_col and row.get(dims_col):
                try:
                    meta["sub_dims"] = json.loads(row[dims_col])
                except json.JSONDecodeError:
                    meta["sub_dims"] = row[dims_col]
            items.append(
                BenchItem(
                    id=index,
                    request=row[prompt_col].strip(),
                    output=f"{_safe(index)}_0.png",
                    output_multi=f"{_safe(index)}_{{sample}}.png",
                    meta=meta,
                )
            )
    return items


def read_jsonl(path: str | Path, images_dir: str | Path | None = None) -> list[BenchItem]:
    """Plain JSONL, one ``{"id", "request", "source"?}`` a line; ``source`` relative to ``images_dir`` or the file."""
    p = Path(path)
    base = Path(images_dir) if images_dir is not None else p.parent
    items = []
    for n, rec in _jsonl(p):
        if not isinstance(rec.get("request"), str) or not rec["request"].strip():
            raise BenchFileError(f"{p}:{n}: each line needs a non-empty 'request'")
        item_id = str(rec.get("id") if rec.get("id") is not None else n - 1)
        source = rec.get("source")
        if isinstance(source, str) and not source.startswith("data:"):
            source = str(base / source)
        meta = {k: v for k, v in rec.items() if k not in ("id", "request", "source")}
        items.append(
            BenchItem(
                id=item_id, request=rec["request"].strip(), source=source, output=f"{_safe(item_id)}.png", meta=meta
            )
        )
    return items
