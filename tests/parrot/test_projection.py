"""Projection of a pairwise rationale onto two pointwise critiques."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rationalrewards.format import render_critique
from rationalrewards.parrot.projection import attribute, project, project_pair
from rationalrewards.parsing import parse_critique, parse_pairwise
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import PairwiseCritique
from rationalrewards.testing.parrot_teacher import rationale


def test_sentences_go_to_the_image_they_name():
    text = "Image A shows three red cubes, while Image B shows only two. Both have a white background."
    a, fell_a = attribute(text, "A")
    b, fell_b = attribute(text, "B")
    assert a == "The image shows three red cubes. Both have a white background."
    assert b == "The image shows only two. Both have a white background."
    assert not fell_a and not fell_b


def test_other_wordings_and_possessives():
    text = "The first image is cleaner. Image B's cube has a seam; Output A has none."
    assert attribute(text, "A")[0] == "The image is cleaner. The image has none."
    assert attribute(text, "B")[0] == "The image's cube has a seam."
    # "A" as an article is not a mention of image A
    assert attribute("A red cube sits on the left.", "B") == ("A red cube sits on the left.", False)


def test_leading_labels_are_dropped():
    text = "Image A: the sign reads 'EBACH'. Image B: the text is spelled right."
    assert attribute(text, "A")[0] == "The sign reads 'EBACH'."
    assert attribute(text, "B")[0] == "The text is spelled right."


def test_falls_back_to_the_whole_text_when_nothing_is_about_the_image():
    text = "Image B is blurry.\nImage B also has a seam."
    assert attribute(text, "A") == ("Image B is blurry. Image B also has a seam.", True)
    assert attribute(None, "A") == (None, False)


def test_projection_of_a_protocol_rationale():
    for task in ("t2i", "edit"):
        c = parse_pairwise(rationale(task, "B", "good"), task)
        a, fallback_a = project(c, "A")
        b, _ = project(c, "B")
        for d in dimensions_for(task):
            assert a.scores[d.key] == c.scores_a[d.key] and b.scores[d.key] == c.scores_b[d.key]
            if d.key in c.na:
                assert d.key in a.na and a.scores[d.key] is None
        assert "matches the request exactly" in b.justifications["text_faithfulness"]
        assert "matches the request exactly" not in a.justifications["text_faithfulness"]
        assert "Image" not in a.justifications["text_faithfulness"]
        assert a.refined_request == c.refined_request and a.request_analysis == c.request_analysis
        assert a.parse_status == "ok" and fallback_a == []


score = st.one_of(st.none(), st.floats(1.0, 4.0).map(lambda x: round(x, 2)))
sentence = st.sampled_from(
    [
        "Image A has the right count.",
        "Image B has a seam.",
        "Both look clean.",
        "The first image is sharp, while the second image is blurry.",
        "Output B's text is misspelt; Image A's text is exact.",
        "Nothing else differs",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["t2i", "edit"]),
    st.lists(st.tuples(score, score), min_size=4, max_size=4),
    st.lists(st.lists(sentence, min_size=1, max_size=4), min_size=4, max_size=4),
    st.one_of(st.none(), st.lists(sentence, min_size=1, max_size=3)),
)
def test_projection_round_trips_through_the_parser(task, score_pairs, texts, summary):
    dims = dimensions_for(task)
    sa, sb, just, na = {}, {}, {}, []
    for d, (a, b), t in zip(dims, score_pairs, texts, strict=False):
        if d.allows_na and a is None:
            sa[d.key] = sb[d.key] = None
            na.append(d.key)
        else:
            sa[d.key], sb[d.key] = a if a is not None else 2.0, b if b is not None else 3.0
        just[d.key] = " ".join(t)
    c = PairwiseCritique(
        task=task,
        scores_a=sa,
        scores_b=sb,
        justifications=just,
        na=na,
        summary=" ".join(summary) if summary else None,
        refinement_comments="Say how many.",
        refined_request="Three red cubes.",
        parse_status="ok",
    )
    for projected in project_pair(c):
        back = parse_critique(render_critique(projected), task)
        assert back.scores == projected.scores
        assert back.na == projected.na
        assert back.justifications == projected.justifications
        assert back.summary == projected.summary and back.refined_request == "Three red cubes."
        assert back.parse_status == "ok"
