"""Hindsight and filtering with the synthetic world's privileged teacher (``synthetic-teacher``) on world pairs."""

from __future__ import annotations

import datasets

from rationalrewards.data.preference import load_preference
from rationalrewards.parrot import consistency as cons
from rationalrewards.parrot.config import HindsightConfig, PipelineConfig
from rationalrewards.parrot.pipeline import run_pipeline
from rationalrewards.parsing import parse_pairwise
from rationalrewards.store import JsonlStore
from rationalrewards.synthetic.labeler import make_pairs, save_pairs
from rationalrewards.synthetic.world import default_world


def test_world_pairs_through_hindsight_filter_and_export(tmp_path):
    made = make_pairs(8, seed=11, task="both", world=default_world())  # registered where the teacher looks
    pairs = load_preference(save_pairs(made, tmp_path / "pairs.parquet"))
    cfg = PipelineConfig(hindsight=HindsightConfig(teacher="synthetic-teacher", samples=2, batch_size=4))
    cfg.export.formats = ("hf",)
    result = run_pipeline(pairs, tmp_path / "work", cfg, progress=False)

    hind = list(JsonlStore(tmp_path / "work" / "hindsight.jsonl"))
    assert len(hind) == 8 and all(r["error"] is None and r["teacher"] == "synthetic-teacher" for r in hind)
    # the teacher read our hindsight prompt as one (label stated), and its rationales follow the protocol
    assert all(s["parse_status"] == "ok" for r in hind for s in r["samples"])
    assert all(len(r["samples"]) == 2 for r in hind)

    filt = list(JsonlStore(tmp_path / "work" / "filter.jsonl"))
    verdicts = [v for r in filt for v in r["rationales"]]
    assert len(verdicts) == 16
    # every rationale that reached the teacher got a readable answer line back
    assert not any(v["reason"] in (cons.TEACHER_UNREADABLE, cons.TEACHER_ERROR) for v in verdicts)
    for rec in filt:
        for v in rec["rationales"]:
            if v["kept"]:
                assert v["prediction"] == rec["label"] and v["implied"] == rec["label"]
    report = result["filter"]["report"]
    assert report["rationales"]["n"] == 16 and report["by_source"]["pairs"]["n"] == 16
    kept = report["rationales"]["kept"]
    assert kept == sum(v["kept"] for v in verdicts) and kept > 0

    train = datasets.load_from_disk(str(tmp_path / "work" / "sft" / "hf"))["train"]
    assert len(train) == 3 * kept
    for row in train:
        if row["kind"] == "pairwise":
            target = row["messages"][-1]["content"][0]["text"]
            assert parse_pairwise(target, "edit" if len(row["images"]) == 3 else "t2i").preference == row["label"]
