"""Helpers the benchmark scripts share: timing, the machine's description, the printed table, the results file."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = RESULTS_DIR.parents[1]


def build_module() -> Any:
    """``scripts/build_embedded_model.py`` as a module (its stages, config and evaluation helpers)."""
    path = ROOT / "scripts" / "build_embedded_model.py"
    spec = importlib.util.spec_from_file_location("build_embedded_model", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def answer_encoding(processor: Any, prompt: str, answer: str, images: list[Any]) -> tuple[Any, int]:
    """The processor's encoding of ``prompt + answer`` with ``images``, and how many of its tokens are the prompt."""
    enc = processor(text=[prompt + answer], images=images or None, return_tensors="pt")
    n_prompt = processor(text=[prompt], images=images or None, return_tensors="pt")["input_ids"].shape[1]
    return enc, n_prompt


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()``'s result and the seconds it took (wall clock)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def rate_row(case: str, items: int, seconds: float) -> dict[str, Any]:
    """One row of a throughput table: items per second and milliseconds per item."""
    return {
        "case": case,
        "items": items,
        "items_per_s": round(items / seconds, 1),
        "ms_per_item": round(1e3 * seconds / items, 3),
    }


RATE_COLUMNS = (
    ("case", "case", "s"),
    ("items", "items", "d"),
    ("items/s", "items_per_s", ".1f"),
    ("ms/item", "ms_per_item", ".3f"),
)


def machine() -> dict[str, Any]:
    """Python version, CPU count and platform, for the results record."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]]) -> None:
    """Print ``rows`` as an aligned table; ``columns`` are ``(header, key, format spec)``, e.g.
    ``("items/s", "items_per_s", ".1f")``. Numbers are right-aligned, text left-aligned; a missing value is "-"."""

    def cell(row: Mapping[str, Any], key: str, spec: str) -> str:
        value = row.get(key)
        return "-" if value is None else format(value, spec)

    cells = [[cell(r, key, spec) for _, key, spec in columns] for r in rows]
    widths = [max([len(head)] + [len(c[i]) for c in cells]) for i, (head, _, _) in enumerate(columns)]
    numeric = [all(isinstance(r.get(key), (int, float, type(None))) for r in rows) for _, key, _ in columns]

    def line(values: list[str]) -> str:
        parts = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))
        return "  ".join(parts).rstrip()

    print(line([head for head, _, _ in columns]))
    for c in cells:
        print(line(c))


def write_results(path: str | Path, record: Mapping[str, Any]) -> None:
    """Write the results record as indented JSON (folders made as needed) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
