"""Diagnostics: position bias, parse failures, score histograms and the rationale-score heuristic."""

from __future__ import annotations

import pytest

from rationalrewards.evaluate.diagnostics import (
    implied_level,
    implied_winner,
    parse_stats,
    position_bias,
    rationale_agreement,
    score_histograms,
)
from rationalrewards.schema import Critique, PairwiseCritique
from rationalrewards.testing.eval_bench import pointwise_record, record, stored_pairwise


def test_position_bias_flip_rate_and_first_slot_rate() -> None:
    recs = [
        record("p1", "A", stored_pairwise("A"), stored_pairwise("B")),  # consistent
        record("p2", "A", stored_pairwise("A"), stored_pairwise("A")),  # flips: always the first slot
        record("p3", "B", stored_pairwise("A"), stored_pairwise("A")),  # flips
        record("p4", "B", stored_pairwise("tie"), stored_pairwise("tie")),  # consistent tie
        record("p5", "B", stored_pairwise("B"), stored_pairwise(None, failed=True)),  # one order unparsed
        record("p6", "A", stored_pairwise("A")),  # one order only
    ]
    pb = position_bias(recs)
    assert pb["pairs"] == 4 and pb["flips"] == 2 and pb["flip_rate"] == 0.5
    # stated A/B verdicts over records with both orders: A,B | A,A | A,A | B -> 5 of 7 name the first slot
    assert pb["decided"] == 7 and pb["first_position_rate"] == pytest.approx(5 / 7)
    assert position_bias([record("x", "A", stored_pairwise("A"))]) is None


def test_parse_stats_counts_failures_and_missing() -> None:
    partial = PairwiseCritique(parse_status="partial", missing=["physical_quality"], raw_text="x").model_dump()
    backend = PairwiseCritique(parse_status="failed", parse_errors=["backend: timeout"]).model_dump()
    garbled = PairwiseCritique(parse_status="failed", raw_text="blah").model_dump()
    recs = [record("a", "A", stored_pairwise("A"), partial), record("b", "B", backend, garbled)]
    st = parse_stats(recs)
    assert (st["critiques"], st["ok"], st["partial"], st["failed"]) == (4, 1, 1, 2)
    assert st["failure_rate"] == 0.5 and st["empty_or_backend_error"] == 1
    assert st["missing_by_dimension"] == {"physical_quality": 1}


def test_score_histograms_bin_every_side() -> None:
    recs = [record("a", "A", stored_pairwise("A", 4, 1)), pointwise_record("b", "B", 2.4, None)]
    h = score_histograms(recs)
    tf = h["text_faithfulness"]
    assert (tf["4"], tf["1"], tf["2.5"]) == (1, 1, 1)  # 2.4 lands on the nearest half point
    assert sum(tf.values()) == 3  # the failed pointwise critique is left out


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ("Image A renders the count correctly, while Image B misses one cube.", "A"),
        ("Output B is sharper and cleaner than output A.", "B"),
        ("Image A has visible artefacts; Image B has no visible artefacts.", "B"),
        ("A red cube sits left of a sphere in both images.", None),
        ("Image A's text is misspelt and Image B's text is garbled.", None),
    ],
)
def test_implied_winner(text: str, winner: str | None) -> None:
    assert implied_winner(text) == winner


def test_implied_level() -> None:
    assert implied_level("The image follows the request exactly and is clean.") == "high"
    assert implied_level("The word is misspelt and two cubes are missing.") == "low"
    assert implied_level("A red cube and a blue sphere.") is None


def _pair(just: str, sa: float, sb: float, winner: str | None = None, pref: str | None = None) -> dict:
    keys = ["text_faithfulness", "physical_quality"]
    return PairwiseCritique(
        scores_a=dict.fromkeys(keys, sa),
        scores_b=dict.fromkeys(keys, sb),
        justifications=dict.fromkeys(keys, just),
        winners=dict.fromkeys(keys, winner) if winner else {},
        preference=pref,
        parse_status="ok",
    ).model_dump(mode="json")


def test_rationale_agreement_counts() -> None:
    agree = "Image A is correct while Image B fails."
    recs = [
        record("p1", "A", _pair(agree, 4, 1, winner="A", pref="A")),  # text agrees x2, winners x2, pref ok
        record("p2", "A", _pair(agree, 1, 4, winner="A", pref="A")),  # text disagrees x2, winners x2 wrong, pref x
        record("p3", "A", _pair("Both images look alike.", 2, 3, pref="tie")),  # text implies nothing; pref x
        record("p4", "A", _pair(agree, 3, 3, pref="tie")),  # text takes a side but scores tie; pref ok
    ]
    ra = rationale_agreement(recs)
    assert ra["text_vs_scores"] == {"agree": 2, "n": 4, "rate": 0.5}
    assert ra["text_sided_scores_tied"] == 2
    assert ra["stated_winners_vs_scores"] == {"agree": 2, "n": 4, "rate": 0.5}
    assert ra["preference_vs_scores"]["agree"] == 2 and ra["preference_vs_scores"]["n"] == 4
    assert ra["by_dimension"]["text_faithfulness"] == {"agree": 1, "n": 2, "rate": 0.5}


def test_rationale_agreement_pointwise() -> None:
    good = Critique(
        scores={"text_faithfulness": 4.0},
        justifications={"text_faithfulness": "Every object is rendered correctly."},
        parse_status="ok",
    ).model_dump(mode="json")
    bad = Critique(
        scores={"text_faithfulness": 4.0},
        justifications={"text_faithfulness": "The cube is missing and the colour is wrong."},
        parse_status="ok",
    ).model_dump(mode="json")
    ra = rationale_agreement([{"id": "x", "label": "A", "mode": "pointwise", "a": good, "b": bad}])
    assert ra["text_vs_scores"] == {"agree": 1, "n": 2, "rate": 0.5}
