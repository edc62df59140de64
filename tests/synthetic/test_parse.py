"""The request parser: round trip with the phrasings, explicitness levels, conflicts, robustness."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rationalrewards.synthetic import parse_request, parse_request_verbose, phrase_request
from rationalrewards.synthetic.request import Request
from rationalrewards.synthetic.sample import sample_edit_request, sample_source_scene, sample_t2i_request


def test_round_trip_t2i_and_edit():
    for i in range(600):
        rng = random.Random(i)
        if i % 2:
            req = sample_edit_request(rng, sample_source_scene(rng))
        else:
            req = sample_t2i_request(rng)
        text = phrase_request(req, rng)
        res = parse_request_verbose(text, req.task)
        assert res.request == req.canonical(), text
        assert res.unparsed == [], text


def test_canonical_json_round_trip():
    for i in range(100):
        rng = random.Random(i)
        req = sample_t2i_request(rng) if i % 2 else sample_edit_request(rng, sample_source_scene(rng))
        assert Request.from_json(req.to_json()) == req.canonical()
        assert Request.from_json(req.to_json()).to_json() == req.to_json()


def _levels(text, task="t2i"):
    return parse_request(text, task).explicitness()


def test_count_explicitness_levels():
    assert _levels("Draw three red circles.")["count:red circle"] == 1
    assert _levels("Draw exactly three red circles.")["count:red circle"] == 2
    assert _levels("Draw three red circles. That is 3 red circles in total.")["count:red circle"] == 2
    assert _levels("Draw exactly three red circles. That is 3 red circles in total.")["count:red circle"] == 3


def test_wrong_restatement_is_conflicted_not_more_explicit():
    req = parse_request("Draw exactly three red circles. That is 4 red circles in total.")
    (g,) = req.groups
    assert g.count == 3 and g.count_alt == (4,) and g.count_e == 1
    c = {c.key: c for c in req.constraints()}["count:red circle"]
    assert c.conflicted and c.explicitness == 1
    t = parse_request("A sign that says exactly 'OPEN'. It is spelled O-P-N-E.").text
    assert t.text == "OPEN" and t.alt == ("OPNE",) and t.e == 1
    r = parse_request("A red circle to the left of a blue square. The blue square is to the left of the red circle.")
    assert r.relations[0].conflicted and r.relations[0].e == 1


def test_restating_other_content_does_not_raise_level():
    # "exactly" attached to a different group, or a restatement of a shape not asked for, changes nothing
    lv = _levels("Draw three red circles and exactly two blue squares. That is 2 green stars in total.")
    assert lv["count:red circle"] == 1
    assert lv["count:blue square"] == 2


def test_negation_text_relation_clean_levels():
    assert _levels("Draw a red circle, with no green shapes.")["negation:green *"] == 1
    assert _levels("Draw a red circle, with absolutely no green shapes.")["negation:green *"] == 2
    lv = _levels("Draw a red circle, with absolutely no green shapes. Make sure there are no green shapes.")
    assert lv["negation:green *"] == 3
    assert _levels("A sign that says 'OPEN'.")["text"] == 1
    assert _levels("A sign that says 'OPEN'. The word is spelled O-P-E-N.")["text"] == 2
    assert _levels("A red circle directly above a blue star.")["relation:red circle|above|blue star"] == 2
    lv = _levels("A red circle above a blue star. The image should be clean, with no blur.")
    assert lv["clean:blur"] == 3 and lv["clean:noise"] == 1
    assert "clean:noise" not in _levels("A red circle above a blue star.")


def test_negation_parsed_targets():
    req = parse_request("Draw two stars, without any circles and no red shapes.")
    assert {n.key for n in req.negations} == {"* circle", "red *"}
    assert req.groups[0].color is None and req.groups[0].count == 2


def test_edit_parse_ops_and_preserve():
    req = parse_request(
        "Make the red circle completely blue. Keep the green star and everything else unchanged.", "edit"
    )
    assert req.edit.op == "recolor" and req.edit.color == "blue" and req.edit.e == 2
    assert req.preserve.generic and req.preserve.named == ("green star",)
    assert req.preserve.level(["green star"]) == 3 and req.preserve.level(["sign"]) == 1
    assert parse_request("Remove the stars.", "edit").edit.plural
    mv = parse_request("Move the red circle to the top left corner.", "edit").edit
    assert (mv.op, mv.region) == ("move", "top left corner")
    tx = parse_request("Change the sign to say 'SALE'.", "edit").edit
    assert (tx.op, tx.text) == ("text", "SALE")
    assert parse_request("Do something nice.", "edit").edit.op == "none"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parser_never_raises(text):
    for task in ("t2i", "edit"):
        res = parse_request_verbose(text, task)
        assert res.request.task == task


def test_with_levels_then_phrase_carries_the_levels():
    """Raising a constraint's level and phrasing it gives text the parser reads at that level (how refinements work)."""
    for i in range(200):
        rng = random.Random(i)
        req = sample_t2i_request(rng)
        keys = [c.key for c in req.constraints() if c.kind in ("count", "negation", "relation", "text", "background")]
        if not keys:
            continue
        raised = req.with_levels({k: 3 for k in keys} | {"clean:blur": 2})
        back = parse_request(phrase_request(raised, rng))
        assert back == raised.canonical()
        lv = back.explicitness()
        assert all(lv[k] == 3 for k in keys) and lv["clean:blur"] >= 2
