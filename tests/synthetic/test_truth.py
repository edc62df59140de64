"""Ground truth: scores follow the injected defects, utility is calibrated, false findings are false."""

import random

import pytest

from rationalrewards.synthetic import (
    PAIR_VIVIDNESS,
    GeneratorConfig,
    World,
    check_finding,
    false_findings,
    judge,
    parse_request,
    vividness_bonus,
)
from rationalrewards.synthetic.sample import sample_edit_request, sample_source_scene, sample_t2i_request
from rationalrewards.synthetic.truth import DULL_BELOW, GARISH_ABOVE, KINDS, VIVID_PEAK

REQ = (
    "Draw three red circles, a blue square to the left of a yellow star and a sign that says 'OPEN', "
    "with no green shapes."
)
# failure mode -> the dimension whose score it must lower
DIMENSION = {
    "wrong_count": "text_faithfulness",
    "missing_object": "text_faithfulness",
    "wrong_color": "text_faithfulness",
    "ignored_negation": "text_faithfulness",
    "wrong_relation": "text_faithfulness",
    "extra_object": "text_faithfulness",
    "misspelt_text": "text_rendering",
    "missing_text": "text_rendering",
    "noise": "physical_quality",
    "blur": "physical_quality",
    "seam": "physical_quality",
    "cut": "physical_quality",
    "overlap": "physical_quality",
}


def test_perfect_generator_scores_four_everywhere(perfect_world):
    for i in range(100):
        req = sample_t2i_request(random.Random(i))
        t = judge(perfect_world.generate(req, seed=i, vividness=0.5, render=False).record)
        assert t.findings == []
        assert t.scores["text_rendering"] == (4.0 if req.text else None)
        assert all(v == 4.0 for k, v in t.scores.items() if k != "text_rendering")
        assert t.utility == pytest.approx(1 + vividness_bonus(0.5))


@pytest.mark.parametrize("mode", sorted(DIMENSION))
def test_scores_drop_in_the_dimension_of_the_injected_defect(mode):
    world = World(GeneratorConfig.perfect(**{mode: 1.0}))
    text = REQ if mode != "wrong_relation" else "A red circle to the left of a blue square."
    t = judge(world.generate(text, seed=3, vividness=0.5, render=False).record)
    dim = DIMENSION[mode]
    assert t.scores[dim] < 4.0
    assert all(v in (None, 4.0) for k, v in t.scores.items() if k != dim)
    assert all(f.dimension == dim for f in t.findings)
    assert t.utility < 1 + vividness_bonus(0.5)


def test_missing_object_costs_far_more_than_a_blemish(perfect_world):
    base = perfect_world.generate(REQ, seed=5, vividness=0.5, render=False).record
    ok = judge(base).utility
    missing = judge(World(GeneratorConfig.perfect(missing_object=1.0)).generate(REQ, 5, 0.5, render=False).record)
    noisy = judge(World(GeneratorConfig.perfect(noise=1.0)).generate(REQ, 5, 0.5, render=False).record)
    assert ok - missing.utility > 4 * (ok - noisy.utility) > 0


def test_vividness_utility_is_non_monotone_and_pairs_sample_where_more_is_better():
    grid = [i / 100 for i in range(101)]
    u = [vividness_bonus(v) for v in grid]
    peak = grid[u.index(max(u))]
    assert peak == pytest.approx(VIVID_PEAK, abs=0.01)
    assert all(a < b for a, b in zip(u[:60], u[1:61], strict=False))  # rising up to 0.6
    assert vividness_bonus(1.0) < vividness_bonus(0.2)  # overshoot is worse than dull
    lo, hi = PAIR_VIVIDNESS
    assert hi < VIVID_PEAK and vividness_bonus(hi) > vividness_bonus(lo)
    assert DULL_BELOW < GARISH_ABOVE


def test_oversaturation_and_dullness_are_physical_findings(perfect_world):
    for v, kind in ((0.1, "dull_colors"), (0.95, "oversaturated")):
        t = judge(perfect_world.generate(REQ, seed=1, vividness=v, render=False).record)
        assert [f.kind for f in t.findings] == [kind]
        assert t.scores["physical_quality"] < 4.0


def test_text_rendering_is_na_without_text_and_scored_with_it(perfect_world):
    t = judge(perfect_world.generate("Draw two blue stars.", seed=1, render=False).record)
    assert t.scores["text_rendering"] is None
    t = judge(perfect_world.generate("Draw two blue stars and a sign that says 'SALE'.", seed=1, render=False).record)
    assert t.scores["text_rendering"] == 4.0


def test_findings_describe_what_is_true():
    world = World(GeneratorConfig.perfect(misspelt_text=1.0))
    rec = world.generate(REQ, seed=2, render=False).record
    (f,) = judge(rec).findings
    assert f.kind == "misspelt_text" and rec.scene.sign.text in f.description and "OPEN" in f.description
    assert f.constraint == "text"


def test_judged_against_the_original_request():
    """An image made for a rewritten request is judged against what the user asked for."""
    world = World(GeneratorConfig.perfect())
    rec = world.generate("Draw four red circles.", seed=1, render=False).record
    assert judge(rec).findings == []
    (f,) = judge(rec, parse_request("Draw three red circles.")).findings
    assert (f.kind, f.expected, f.observed) == ("wrong_count", 3, 4)


def test_false_findings_are_false_and_true_ones_check_true(world):
    n_false = 0
    for i in range(80):
        rng = random.Random(i)
        if i % 2:
            src = sample_source_scene(rng)
            rec = world.generate(sample_edit_request(rng, src), seed=i, source=src, render=False).record
        else:
            rec = world.generate(sample_t2i_request(rng), seed=i, render=False).record
        for f in judge(rec).findings:
            assert check_finding(f, rec)
        fakes = false_findings(rec, n=4, rng=i)
        assert fakes
        for f in fakes:
            assert f.kind in KINDS and f.description
            assert not check_finding(f, rec)
        n_false += len(fakes)
    assert n_false > 150


def test_edit_scores_cover_image_faithfulness():
    world = World(GeneratorConfig.perfect(unrequested_change=1.0, preserve_decay=1.0))
    src = world.sample_source(3)
    req, text = world.sample_request(3, "edit", source=src.record.scene)
    t = world.truth(world.generate(text, seed=1, source=src.image).image, req)
    assert t.scores["image_faithfulness"] < 4.0
    assert t.scores["text_faithfulness"] == 4.0
