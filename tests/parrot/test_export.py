"""Export: datasets folder and ShareGPT JSON whose prompts are the reward model's inference prompts."""

from __future__ import annotations

import json
from collections import defaultdict

import datasets
import pytest
from PIL import Image

from rationalrewards.parrot.config import ConsistencyConfig, ExportConfig, HindsightConfig
from rationalrewards.parrot.consistency import filter_rationales
from rationalrewards.parrot.export import build_examples, export_examples
from rationalrewards.parrot.hindsight import generate_hindsight
from rationalrewards.parsing import parse_critique, parse_pairwise
from rationalrewards.templates import get_template
from rationalrewards.testing.parrot_teacher import KEPT_SCENARIOS, ScriptedTeacher, make_pairs


@pytest.fixture
def kept():
    """Filter records of 12 pairs, 8 of which keep their rationale."""
    items = [(label, [s]) for s in ("good", "flaky", "hallucinated", "good") for label in ("A", "B", "tie")]
    pairs, plan = make_pairs(items)
    teacher = ScriptedTeacher(plan)
    hs = generate_hindsight(pairs, teacher.backend(), HindsightConfig())
    for i, r in enumerate(hs):
        r["id"] = f"h{i}"
    records = filter_rationales(list(zip(hs, pairs, strict=True)), teacher.backend(), ConsistencyConfig())
    n_kept = sum(s[0] in KEPT_SCENARIOS for _, s in items)
    return records, {p.key(): p for p in pairs}, n_kept


def _strip(messages):
    """Datasets store every part with both keys; the template's to_hf() has only the ones it uses."""
    return [
        {"role": m["role"], "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
        for m in messages
    ]


def test_hf_export_matches_the_inference_template(kept, tmp_path):
    records, pairs, n_kept = kept
    summary = export_examples(records, pairs, tmp_path, ExportConfig(formats=("hf",)))
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert list(ds) == ["train"]
    train = ds["train"]
    assert len(train) == 3 * n_kept
    assert summary.examples[("train", "pairwise")] == n_kept and summary.examples[("train", "pointwise")] == 2 * n_kept
    tpl = get_template("request-first")
    for row in train:
        pair = pairs[row["pair_key"]]
        msgs = _strip(row["messages"])
        if row["kind"] == "pairwise":
            expected = tpl.pairwise(pair)
            assert parse_pairwise(msgs[-1]["content"][0]["text"], pair.task).preference == pair.label
        else:
            expected = tpl.pointwise(pair.sample_a() if row["side"] == "A" else pair.sample_b())
            back = parse_critique(msgs[-1]["content"][0]["text"], pair.task)
            assert back.parse_status == "ok"
        assert msgs[:-1] == expected.to_hf()
        assert msgs[-1]["role"] == "assistant"
        assert len(row["images"]) == len(expected.images())
        assert all(isinstance(im, Image.Image) for im in row["images"])


def test_training_prompt_is_the_backends_inference_prompt(kept, tmp_path, tiny_backend):
    from trl.data_utils import prepare_multimodal_messages

    records, pairs, _ = kept
    export_examples(records, pairs, tmp_path, ExportConfig(formats=("hf",)))
    train = datasets.load_from_disk(str(tmp_path / "hf"))["train"]
    tpl = get_template("request-first")
    processor = tiny_backend.processor
    seen = set()
    for row in train:
        if row["kind"] in seen:
            continue
        seen.add(row["kind"])
        pair = pairs[row["pair_key"]]
        conv = tpl.pairwise(pair) if row["kind"] == "pairwise" else tpl.pointwise(pair.sample_a())
        if row["kind"] == "pointwise" and row["side"] == "B":
            conv = tpl.pointwise(pair.sample_b())
        at_inference = tiny_backend._prepare(0, conv).text
        messages = prepare_multimodal_messages(row["messages"][:-1], images=row["images"])
        in_training = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert in_training == at_inference
    assert seen == {"pairwise", "pointwise"}


def test_mix_ratio_and_held_out_split(kept):
    records, pairs, n_kept = kept
    examples = build_examples(records, pairs, ExportConfig(pairwise_fraction=0.5))
    kinds = [e.kind for e in examples]
    assert kinds.count("pairwise") == n_kept and kinds.count("pointwise") == n_kept
    only_pairwise = build_examples(records, pairs, ExportConfig(pairwise_fraction=1.0))
    assert {e.kind for e in only_pairwise} == {"pairwise"}
    assert len(build_examples(records, pairs, ExportConfig(pointwise=False))) == n_kept
    third = build_examples(records, pairs, ExportConfig(pairwise_fraction=0.25))
    assert [e.kind for e in third].count("pairwise") == round(0.25 * 2 * n_kept / 0.75)

    split = build_examples(records, pairs, ExportConfig(eval_fraction=0.5, seed=3))
    by_pair = defaultdict(set)
    for e in split:
        by_pair[e.pair_key].add(e.split)
    assert all(len(s) == 1 for s in by_pair.values())  # a pair never straddles the split
    assert {s for v in by_pair.values() for s in v} == {"train", "test"}
    again = build_examples(records, pairs, ExportConfig(eval_fraction=0.5, seed=3))
    assert [(e.pair_key, e.split) for e in again] == [(e.pair_key, e.split) for e in split]
    with pytest.raises(ValueError):
        ExportConfig(pairwise_fraction=1.5)


def test_sharegpt_export(kept, tmp_path):
    records, pairs, n_kept = kept
    export_examples(records, pairs, tmp_path, ExportConfig(formats=("sharegpt",), eval_fraction=0.3))
    folder = tmp_path / "sharegpt"
    info = json.loads((folder / "dataset_info.json").read_text())
    rows = []
    for entry in info.values():
        assert entry["formatting"] == "sharegpt"
        rows += json.loads((folder / entry["file_name"]).read_text())
    assert len(rows) == 3 * n_kept
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["messages"][0]["content"].count("<image>") == len(row["images"])
        assert row["system"].startswith("You are a meticulous judge")
        for path in row["images"]:
            Image.open(folder / path).verify()
    assert not (tmp_path / "hf").exists()
