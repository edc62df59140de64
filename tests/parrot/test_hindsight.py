"""Phase 1: the label-anchored prompt, k rationales per pair, and what each record carries."""

from __future__ import annotations

import pytest

from rationalrewards.parrot.config import HindsightConfig
from rationalrewards.parrot.hindsight import (
    LABEL_STATEMENTS,
    generate_hindsight,
    hindsight_conversation,
    hindsight_id,
    load_hindsight_template,
)
from rationalrewards.rubric import DIMENSIONS, dimensions_for
from rationalrewards.templates import get_template
from rationalrewards.testing.parrot_teacher import ScriptedTeacher, make_pairs


def _text(conv) -> str:
    return "\n".join(m.text for m in conv.messages)


def test_prompt_states_the_label_and_derives_the_rubric(known_set):
    pairs, _, _ = known_set
    for pair in pairs[:6]:
        conv = hindsight_conversation(pair)
        text = _text(conv)
        assert LABEL_STATEMENTS[pair.label] in text
        for other, statement in LABEL_STATEMENTS.items():
            if other != pair.label:
                assert statement not in text
        applicable = dimensions_for(pair.task)
        for d in DIMENSIONS:
            assert (f"{d.title}:" in text) == (d in applicable)
            if d in applicable:
                assert d.levels[0] in text and d.levels[3] in text
        # the pairwise protocol of format.py plus the refinement section
        assert "## Score A:" in text and "# Overall Preference:" in text and "## Refined Request:" in text
        assert len(conv.images()) == (3 if pair.source is not None else 2)


def test_direct_prompt_is_the_same_prompt_without_the_label(known_set):
    pair = known_set[0][0]
    anchored = _text(hindsight_conversation(pair))
    direct = _text(hindsight_conversation(pair, anchored=False))
    assert not any(s in direct for s in LABEL_STATEMENTS.values())
    assert "raters" not in direct and "raters" in anchored
    # everything the direct prompt says, the anchored one says too (the label paragraph is the only addition)
    assert all(line in anchored for line in direct.splitlines())


def test_anchored_prompt_needs_a_label(known_set):
    pair = known_set[0][0].model_copy(update={"label": None})
    with pytest.raises(ValueError, match="label"):
        hindsight_conversation(pair)
    hindsight_conversation(pair, anchored=False)  # the baseline needs none


def test_k_rationales_per_pair_with_provenance():
    pairs, plan = make_pairs([("A", ["good", "hallucinated", "garbage"]), ("B", ["good"])], edit_every=2)
    teacher = ScriptedTeacher(plan)
    cfg = HindsightConfig(samples=3, temperature=0.9, max_tokens=321, seed=5, teacher="ignored")
    records = generate_hindsight(pairs, teacher.backend(), cfg, teacher="my-teacher")
    assert len(records) == 2
    first, second = records
    assert [s["parse_status"] for s in first["samples"]] == ["ok", "ok", "failed"]
    assert first["samples"][1]["scores_a"]["text_faithfulness"] < first["samples"][1]["scores_b"]["text_faithfulness"]
    assert first["samples"][0]["preference"] == "A" and second["samples"][0]["preference"] == "B"
    assert second["task"] == "edit" and "image_faithfulness" in second["samples"][0]["scores_a"]
    for rec in records:
        assert rec["teacher"] == "my-teacher"
        assert rec["template"] == "parrot-hindsight"
        assert rec["template_version"] == load_hindsight_template().version
        assert rec["sampling"] == {"n": 3, "temperature": 0.9, "max_tokens": 321, "top_p": 1.0, "seed": 5}
        assert rec["mode"] == "anchored" and rec["error"] is None
        assert rec["samples"][0]["text"].startswith("# User Request Analysis")


def test_a_failing_item_fails_alone():
    pairs, plan = make_pairs([("A", ["good"]), ("B", ["good"])])
    pairs[0] = pairs[0].model_copy(update={"label": None})
    records = generate_hindsight(pairs, ScriptedTeacher(plan).backend(), HindsightConfig())
    assert records[0]["error"].startswith("input:") and records[0]["samples"] == []
    assert records[1]["error"] is None and len(records[1]["samples"]) == 1


def test_id_depends_on_pair_and_settings(known_set):
    pair = known_set[0][0]
    tpl = load_hindsight_template()
    base = hindsight_id(pair, HindsightConfig(), "t", tpl)
    assert base == hindsight_id(pair, HindsightConfig(), "t", tpl)
    assert base != hindsight_id(pair, HindsightConfig(temperature=0.3), "t", tpl)
    assert base != hindsight_id(pair, HindsightConfig(), "other-teacher", tpl)
    assert base != hindsight_id(pair.swapped(), HindsightConfig(), "t", tpl)
    assert base != hindsight_id(pair, HindsightConfig(mode="direct"), "t", tpl)
    assert base != hindsight_id(pair, HindsightConfig(), "t", get_template("request-first"))
