"""Phase 2: filtering on a set whose hallucinated and inconsistent rationales are known."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from rationalrewards.format import render_pairwise
from rationalrewards.parrot import consistency as cons
from rationalrewards.parrot.config import ConsistencyConfig, HindsightConfig
from rationalrewards.parrot.hindsight import LABEL_STATEMENTS, generate_hindsight, hindsight_conversation
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import PairwiseCritique
from rationalrewards.testing.parrot_teacher import KEPT_SCENARIOS, ScriptedTeacher, make_pairs, rationale

EXPECTED_REASON = {
    "good": None,
    "flaky": None,
    "hallucinated": cons.SCORES,
    "inconsistent": cons.TEACHER_OTHER,
    "leaky": cons.LEAK,
    "garbage": cons.PARSE_FAILED,
}


def _hindsight(pairs, teacher, samples=1):
    records = generate_hindsight(pairs, teacher.backend(), HindsightConfig(samples=samples))
    for i, r in enumerate(records):
        r["id"] = f"h{i}"
    return list(zip(records, pairs, strict=True))


def _filter(items, teacher, **kw):
    return cons.filter_rationales(items, teacher.backend(), ConsistencyConfig(**kw))


def test_verdicts_follow_the_known_behaviours(known_set, teacher):
    pairs, _, items = known_set
    records = _filter(_hindsight(pairs, teacher), teacher)
    for rec, (label, scenarios) in zip(records, items, strict=True):
        verdict = rec["rationales"][0]
        assert verdict["reason"] == EXPECTED_REASON[scenarios[0]], (label, scenarios)
        assert verdict["kept"] == (scenarios[0] in KEPT_SCENARIOS)
        assert rec["kept_texts"] == ([] if not verdict["kept"] else [rec["kept_texts"][0]])
        if scenarios[0] == "inconsistent":
            assert verdict["prediction"] not in (None, label) and verdict["votes"] == [verdict["prediction"]]
    # only rationales that passed the cheap checks reach the teacher
    passed_cheap = sum(s[0] in ("good", "flaky", "inconsistent") for _, s in items)
    assert teacher.consistency_calls == passed_cheap


def test_retention_report(known_set, teacher):
    pairs, _, items = known_set
    report = cons.FilterReport.from_records(_filter(_hindsight(pairs, teacher), teacher))
    n_kept = sum(s[0] in KEPT_SCENARIOS for _, s in items)
    assert (report.rationales.n, report.rationales.kept) == (len(items), n_kept)
    assert report.pairs.kept == n_kept
    for label in ("A", "B", "tie"):
        mine = [s for lab, s in items if lab == label]
        assert report.by_label[label].n == len(mine)
        assert report.by_label[label].kept == sum(s[0] in KEPT_SCENARIOS for s in mine)
    by_source = Counter()
    for p, (_, s) in zip(pairs, items, strict=True):
        by_source[p.meta["source_dataset"]] += s[0] in KEPT_SCENARIOS
    assert {k: v.kept for k, v in report.by_source.items()} == dict(by_source)
    expected_reasons = Counter(EXPECTED_REASON[s[0]] for _, s in items if s[0] not in KEPT_SCENARIOS)
    assert report.reasons == expected_reasons
    # per dimension: the winner follows the scores, which contradict the label only when hallucinated
    for d_key in ("text_faithfulness", "physical_quality", "image_faithfulness"):
        judged = [(p, s[0]) for p, (_, s) in zip(pairs, items, strict=True) if s[0] != "garbage"]
        judged = [(p, s) for p, s in judged if any(d.key == d_key for d in dimensions_for(p.task))]
        agree = sum(s != "hallucinated" for _, s in judged)
        assert report.dim_agreement_all[d_key].n == len(judged)
        assert report.dim_agreement_all[d_key].kept == agree
        assert report.dim_agreement_kept[d_key].rate == 1.0
    assert "text_rendering" not in report.dim_agreement_all  # N/A everywhere in this set
    text = "\n".join(report.lines())
    assert f"({n_kept}/{len(items)})" in text and cons.SCORES in text
    assert report.to_dict()["rejected"][cons.LEAK] == 3


def test_checks_are_configurable(known_set, teacher):
    pairs, _, items = known_set
    hs = _hindsight(pairs, teacher)
    only_scores = _filter(hs, teacher, checks=("scores",))
    assert teacher.consistency_calls == 0
    kept = {s[0] for rec, (_, s) in zip(only_scores, items, strict=True) if rec["kept"]}
    assert kept == {"good", "flaky", "inconsistent", "leaky"}
    only_teacher = _filter(hs, teacher, checks=("teacher",))
    kept = {s[0] for rec, (_, s) in zip(only_teacher, items, strict=True) if rec["kept"]}
    # hallucinated scores go unseen when the teacher reads justifications only; the text still supports the label
    assert kept == {"good", "flaky", "hallucinated", "leaky"}
    nothing = _filter(hs, teacher, checks=())
    assert {s[0] for rec, (_, s) in zip(nothing, items, strict=True) if rec["kept"]} == set(EXPECTED_REASON) - {
        "garbage"
    }
    with pytest.raises(ValueError, match="unknown checks"):
        ConsistencyConfig(checks=("scores", "vibes"))


def test_votes_confidence_and_best_of_k():
    pairs, plan = make_pairs([("A", ["flaky", "good"]), ("B", ["good", "good"]), ("tie", ["flaky"])])
    teacher = ScriptedTeacher(plan)
    hs = _hindsight(pairs, teacher, samples=2)
    records = _filter(hs, teacher, votes=3)
    assert [v["confidence"] for v in records[0]["rationales"]] == [pytest.approx(2 / 3), 1.0]
    assert all(v["kept"] for rec in records for v in rec["rationales"])
    assert records[0]["rationales"][0]["votes"] == ["A", "A", "B"]
    best = _filter(hs, teacher, votes=3, best_of_k=True)
    assert best[0]["kept"] == [1] and best[0]["rationales"][0]["reason"] == cons.NOT_BEST
    assert best[1]["kept"] == [0]  # equal confidence: the first
    assert best[2]["kept"] == [0] and len(best[2]["rationales"]) == 2


def test_tie_margin():
    def crit(a: float, b: float) -> PairwiseCritique:
        return PairwiseCritique(
            scores_a={"text_faithfulness": a, "physical_quality": 3.0, "text_rendering": None},
            scores_b={"text_faithfulness": b, "physical_quality": 3.0, "text_rendering": None},
            na=["text_rendering"],
            parse_status="ok",
        )

    assert cons.implied_preference(crit(3.2, 3.0), tie_margin=0.1) == "tie"  # means differ by 0.1
    assert cons.implied_preference(crit(3.2, 3.0), tie_margin=0.05) == "A"
    assert cons.implied_preference(crit(3.0, 3.5), tie_margin=0.1) == "B"
    assert cons.implied_preference(crit(3.0, 3.0), tie_margin=0.0) == "tie"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Answer: A", "A"),
        ("reasoning...\nanswer: tie", "tie"),
        ("**Answer:** Image B", "B"),
        ("Answer: B\nsecond thoughts\nAnswer: A", "A"),
        ("Answer: A or B", None),
        ("The answer: A is better", None),
        ("A", None),
        ("", None),
    ],
)
def test_answer_line_is_strict(text, expected):
    assert cons.parse_answer(text) == expected


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def test_consistency_prompt_does_not_leak_the_label(known_set):
    pairs, _, _ = known_set
    for pair in (pairs[0], pairs[2]):  # a t2i pair and an edit pair
        crit = PairwiseCritique.model_validate(
            {"task": pair.task, **_parsed(rationale(pair.task.value, pair.label, "good"))}
        )
        view = cons.rationale_view(crit)
        prompts = {}
        for label in ("A", "B", "tie"):
            p = pair.model_copy(update={"label": label})
            conv = cons.consistency_conversation(p, view)
            prompts[label] = "\n".join(m.text for m in conv.messages)
        # the prompt is the same whatever the label
        assert prompts["A"] == prompts["B"] == prompts["tie"]
        prompt = prompts["A"].replace(view, "")
        anchored = "\n".join(m.text for m in hindsight_conversation(pair).messages)
        direct = "\n".join(m.text for m in hindsight_conversation(pair, anchored=False).messages)
        label_part = "\n".join(line for line in anchored.splitlines() if line not in direct)
        assert label_part.strip(), "the anchored prompt has a label paragraph"
        leaked = _ngrams(label_part) & _ngrams(prompt)
        assert not leaked, f"phrases of the label-anchored prompt in the consistency prompt: {sorted(leaked)[:5]}"
        for statement in LABEL_STATEMENTS.values():
            assert statement.lower() not in prompt.lower()
        assert "Overall Preference" not in view and "Score A" not in view and "Summary" not in view
        assert "Answer: A" in prompt


def _parsed(text: str) -> dict:
    from rationalrewards.parsing import parse_pairwise

    c = parse_pairwise(text)
    return c.model_dump(exclude={"task", "reward_a", "reward_b", "parse_ok"})


def test_views():
    text = rationale("t2i", "B", "good")
    from rationalrewards.parsing import parse_pairwise

    c = parse_pairwise(text)
    full = cons.rationale_view(c, "full")
    assert "## Score A: 2" in full and "Winner" in full and "Overall Preference" not in full
    assert "# Summary" in cons.rationale_view(c, "text") and "Score" not in cons.rationale_view(c, "text")
    assert render_pairwise(c) != full
