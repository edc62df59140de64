"""The output-format protocol: rendering follows the rubric, the skeleton carries every header, echoes score nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rationalrewards import format as fmt
from rationalrewards.parsing import parse_critique, parse_pairwise
from rationalrewards.rubric import BY_KEY, Task, dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique


def _full_critique(task: Task) -> Critique:
    keys = [d.key for d in dimensions_for(task)]
    return Critique(
        task=task,
        request_analysis="Analysis line one.\nLine two.",
        scores={k: 2.5 + 0.5 * i for i, k in enumerate(keys)},
        justifications={k: f"why {k}" for k in keys},
        summary="Short summary.",
        refinement_comments="Be explicit.",
        refined_request="An explicit request.",
    )


def test_render_matches_the_published_layout():
    # The layout the public checkpoints write, spelled out by hand with titles from the rubric.
    c = _full_critique(Task.T2I)
    tf, pq, tr = (BY_KEY[k].title for k in ("text_faithfulness", "physical_quality", "text_rendering"))
    expected = (
        "# User Request Analysis\nAnalysis line one.\nLine two.\n# Detailed Judgement\n"
        f"1. {tf}:\n## Justification: why text_faithfulness\n## Score: 2.5\n"
        f"2. {pq}:\n## Justification: why physical_quality\n## Score: 3\n"
        f"3. {tr}:\n## Justification: why text_rendering\n## Score: 3.5\n"
        "# Summary: Short summary.\n\n# User Request Refinement:\n"
        "## Refinement Comments: Be explicit.\n## Refined Request: An explicit request.\n"
    )
    assert fmt.render_critique(c) == expected


@pytest.mark.parametrize("task", list(Task))
def test_render_numbers_dimensions_from_the_rubric(task: Task):
    text = fmt.render_critique(_full_critique(task))
    dims = dimensions_for(task)
    for i, d in enumerate(dims, start=1):
        assert f"\n{i}. {d.title}:\n" in text
    edit_only = [d for d in BY_KEY.values() if not d.applies_to(Task.T2I)]
    assert edit_only, "the rubric has an edit-only dimension"
    for d in edit_only:
        assert (d.title in text) == (task is Task.EDIT)


def test_na_and_missing_scores():
    c = Critique(
        task="t2i",
        scores={"text_faithfulness": 3.0, "physical_quality": None, "text_rendering": None},
        justifications={"text_faithfulness": "ok", "physical_quality": "cut off"},
        na=["text_rendering"],
    )
    text = fmt.render_critique(c)
    assert "## Score: N/A" in text  # text rendering: N/A and no justification, still rendered
    assert text.count("## Score:") == 2  # the missing physical-quality score has no line
    back = parse_critique(text)
    assert back.missing == ["physical_quality"] and back.na == ["text_rendering"]
    assert back.parse_status == "partial"


def test_pairwise_render():
    c = PairwiseCritique(
        task="edit",
        scores_a={"text_faithfulness": 4.0, "image_faithfulness": 2.0, "physical_quality": 3.0, "text_rendering": None},
        scores_b={"text_faithfulness": 3.0, "image_faithfulness": 2.0, "physical_quality": 3.5, "text_rendering": None},
        winners={"text_faithfulness": "A", "image_faithfulness": "tie", "physical_quality": None},
        na=["text_rendering"],
        preference="B",
        summary="s",
    )
    text = fmt.render_pairwise(c)
    assert text.count("## Winner:") == 3  # physical quality has no winner line; text rendering says N/A
    assert "## Winner: Image A" in text and "## Winner: Tie" in text and "## Winner: N/A" in text
    assert text.rstrip().endswith("# Overall Preference: Image B")
    assert "Refine" not in text  # nothing to refine: the optional section is left out
    back = parse_pairwise(text, task="edit")
    assert back.winners["physical_quality"] == "B"  # derived from 3.0 < 3.5, and said so
    assert any("physical_quality" in e and "derived" in e for e in back.parse_errors)
    assert back.preference == "B"


@pytest.mark.parametrize("task", list(Task))
@pytest.mark.parametrize("pairwise", [False, True])
def test_skeleton_carries_every_header(task: Task, pairwise: bool):
    sk = fmt.skeleton(task, pairwise=pairwise)
    needed = [fmt.ANALYSIS, fmt.JUDGEMENT, fmt.JUSTIFICATION, fmt.SUMMARY]
    needed += [fmt.SCORE_A, fmt.SCORE_B, fmt.WINNER, fmt.OVERALL] if pairwise else [fmt.SCORE, fmt.REFINEMENT]
    needed += [] if pairwise else [fmt.COMMENTS, fmt.REFINED]
    for h in needed:
        assert h.line() in sk, h.label
    for i, d in enumerate(dimensions_for(task), start=1):
        assert fmt.dimension_line(i, d) in sk
    # N/A is offered exactly for the dimensions that allow it.
    blocks = sk.split("\n")
    n_na_lines = sum(1 for line in blocks if fmt.NA in line)
    n_na_dims = sum(1 for d in dimensions_for(task) if d.allows_na)
    assert n_na_lines == n_na_dims * (3 if pairwise else 1)


@pytest.mark.parametrize("task", list(Task))
def test_an_echoed_skeleton_scores_nothing(task: Task):
    # A model that copies the format instructions must not get a number out of the placeholders.
    c = parse_critique(fmt.skeleton(task), task=task)
    assert c.parse_status == "failed" and all(v is None for v in c.scores.values())
    p = parse_pairwise(fmt.skeleton(task, pairwise=True), task=task)
    assert p.parse_status == "failed" and p.preference is None
    assert all(w is None for w in p.winners.values())


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_format_score_round_trips(x: float):
    assert float(fmt.format_score(x)) == x


def test_headers_are_unique():
    keys = [h.key for h in fmt.HEADERS]
    labels = [h.label.lower() for h in fmt.HEADERS]
    assert len(set(keys)) == len(keys) and len(set(labels)) == len(labels)
