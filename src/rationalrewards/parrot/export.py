"""PARROT phase 3 data: kept rationales as chat SFT records, rendered by the reward model's own templates.

Each kept rationale gives one pairwise example (prompt: ``get_template(t).pairwise(pair)``; target:
the rationale re-rendered with ``format.render_pairwise`` from its parsed form, so every target is
in the exact protocol) and, with ``pointwise=True``, two pointwise examples (prompt:
``get_template(t).pointwise(sample)``; target: ``render_critique`` of the projection, see
``projection``). Prompts come from the same template object the reward model renders at inference
(``Conversation.to_hf()``, as ``backends.transformers_local`` feeds the processor), so training
and inference prompts cannot drift.

Layouts written under ``out_dir``:

- ``hf/``: a ``datasets.DatasetDict`` (``save_to_disk``) with a ``train`` and, when
  ``eval_fraction > 0``, a ``test`` split; columns ``messages`` (TRL conversational format, image
  placeholders ``{"type": "image"}`` in order), ``images`` (PIL images), ``kind``, ``side``,
  ``pair_key``, ``label``, ``source_dataset``, ``rationale_index``;
- ``sharegpt/``: LLaMA-Factory ShareGPT JSON (``train.json``, ``test.json``) with ``messages``
  (``<image>`` tokens where the images go), ``system`` and ``images`` (paths relative to the
  folder, PNG files under ``images/`` named by content hash), plus ``dataset_info.json``.

The held-out split is by pair (all examples of a pair land in the same split). ``pairwise_fraction``
subsamples the larger group deterministically (``seed``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conversation import Conversation, ImagePart, TextPart
from ..format import render_critique, render_pairwise
from ..images import load_image, to_png_bytes
from ..parsing import parse_pairwise
from ..schema import PreferencePair, stable_id
from ..templates import PromptTemplate, get_template
from .config import ExportConfig
from .projection import project

IMAGE_TOKEN = "<image>"  # LLaMA-Factory's image placeholder


@dataclass
class Example:
    """One SFT example before it is written: the prompt, the target and where it came from."""

    kind: str  # pairwise | pointwise
    prompt: Conversation
    target: str
    pair_key: str
    side: str | None
    label: str | None
    source_dataset: str | None
    rationale_index: int
    split: str = "train"
    fallback: list[str] = field(default_factory=list)

    def conversation(self) -> Conversation:
        conv = Conversation(list(self.prompt.messages))
        return conv.add("assistant", self.target)

    def messages(self) -> list[dict[str, Any]]:
        return self.conversation().to_hf()

    def images(self) -> list[Any]:
        return self.prompt.images()


@dataclass
class ExportSummary:
    examples: Counter = field(default_factory=Counter)  # (split, kind) -> n
    rationales: int = 0
    pairs: int = 0
    missing_pairs: int = 0
    projection_fallbacks: Counter = field(default_factory=Counter)
    dropped_by_mix: Counter = field(default_factory=Counter)
    paths: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"export: {self.rationales} kept rationales of {self.pairs} pairs"]
        for (split, kind), n in sorted(self.examples.items()):
            out.append(f"  {split} {kind}: {n}")
        if self.missing_pairs:
            out.append(f"  records whose pair is not in the data: {self.missing_pairs}")
        for kind, n in self.dropped_by_mix.items():
            out.append(f"  {kind} dropped by the mix ratio: {n}")
        for key, n in self.projection_fallbacks.most_common():
            out.append(f"  projection fell back to the whole text ({key}): {n}")
        out += [f"  {name}: {path}" for name, path in self.paths.items()]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": {f"{s}/{k}": n for (s, k), n in sorted(self.examples.items())},
            "rationales": self.rationales,
            "pairs": self.pairs,
            "missing_pairs": self.missing_pairs,
            "projection_fallbacks": dict(self.projection_fallbacks),
            "dropped_by_mix": dict(self.dropped_by_mix),
            "paths": self.paths,
        }


def _unit(*parts: Any) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    return int(stable_id(*parts), 16) / 16**16


def split_of(pair_key: str, config: ExportConfig) -> str:
    if config.eval_fraction <= 0:
        return "train"
    return "test" if _unit("split", config.seed, pair_key) < config.eval_fraction else "train"


def build_examples(
    records: Iterable[Mapping[str, Any]],
    pairs: Mapping[str, PreferencePair],
    config: ExportConfig,
    summary: ExportSummary | None = None,
) -> list[Example]:
    """Examples from filter records (their ``kept_texts``) and the pairs they speak of (by pair key)."""
    summary = summary if summary is not None else ExportSummary()
    tpl: PromptTemplate = get_template(config.template)
    out: list[Example] = []
    for rec in records:
        texts = rec.get("kept_texts") or []
        if not texts:
            continue
        pair = pairs.get(rec["pair_key"])
        if pair is None:
            summary.missing_pairs += 1
            continue
        summary.pairs += 1
        split = split_of(rec["pair_key"], config)
        common = {
            "pair_key": rec["pair_key"],
            "label": rec.get("label"),
            "source_dataset": rec.get("source_dataset"),
            "split": split,
        }
        for idx, text in zip(rec.get("kept") or range(len(texts)), texts, strict=True):
            summary.rationales += 1
            critique = parse_pairwise(text, pair.task)
            target = render_pairwise(critique.model_copy(update={"template": None, "template_version": None}))
            out.append(Example("pairwise", tpl.pairwise(pair), target, side=None, rationale_index=idx, **common))
            if not config.pointwise:
                continue
            for side, sample in (("A", pair.sample_a()), ("B", pair.sample_b())):
                projected, fallback = project(critique, side)  # type: ignore[arg-type]
                for key in fallback:
                    summary.projection_fallbacks[key] += 1
                ex = Example(
                    "pointwise",
                    tpl.pointwise(sample),
                    render_critique(projected),
                    side=side,
                    rationale_index=idx,
                    **common,
                )
                ex.fallback = fallback
                out.append(ex)
    return _mix(out, config, summary)


def _mix(examples: list[Example], config: ExportConfig, summary: ExportSummary) -> list[Example]:
    f = config.pairwise_fraction
    if f is None:
        return examples
    pw = [e for e in examples if e.kind == "pairwise"]
    pt = [e for e in examples if e.kind == "pointwise"]
    if f == 0:
        keep_pw, keep_pt = 0, len(pt)
    elif f == 1:
        keep_pw, keep_pt = len(pw), 0
    elif len(pw) / max(1, len(pw) + len(pt)) > f:
        keep_pw, keep_pt = round(f * len(pt) / (1 - f)), len(pt)
    else:
        keep_pw, keep_pt = len(pw), round(len(pw) * (1 - f) / f)

    def choose(group: list[Example], n: int) -> set[int]:
        ranked = sorted(
            range(len(group)),
            key=lambda i: _unit(
                "mix", config.seed, group[i].pair_key, group[i].kind, group[i].side, group[i].rationale_index
            ),
        )
        return set(ranked[: min(n, len(group))])

    keep = {id(pw[i]) for i in choose(pw, keep_pw)} | {id(pt[i]) for i in choose(pt, keep_pt)}
    summary.dropped_by_mix["pairwise"] += len(pw) - min(keep_pw, len(pw))
    summary.dropped_by_mix["pointwise"] += len(pt) - min(keep_pt, len(pt))
    return [e for e in examples if id(e) in keep]


# ---------------------------------------------------------------------------- writers


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def write_hf(examples: list[Example], out: Path) -> Path:
    """A ``datasets.DatasetDict`` folder (train / test) with ``messages`` and ``images`` columns."""
    try:
        import datasets
    except ImportError:
        raise ImportError("exporting a datasets folder needs datasets: pip install 'rationalrewards[train]'") from None
    part = {"type": datasets.Value("string"), "text": datasets.Value("string")}
    features = datasets.Features(
        {
            "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.List(part)}),
            "images": datasets.List(datasets.Image()),
            "kind": datasets.Value("string"),
            "side": datasets.Value("string"),
            "pair_key": datasets.Value("string"),
            "label": datasets.Value("string"),
            "source_dataset": datasets.Value("string"),
            "rationale_index": datasets.Value("int32"),
        }
    )
    splits: dict[str, Any] = {}
    for split in ("train", "test"):
        rows = [e for e in examples if e.split == split]
        if split == "test" and not rows:
            continue
        splits[split] = datasets.Dataset.from_list([_hf_row(e) for e in rows], features=features)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    datasets.DatasetDict(splits).save_to_disk(str(tmp))
    _replace_dir(tmp, out)
    return out


def _hf_row(e: Example) -> dict[str, Any]:
    messages = [
        {"role": m["role"], "content": [{"type": p["type"], "text": p.get("text")} for p in m["content"]]}
        for m in e.messages()
    ]
    return {
        "messages": messages,
        "images": [load_image(im) for im in e.images()],
        "kind": e.kind,
        "side": e.side,
        "pair_key": e.pair_key,
        "label": e.label,
        "source_dataset": e.source_dataset,
        "rationale_index": e.rationale_index,
    }


def write_sharegpt(examples: list[Example], out: Path) -> Path:
    """LLaMA-Factory ShareGPT JSON files with image files beside them."""
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "images").mkdir(parents=True)
    info: dict[str, Any] = {}
    for split in ("train", "test"):
        rows = [_sharegpt_row(e, tmp) for e in examples if e.split == split]
        if split == "test" and not rows:
            continue
        (tmp / f"{split}.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        info[f"parrot_{split}"] = {
            "file_name": f"{split}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images", "system": "system"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        }
    (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    _replace_dir(tmp, out)
    return out


def _sharegpt_row(e: Example, folder: Path) -> dict[str, Any]:
    system = []
    messages = []
    images: list[str] = []
    for m in e.conversation().messages:
        if m.role == "system":
            system.append(m.text)
            continue
        text = []
        for p in m.parts:
            if isinstance(p, TextPart):
                text.append(p.text)
            elif isinstance(p, ImagePart):
                text.append(IMAGE_TOKEN)
                images.append(_write_image(p.image, folder))
        messages.append({"role": m.role, "content": "".join(text)})
    row: dict[str, Any] = {"messages": messages, "images": images}
    if system:
        row["system"] = "\n\n".join(system)
    row.update({"kind": e.kind, "side": e.side, "pair_key": e.pair_key, "label": e.label})
    return row


def _write_image(image: Any, folder: Path) -> str:
    data = to_png_bytes(image)
    name = f"images/{hashlib.sha256(data).hexdigest()[:20]}.png"
    path = folder / name
    if not path.exists():
        path.write_bytes(data)
    return name


def export_examples(
    records: Iterable[Mapping[str, Any]],
    pairs: Mapping[str, PreferencePair],
    out_dir: str | Path,
    config: ExportConfig | None = None,
) -> ExportSummary:
    """Build and write the examples of ``records``; returns counts and the written paths."""
    config = config or ExportConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    examples = build_examples(records, pairs, config, summary)
    for e in examples:
        summary.examples[(e.split, e.kind)] += 1
    if "hf" in config.formats:
        summary.paths["hf"] = str(write_hf(examples, out / "hf"))
    if "sharegpt" in config.formats:
        summary.paths["sharegpt"] = str(write_sharegpt(examples, out / "sharegpt"))
    (out / "export_summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    return summary
