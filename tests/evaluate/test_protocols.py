"""Protocols on stored records: every accuracy here is counted by hand in the comments."""

from __future__ import annotations

import pytest

from rationalrewards.evaluate.protocols import VIEWS, evaluate_protocol, get_protocol, judgements, score
from rationalrewards.schema import PairwiseCritique
from rationalrewards.testing.eval_bench import pointwise_record, record, stored_pairwise


def _acc(res: dict) -> tuple[int, int]:
    return res["accuracy"]["correct"], res["accuracy"]["total"]


def test_mmrb2_both_orders_every_judgement_counts() -> None:
    recs = [
        # the reverse critique judged the swapped pair: its "B" is the original A
        record("p1", "A", stored_pairwise("A"), stored_pairwise("B"), subset="t2i"),  # right, right
        record("p2", "B", stored_pairwise("A"), stored_pairwise("A"), subset="t2i"),  # wrong, right
        record("p3", "A", stored_pairwise("tie"), stored_pairwise(None, failed=True), subset="edit"),  # wrong, wrong
        record("p4", "B", stored_pairwise("B"), stored_pairwise("B"), subset="edit"),  # right, wrong
    ]
    res = evaluate_protocol(get_protocol("mmrb2"), judgements(recs, VIEWS["overall"]))
    assert _acc(res) == (4, 8)
    assert res["n_pairs"] == 4 and res["n_judgements"] == 8
    assert res["by"]["subset=t2i"]["correct"] == 3 and res["by"]["subset=t2i"]["total"] == 4
    assert res["by"]["subset=edit"]["correct"] == 1 and res["by"]["subset=edit"]["total"] == 4
    assert res["accuracy"]["n_clusters"] == 4  # the CI resamples pairs, not judgements
    assert res["predicted"] == {"A": 4, "B": 2, "tie": 1, "none": 1}


def test_genai_with_and_without_ties() -> None:
    verdicts = ["A", "A", "tie", "B", None, "B"]
    labels = ["A", "B", "tie", "tie", "A", "B"]
    recs = [
        record(f"p{i}", lab, stored_pairwise(v, failed=v is None))
        for i, (v, lab) in enumerate(zip(verdicts, labels, strict=True))
    ]
    recs.append(record("unlabelled", None, stored_pairwise("A")))
    j = judgements(recs, VIEWS["overall"])
    # 4-way: ok, x, ok, x, x (unparsed), ok -> 3/6; the unlabelled pair is left out
    assert _acc(evaluate_protocol(get_protocol("genai-4way"), j)) == (3, 6)
    # no ties: A/A ok, B/A x, A/None x, B/B ok -> 2/4
    assert _acc(evaluate_protocol(get_protocol("genai-noties"), j)) == (2, 4)


def _er(pid: str, group: str, k: int, label: str, verdict: str) -> dict:
    return record(pid, label, stored_pairwise(verdict), group=group, k=k)


def test_editreward_pairwise_per_k_and_group_accuracy() -> None:
    recs = [
        _er("g2_AB", "g2", 2, "A", "A"),
        _er("g3_AB", "g3", 3, "A", "A"),
        _er("g3_AC", "g3", 3, "B", "B"),
        _er("g3_BC", "g3", 3, "tie", "A"),  # the one miss: group g3 fails
        _er("h3_AB", "h3", 3, "B", "B"),
        _er("h3_AC", "h3", 3, "tie", "tie"),
        _er("h3_BC", "h3", 3, "A", "A"),
        *[_er(f"g4_{i}", "g4", 4, "A", "A") for i in range(5)],  # 5 of 6 comparisons: incomplete
    ]
    res = evaluate_protocol(get_protocol("editreward"), judgements(recs, VIEWS["overall"]))
    assert _acc(res) == (11, 12)
    assert (res["by"]["k=2"]["correct"], res["by"]["k=2"]["total"]) == (1, 1)
    assert (res["by"]["k=3"]["correct"], res["by"]["k=3"]["total"]) == (5, 6)
    assert (res["by"]["k=4"]["correct"], res["by"]["k=4"]["total"]) == (5, 5)
    group = res["group"]
    assert (group["accuracy"]["correct"], group["accuracy"]["total"]) == (2, 3)  # g2 ok, g3 x, h3 ok
    assert group["incomplete_groups"] == 1
    assert (group["by"]["k=3"]["correct"], group["by"]["k=3"]["total"]) == (1, 2)


def test_group_needs_both_orders_right() -> None:
    recs = [
        record("g_AB", "A", stored_pairwise("A"), stored_pairwise("B"), group="g", k=2),  # right both ways
        record("h_AB", "A", stored_pairwise("A"), stored_pairwise("A"), group="h", k=2),  # reverse wrong
    ]
    res = evaluate_protocol(get_protocol("editreward"), judgements(recs, VIEWS["overall"]))
    assert _acc(res) == (3, 4)
    assert (res["group"]["accuracy"]["correct"], res["group"]["accuracy"]["total"]) == (1, 2)


def test_pointwise_scores_with_ties_and_threshold() -> None:
    recs = [
        pointwise_record("p0", "A", 4, 1),  # diff +1: A ok
        pointwise_record("p1", "B", 2, 3),  # B ok
        pointwise_record("p2", "tie", 3, 3),  # tie ok
        pointwise_record("p3", "tie", 3, 2.5),  # diff +1/6: A, x at eps 0; tie from eps 1/6
        pointwise_record("p4", "A", 2, 2),  # tie, x
        pointwise_record("p5", "B", None, 2),  # a failed critique: no verdict, x
    ]
    out = score(recs, ["ties", "noties"], views=["overall"])
    ties = out["overall"]["protocols"]["ties"]
    assert _acc(ties) == (3, 6)
    assert _acc(out["overall"]["protocols"]["noties"]) == (2, 4)  # p0 ok, p1 ok, p4 x, p5 x
    tt = ties["tie_threshold"]
    grid, acc = tt["grid"], tt["accuracy"]
    i = min(range(len(grid)), key=lambda k: abs(grid[k] - 1 / 6))
    assert acc[i] == pytest.approx(4 / 6)  # p3 becomes a tie, nothing else changes until eps = 1/3
    assert tt["best"]["accuracy"] == pytest.approx(4 / 6)
    assert tt["best"]["eps"] == pytest.approx(1 / 6, abs=1e-6)


def _split(task: str = "t2i") -> dict:
    c = PairwiseCritique(
        task=task,
        scores_a={"text_faithfulness": 4.0, "physical_quality": 1.0},
        scores_b={"text_faithfulness": 2.0, "physical_quality": 3.0},
        preference="B",
        parse_status="ok",
    )
    return c.model_dump(mode="json")


def test_per_dimension_views_in_pairwise_mode() -> None:
    swapped = PairwiseCritique.model_validate(_split())
    rev = swapped.model_copy(update={"scores_a": swapped.scores_b, "scores_b": swapped.scores_a, "preference": "A"})
    recs = [record("p", "A", _split(), rev.model_dump(mode="json"))]
    out = score(recs, ["ties"])
    # overall reads the stated preference (B, wrong both ways); text faithfulness favours A; visual favours B
    assert _acc(out["overall"]["protocols"]["ties"]) == (0, 2)
    assert _acc(out["text"]["protocols"]["ties"]) == (2, 2)
    assert _acc(out["visual"]["protocols"]["ties"]) == (0, 2)
    j = judgements(recs, VIEWS["text"])
    assert j.diff.tolist() == pytest.approx([2 / 3, 2 / 3])  # normalized scale, reverse mapped back


def test_unknown_protocol_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("nope")
