"""Benchmark adapters: public preference benchmarks a user has downloaded, read into ``PreferencePair``s.

Each benchmark is described as data (a ``BenchmarkSpec``: columns, label spellings,
default protocols); the two whose rows need more than a column mapping (MMRB2's
multi-image columns, EditReward-Bench's lettered groups) have a small row function.

Inputs: a parquet file, a folder of parquet files (read recursively, sorted), a
JSONL file, a folder written by ``datasets.save_to_disk``, or rows already in
memory (a list of dicts, a pandas DataFrame, a ``datasets.Dataset``). Image cells
may be bytes, ``{"bytes", "path"}`` dicts, paths (relative to the data file),
PIL images, numpy object arrays of those, or lists of those.

Layouts (checked against the public releases):

- MMRB2 (``rl-research/multimodal-rewardbench-2``): ``pair_id``, ``prompt_text``
  (with ``<image_N>`` placeholders, removed here), ``prompt_images``,
  ``response_a_images``, ``response_b_images``, ``chosen`` (A/B). The edit subset is
  the rows with prompt images; folders named ``interleaved``/``reasoning`` (text
  responses) are skipped and counted.
- GenAI-Bench (``TIGER-Lab/GenAI-Bench``): ``image_generation`` rows have ``prompt``,
  ``left_image``, ``right_image``; ``image_edition`` rows have ``source_image``,
  ``instruct_prompt``, ``left_output_image``, ``right_output_image``; both have
  ``vote_type`` in leftvote / rightvote / tievote / bothbad_vote.
- EditReward-Bench (``TIGER-Lab/EditReward-Bench``): one row per comparison with
  ``id``, ``instruction``, ``source_image``, ``candidate_1``, ``candidate_2``,
  ``ranking``, ``comparison_type``, ``dataset`` (2pair/3pair/4pair). Assumption,
  following the benchmark's own evaluation scripts: ``comparison_type`` "XvsY" says
  candidate_1 is X and candidate_2 is Y; ``ranking`` ("A>B", "C>A", "A=B") speaks of
  those letters; the rows of one K-candidate group share the ``id`` prefix before the
  first "_" (a hash of instruction and source image where ids have no "_"); a group
  holds K(K-1)/2 comparisons. K comes from ``dataset``, else the folder name, else
  the number of distinct letters in the group.
- ``synthetic`` / ``pairs``: the PreferencePair fields as columns (``request``,
  ``image_a``, ``image_b``, ``source``, ``label``, ``id``, ``meta``), or any layout
  through a column mapping and label spellings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.samples import cell_image, cell_images, iter_rows, load_from_disk, select_split
from ..schema import Preference, PreferencePair, stable_id

# ---------------------------------------------------------------------------
# image cells


def image_list(value: Any, base_dir: Path | None = None) -> list[Any]:
    """Every image in a cell, flattened: None -> [], lists/arrays -> their images, one image -> [it].

    Dicts with bytes become the bytes; path strings and path dicts become absolute paths
    (relative ones resolved against ``base_dir``), so the images load from anywhere later.
    """
    return cell_images(value, base_dir)


def one_image(value: Any, column: str, base_dir: Path | None = None) -> Any:
    """The single image in a cell; a clear error when there is none or more than one."""
    return cell_image(value, f"column {column!r}", base_dir)


def _digest(image: Any) -> str:
    """A cheap content digest for ids: raw bytes or the path, never decoded pixels."""
    if isinstance(image, (bytes, bytearray)):
        return hashlib.sha256(image).hexdigest()[:16]
    if isinstance(image, str):
        return hashlib.sha256(image.encode()).hexdigest()[:16]
    if hasattr(image, "tobytes"):
        return hashlib.sha256(image.tobytes()).hexdigest()[:16]
    return hashlib.sha256(repr(image).encode()).hexdigest()[:16]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and value != value  # NaN from pandas


# ---------------------------------------------------------------------------
# reading rows


@dataclass
class Row:
    """One input row and where it came from (for relative paths and folder-named subsets)."""

    data: Mapping[str, Any]
    index: int
    file: Path | None = None

    @property
    def base_dir(self) -> Path | None:
        return self.file.parent if self.file is not None else None

    @property
    def folder(self) -> str | None:
        return self.file.parent.name if self.file is not None else None


def read_rows(data: Any, split: str | None = None) -> Iterator[Row]:
    """Rows from a path (parquet file or folder, JSONL, ``save_to_disk`` folder) or from rows in memory."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"benchmark data not found: {path}")
        if path.is_dir():
            if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
                yield from _rows_from_dataset(load_from_disk(path), split, base=path)
                return
            files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
            if not files:
                files = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
            if not files:
                raise FileNotFoundError(f"no parquet or jsonl files under {path}")
            index = 0
            for f in files:
                for rec in _read_file(f):
                    yield Row(rec, index, f)
                    index += 1
            return
        for index, rec in enumerate(_read_file(path)):
            yield Row(rec, index, path)
        return
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas DataFrame
        for index, rec in enumerate(data.to_dict("records")):
            yield Row(rec, index)
        return
    if hasattr(data, "column_names") or _is_dataset_dict(data):
        yield from _rows_from_dataset(data, split)
        return
    if isinstance(data, Iterable) and not isinstance(data, (bytes, dict)):
        for index, rec in enumerate(data):
            if not isinstance(rec, Mapping):
                raise TypeError(f"row {index} is a {type(rec).__name__}, expected a mapping of column -> value")
            yield Row(rec, index)
        return
    raise TypeError(f"cannot read benchmark rows from a {type(data).__name__}")


def _read_file(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON list (or ``{"pairs": [...]}``) file, else of a parquet or JSONL file (``data.iter_rows``)."""
    if path.suffix.lower() != ".json":
        for _, rec in iter_rows(path):
            yield rec
        return
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    rows = obj if isinstance(obj, list) else obj.get("pairs", obj.get("data"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of rows (or {{'pairs': [...]}})")
    yield from rows


def _is_dataset_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(hasattr(v, "column_names") for v in obj.values())


def _rows_from_dataset(ds: Any, split: str | None, base: Path | None = None) -> Iterator[Row]:
    fake_file = (base / "data") if base is not None else None
    for index, rec in enumerate(select_split(ds, split)):
        yield Row(rec, index, fake_file)


# ---------------------------------------------------------------------------
# labels


def _norm(label: Any) -> str:
    return re.sub(r"\s+", "", str(label)).lower()


PAIR_LABELS: dict[str, Preference] = {
    "a": "A",
    "b": "B",
    "tie": "tie",
    "a>b": "A",
    "b>a": "B",
    "a<b": "B",
    "b<a": "A",
    "a=b": "tie",
    "a==b": "tie",
    "responsea": "A",
    "responseb": "B",
    "response_a": "A",
    "response_b": "B",
}

GENAI_LABELS: dict[str, Preference] = {
    "leftvote": "A",
    "rightvote": "B",
    "tievote": "tie",
    "bothbad_vote": "tie",
    "bothbadvote": "tie",
    "bothbad": "tie",
    "tie": "tie",
}


def map_label(value: Any, labels: Mapping[str, Preference], column: str) -> Preference | None:
    """Map a label cell through normalized spellings; None for a missing label; an error for an unknown one."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    key = _norm(value)
    if key not in labels:
        known = ", ".join(sorted(labels))
        raise ValueError(f"unknown label {value!r} in column {column!r}; known spellings: {known}")
    return labels[key]


# ---------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark described as data; ``row`` is set for layouts a column mapping can't express."""

    name: str
    description: str
    request: tuple[str, ...] = ("request",)
    image_a: str = "image_a"
    image_b: str = "image_b"
    source: str | None = None
    label: str = "label"
    id: str | None = None
    labels: Mapping[str, Preference] = field(default_factory=lambda: dict(PAIR_LABELS))
    meta_columns: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ("ties", "noties")
    both_orders: bool = False
    grouped: bool = False
    row: Callable[[Row, BenchmarkSpec], PreferencePair | None] | None = None
    url: str = ""

    def with_columns(self, columns: Mapping[str, str | None] | None, labels: Mapping[str, str] | None) -> BenchmarkSpec:
        """A copy with some columns renamed (keys: request, image_a, image_b, source, label, id) and labels added."""
        from dataclasses import replace

        changes: dict[str, Any] = {}
        for key, col in (columns or {}).items():
            if key not in ("request", "image_a", "image_b", "source", "label", "id"):
                raise ValueError(f"unknown column role {key!r}: use request, image_a, image_b, source, label or id")
            changes[key] = (col,) if key == "request" and isinstance(col, str) else col
        if labels:
            merged = dict(self.labels)
            for spelling, target in labels.items():
                if target not in ("A", "B", "tie"):
                    raise ValueError(f"label {spelling!r} maps to {target!r}; targets are A, B or tie")
                merged[_norm(spelling)] = target  # type: ignore[assignment]
            changes["labels"] = merged
        return replace(self, **changes) if changes else self


class SkipRow(Exception):
    """A row this benchmark leaves out on purpose; the reason is counted in the load stats."""


def _first_present(data: Mapping[str, Any], columns: tuple[str, ...], what: str) -> Any:
    for col in columns:
        if col in data and not _missing(data[col]):
            return data[col]
    raise KeyError(f"no {what} column: looked for {', '.join(columns)}; row has {', '.join(sorted(data))}")


def _column(data: Mapping[str, Any], col: str) -> Any:
    if col not in data:
        raise KeyError(f"missing column {col!r}; row has {', '.join(sorted(data))}")
    return data[col]


def _meta(data: Mapping[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in columns:
        if col in data and not _missing(data[col]):
            v = data[col]
            out[col] = v.item() if hasattr(v, "item") else v
    return out


def _generic_row(row: Row, spec: BenchmarkSpec) -> PreferencePair:
    d = row.data
    request = str(_first_present(d, spec.request, "request"))
    a = one_image(_column(d, spec.image_a), spec.image_a, row.base_dir)
    b = one_image(_column(d, spec.image_b), spec.image_b, row.base_dir)
    source = None
    if spec.source is not None and spec.source in d:
        src = image_list(d[spec.source], row.base_dir)
        if len(src) > 1:
            raise ValueError(f"column {spec.source!r} holds {len(src)} images where at most one is expected")
        source = src[0] if src else None
    label = map_label(d.get(spec.label), spec.labels, spec.label) if spec.label in d else None
    meta = _meta(d, spec.meta_columns)
    raw_meta = d.get("meta")
    if isinstance(raw_meta, str) and raw_meta.strip():
        try:
            raw_meta = json.loads(raw_meta)
        except json.JSONDecodeError:
            raw_meta = {"meta": raw_meta}
    if isinstance(raw_meta, Mapping):
        meta = {**dict(raw_meta), **meta}
    if spec.label in d and not _missing(d[spec.label]):
        meta.setdefault("label_raw", str(d[spec.label]))
    pid = str(d[spec.id]) if spec.id and spec.id in d and not _missing(d[spec.id]) else None
    if pid is None:
        src_digest = _digest(source) if source is not None else None
        pid = stable_id(spec.name, row.index, request, _digest(a), _digest(b), src_digest)
    return PreferencePair(request=request, image_a=a, image_b=b, source=source, label=label, id=pid, meta=meta)


def _synthetic_row(row: Row, spec: BenchmarkSpec) -> PreferencePair:
    """A pair of the synthetic world; its evaluation-only truth is dropped so it can never reach a model."""
    from ..synthetic.labeler import EVAL_KEY

    pair = _generic_row(row, spec)
    pair.meta.pop(EVAL_KEY, None)
    return pair


_PLACEHOLDER = re.compile(r"<image_\d+>")


def _mmrb2_row(row: Row, spec: BenchmarkSpec) -> PreferencePair:
    d = row.data
    folder = (row.folder or "").lower()
    if folder in ("interleaved", "reasoning"):
        raise SkipRow(f"MMRB2 {folder} subset (text responses) is not an image-generation benchmark")
    prompt_images = image_list(d.get("prompt_images"), row.base_dir)
    subset = "edit" if prompt_images else "t2i"
    a = one_image(_column(d, "response_a_images"), "response_a_images", row.base_dir)
    b = one_image(_column(d, "response_b_images"), "response_b_images", row.base_dir)
    request = re.sub(r"\s+", " ", _PLACEHOLDER.sub(" ", str(_column(d, "prompt_text")))).strip()
    meta = _meta(d, spec.meta_columns)
    meta["subset"] = subset
    if len(prompt_images) > 1:
        meta["extra_prompt_images"] = len(prompt_images) - 1  # the first one is judged as the source
    label = map_label(_column(d, "chosen"), spec.labels, "chosen")
    meta["label_raw"] = str(d.get("chosen"))
    if label == "tie":
        raise ValueError(f"MMRB2 has no ties, but row {row.index} says {d.get('chosen')!r}")
    pid = str(_column(d, "pair_id"))
    return PreferencePair(
        request=request,
        image_a=a,
        image_b=b,
        source=prompt_images[0] if prompt_images else None,
        label=label,
        id=pid,
        meta=meta,
    )


def _genai_row(row: Row, spec: BenchmarkSpec) -> PreferencePair:
    d = row.data
    if "source_image" in d or "left_output_image" in d:
        edit = BENCHMARKS["genai-bench-edit"]
        pair = _generic_row(row, edit)
        pair.meta["subset"] = "edit"
    else:
        pair = _generic_row(row, BENCHMARKS["genai-bench-t2i"])
        pair.meta["subset"] = "t2i"
    return pair


_RANKING = re.compile(r"^\s*([A-Za-z])\s*(>|<|==|=)\s*([A-Za-z])\s*$")
_COMPARISON = re.compile(r"^\s*([A-Za-z])\s*vs\.?\s*([A-Za-z])\s*$", re.IGNORECASE)


def editreward_label(ranking: Any, comparison_type: Any) -> Preference:
    """The label of one EditReward-Bench comparison: candidate_1 is the first letter of ``comparison_type``."""
    first, second = "A", "B"
    if not _missing(comparison_type) and str(comparison_type).strip():
        m = _COMPARISON.match(str(comparison_type))
        if not m:
            raise ValueError(f"comparison_type {comparison_type!r} is not of the form 'XvsY'")
        first, second = m.group(1).upper(), m.group(2).upper()
    m = _RANKING.match(str(ranking))
    if not m:
        raise ValueError(f"ranking {ranking!r} is not of the form 'X>Y', 'X<Y' or 'X=Y'")
    left, op, right = m.group(1).upper(), m.group(2), m.group(3).upper()
    if {left, right} != {first, second}:
        raise ValueError(f"ranking {ranking!r} does not compare the letters of comparison_type {first}vs{second}")
    if op in ("=", "=="):
        return "tie"
    winner = left if op == ">" else right
    return "A" if winner == first else "B"


def _editreward_row(row: Row, spec: BenchmarkSpec) -> PreferencePair:
    d = row.data
    request = str(_first_present(d, spec.request, "instruction"))
    source = one_image(_column(d, "source_image"), "source_image", row.base_dir)
    a = one_image(_column(d, "candidate_1"), "candidate_1", row.base_dir)
    b = one_image(_column(d, "candidate_2"), "candidate_2", row.base_dir)
    ranking = _column(d, "ranking")
    comparison = d.get("comparison_type")
    label = editreward_label(ranking, comparison)
    meta = _meta(d, spec.meta_columns)
    meta["label_raw"] = str(ranking)
    k = None
    ds_name = d.get("dataset")
    for candidate in (ds_name, row.folder):
        m = re.match(r"^\s*(\d+)\s*pair", str(candidate or ""), re.IGNORECASE)
        if m:
            k = int(m.group(1))
            break
    raw_id = d.get("id")
    if not _missing(raw_id) and "_" in str(raw_id):
        group = str(raw_id).split("_")[0]
    else:
        group = stable_id(request, _digest(source))
    pid = str(raw_id) if not _missing(raw_id) else stable_id(group, comparison, _digest(a), _digest(b))
    meta["group"] = group
    if k is not None:
        meta["k"] = k
    if not _missing(comparison):
        meta["comparison_type"] = str(comparison)
    return PreferencePair(request=request, image_a=a, image_b=b, source=source, label=label, id=pid, meta=meta)


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register(spec: BenchmarkSpec) -> BenchmarkSpec:
    BENCHMARKS[spec.name] = spec
    return spec


register(
    BenchmarkSpec(
        name="mmrb2",
        description="Multimodal RewardBench 2, text-to-image and editing subsets; both orders judged",
        request=("prompt_text",),
        label="chosen",
        id="pair_id",
        meta_columns=("prompt_source", "response_a_model", "response_b_model"),
        protocols=("mmrb2",),
        both_orders=True,
        row=_mmrb2_row,
        url="https://huggingface.co/datasets/rl-research/multimodal-rewardbench-2",
    )
)
register(
    BenchmarkSpec(
        name="genai-bench-t2i",
        description="GenAI-Bench image generation (arena votes)",
        request=("prompt",),
        image_a="left_image",
        image_b="right_image",
        label="vote_type",
        labels=GENAI_LABELS,
        meta_columns=("left_model", "right_model", "vote_type"),
        protocols=("genai-4way", "genai-noties"),
        url="https://huggingface.co/datasets/TIGER-Lab/GenAI-Bench",
    )
)
register(
    BenchmarkSpec(
        name="genai-bench-edit",
        description="GenAI-Bench image editing (arena votes)",
        request=("instruct_prompt",),
        image_a="left_output_image",
        image_b="right_output_image",
        source="source_image",
        label="vote_type",
        labels=GENAI_LABELS,
        meta_columns=("left_model", "right_model", "vote_type", "source_prompt", "target_prompt"),
        protocols=("genai-4way", "genai-noties"),
        url="https://huggingface.co/datasets/TIGER-Lab/GenAI-Bench",
    )
)
register(
    BenchmarkSpec(
        name="genai-bench",
        description="GenAI-Bench, generation or editing rows told apart by their columns",
        labels=GENAI_LABELS,
        label="vote_type",
        protocols=("genai-4way", "genai-noties"),
        row=_genai_row,
        url="https://huggingface.co/datasets/TIGER-Lab/GenAI-Bench",
    )
)
register(
    BenchmarkSpec(
        name="editreward-bench",
        description="EditReward-Bench: 2/3/4-candidate edit groups, every pair of candidates compared",
        request=("instruction",),
        image_a="candidate_1",
        image_b="candidate_2",
        source="source_image",
        label="ranking",
        id="id",
        meta_columns=("dataset", "model_1", "model_2", "score_1", "score_2"),
        protocols=("editreward",),
        grouped=True,
        row=_editreward_row,
        url="https://huggingface.co/datasets/TIGER-Lab/EditReward-Bench",
    )
)
register(
    BenchmarkSpec(
        name="synthetic",
        description="labelled pairs of the synthetic world (PreferencePair fields as columns)",
        source="source",
        id="id",
        protocols=("ties", "noties"),
        row=_synthetic_row,
    )
)
register(
    BenchmarkSpec(
        name="pairs",
        description="any labelled pairs file; rename columns with columns= and add label spellings with labels=",
        source="source",
        id="id",
        protocols=("ties", "noties"),
    )
)


# ---------------------------------------------------------------------------
# loading


@dataclass
class LoadStats:
    """What the loader saw: rows read, pairs made, rows skipped by reason, labels by value."""

    rows: int = 0
    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    subsets: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "pairs": self.pairs,
            "skipped": dict(self.skipped),
            "labels": {str(k): v for k, v in self.labels.items()},
            "subsets": dict(self.subsets),
            "notes": list(self.notes),
        }


@dataclass
class BenchmarkData:
    spec: BenchmarkSpec
    pairs: list[PreferencePair]
    stats: LoadStats


def get_spec(name: str) -> BenchmarkSpec:
    key = name.strip().lower()
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[key]


def load_benchmark(
    bench: str | BenchmarkSpec,
    data: Any,
    *,
    limit: int | None = None,
    columns: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
    split: str | None = None,
    subset: str | None = None,
) -> BenchmarkData:
    """Read ``data`` as benchmark ``bench`` into labelled pairs.

    ``limit`` keeps the first pairs in file order (whole groups for grouped benchmarks);
    ``subset`` keeps pairs whose ``meta["subset"]`` matches (e.g. MMRB2 "t2i" or "edit").
    Bad rows raise with the row number; rows a benchmark leaves out on purpose are counted.
    """
    spec = get_spec(bench) if isinstance(bench, str) else bench
    spec = spec.with_columns(columns, labels)
    if limit is not None and limit < 1:
        raise ValueError("limit must be a positive number of pairs")
    stats = LoadStats()
    pairs: list[PreferencePair] = []
    seen: set[str] = set()
    make = spec.row or _generic_row
    for row in read_rows(data, split=split):
        stats.rows += 1
        try:
            pair = make(row, spec)
        except SkipRow as why:
            stats.skipped[str(why)] += 1
            continue
        except (KeyError, ValueError) as exc:
            where = f"{row.file}, row {row.index}" if row.file else f"row {row.index}"
            raise ValueError(f"{spec.name}: {where}: {exc}") from None
        if pair is None:
            stats.skipped["adapter returned nothing"] += 1
            continue
        if subset is not None and pair.meta.get("subset") != subset:
            stats.skipped[f"not in subset {subset}"] += 1
            continue
        same_group = spec.grouped and pair.meta.get("group") == (pairs[-1].meta.get("group") if pairs else None)
        if limit is not None and len(pairs) >= limit and not same_group:
            break
        if pair.id in seen:
            raise ValueError(f"{spec.name}: duplicate pair id {pair.id!r} (row {row.index})")
        seen.add(pair.id)
        pairs.append(pair)
        stats.labels[pair.label] += 1
        if "subset" in pair.meta:
            stats.subsets[pair.meta["subset"]] += 1
    if spec.grouped:
        _fill_group_k(pairs, stats)
    extra = sum(1 for p in pairs if p.meta.get("extra_prompt_images"))
    if extra:
        stats.notes.append(f"{extra} pairs have several prompt images; the first is judged as the source")
    stats.pairs = len(pairs)
    if not pairs:
        raise ValueError(f"{spec.name}: no pairs read from {data!s:.200}")
    return BenchmarkData(spec=spec, pairs=pairs, stats=stats)


def _fill_group_k(pairs: list[PreferencePair], stats: LoadStats) -> None:
    letters: dict[str, set[str]] = {}
    for p in pairs:
        ct = p.meta.get("comparison_type")
        m = _COMPARISON.match(str(ct)) if ct else None
        letters.setdefault(p.meta["group"], set()).update({m.group(1).upper(), m.group(2).upper()} if m else {"A", "B"})
    inferred = 0
    for p in pairs:
        if "k" not in p.meta:
            p.meta["k"] = len(letters[p.meta["group"]])
            inferred += 1
        stats.subsets[f"k={p.meta['k']}"] += 1
    if inferred:
        stats.notes.append(f"K inferred from the comparison letters for {inferred} pairs (no 'dataset' column)")
