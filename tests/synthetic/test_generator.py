"""The imperfect generator: determinism, failure rates, explicitness, edits, vividness."""

import random

import numpy as np
import pytest

from rationalrewards.images import to_png_bytes
from rationalrewards.synthetic import GeneratorConfig, World, judge, parse_request
from rationalrewards.synthetic.sample import sample_edit_request, sample_source_scene, sample_t2i_request

# which findings each failure decision must produce
SHOWS = {
    "wrong_count": {"wrong_count"},
    "missing_object": {"missing_object"},
    "extra_object": {"extra_object"},
    "wrong_color": {"wrong_color"},
    "ignored_negation": {"negation_violated"},
    "wrong_relation": {"wrong_relation"},
    "misspelt_text": {"misspelt_text"},
    "missing_text": {"missing_text"},
    "wrong_background": {"wrong_background"},
    "noise": {"noise"},
    "blur": {"blur"},
    "seam": {"seam"},
    "cut": {"cut"},
    "overlap": {"overlap"},
    "edit_not_applied": {"edit_not_applied"},
    "edit_wrong": {"edit_wrong", "misspelt_text"},
    "unrequested_change": {
        "object_changed", "object_moved", "object_lost", "object_resized", "sign_changed", "background_changed",
    },
}  # fmt: skip
EDIT_MODES = {"edit_not_applied", "edit_wrong", "unrequested_change"}


def _draw(world, i, edit):
    rng = random.Random(i)
    if edit:
        src = sample_source_scene(rng)
        req = sample_edit_request(rng, src)
        return world.generate(req, seed=i, vividness=0.5, source=src, render=False)
    return world.generate(sample_t2i_request(rng), seed=i, vividness=0.5, render=False)


def test_same_seed_same_image_and_record(world):
    req, text = world.sample_request(3)
    a, b = world.generate(text, seed=11), World().generate(text, seed=11)
    assert to_png_bytes(a.image) == to_png_bytes(b.image)
    assert a.record.to_dict() == b.record.to_dict()
    c = world.generate(text, seed=12)
    assert to_png_bytes(c.image) != to_png_bytes(a.image)
    src = world.sample_source(5)
    req, text = world.sample_request(5, "edit", source=src.record.scene)
    e1 = world.generate(text, seed=1, source=src.image)
    e2 = World().generate(text, seed=1, source=src.record)
    assert to_png_bytes(e1.image) == to_png_bytes(e2.image)


def test_text_and_structure_give_the_same_image(world):
    req, text = world.sample_request(7)
    a = world.generate(text, seed=2)
    b = world.generate(parse_request(text), seed=2)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


@pytest.mark.parametrize("mode", sorted(SHOWS))
def test_failure_mode_rate_and_visibility(mode, within_binomial):
    """Each failure fires at its configured rate and shows up in the truth exactly when it fires."""
    world = World(GeneratorConfig.perfect(**{mode: 0.3}))
    fired, rates, mismatches = 0, [], 0
    for i in range(300):
        gen = _draw(world, i, mode in EDIT_MODES)
        ds = [d for d in gen.record.decisions if d.kind == mode]
        # misspelling is per letter: 1 - (1 - 0.3) ** len(word) for a whole word
        assert all(d.rate <= (0.3 if mode != "misspelt_text" else 1 - 0.7**8) + 1e-9 for d in ds)
        fired += sum(d.fired for d in ds)
        rates += [d.rate for d in ds]
        kinds = {f.kind for f in judge(gen.record).findings}
        expected = SHOWS[mode] if any(d.fired for d in ds) else set()
        if kinds - expected or (expected and not kinds & expected):
            mismatches += 1
    assert len(rates) >= 60, "too few chances for this failure in the sampled requests"
    assert within_binomial(fired, rates)
    assert mismatches == 0


def test_misspelling_more_likely_for_longer_words():
    world = World(GeneratorConfig.perfect(misspelt_text=0.06))
    rate = {}
    for word in ("BAR", "LIBRARY"):
        text = f"A red circle and a sign that says '{word}'."
        rate[word] = sum(world.generate(text, s, render=False).record.fired("misspelt_text") != [] for s in range(400))
    assert rate["LIBRARY"] > rate["BAR"] + 30


PLAIN = (
    "Draw three red circles, a blue square to the left of a yellow star and a sign that says 'MARKET', "
    "with no green shapes."
)
EXPLICIT = (
    "Draw exactly three red circles, a blue square directly to the left of a yellow star and a sign that says exactly "
    "'MARKET', with absolutely no green shapes. That is 3 red circles in total. The yellow star is to the right of the "
    "blue square. Make sure there are no green shapes. The word is spelled M-A-R-K-E-T. The image should be clean, "
    "with no noise blotches."
)
WRONG = (
    "Draw exactly three red circles, a blue square directly to the left of a yellow star and a sign that says exactly "
    "'MARKET', with no green shapes. That is 4 red circles in total. "
    "The yellow star is to the left of the blue square. "
    "The word is spelled M-A-R-E-K-T."
)
VAGUE = PLAIN + " Make sure every count is right, the relation is correct and the word is spelled correctly."
# finding kinds that belong to each constraint
GROUPS = {
    "count": {"wrong_count", "missing_object"},
    "negation": {"negation_violated"},
    "relation": {"wrong_relation"},
    "text": {"misspelt_text", "missing_text"},
    "noise": {"noise"},
}


def _rates(world, text, n=400):
    """Share of images showing each kind of defect, judged against the plain request (the user's intent)."""
    ref = parse_request(PLAIN)
    out = dict.fromkeys(GROUPS, 0)
    for s in range(n):
        findings = judge(world.generate(text, 500 + s, render=False).record, ref).findings
        for g, kinds in GROUPS.items():
            # the explicit request restates the red circles' count only
            if any(f.kind in kinds and (g != "count" or f.subject == "red circle") for f in findings):
                out[g] += 1
    return {g: v / n for g, v in out.items()}


def test_explicit_request_lowers_matching_failures_and_wrong_or_vague_ones_do_not():
    world = World()
    plain, explicit, wrong, vague = (_rates(world, t) for t in (PLAIN, EXPLICIT, WRONG, VAGUE))
    for g in GROUPS:
        assert explicit[g] < plain[g] * 0.75, (g, plain[g], explicit[g])
    # restating wrongly is no better than saying it once (it is worse: the generator may follow the wrong value)
    for g in ("count", "relation", "text"):
        assert wrong[g] >= plain[g] - 0.03, (g, plain[g], wrong[g])
    # words about correctness that carry no constraint change nothing
    assert vague == plain


def test_explicitness_is_paired_across_phrasings():
    """With the same seed, a more explicit request fails a subset of the draws the plain one fails."""
    world = World()
    for s in range(200):
        p = {(d.kind, d.key) for d in world.generate(PLAIN, s, render=False).record.fired()}
        e = {(d.kind, d.key) for d in world.generate(EXPLICIT, s, render=False).record.fired()}
        assert e <= p


def test_edit_keeps_everything_else_without_unrequested_changes(perfect_world):
    for i in range(150):
        rng = random.Random(i)
        src = sample_source_scene(rng)
        req = sample_edit_request(rng, src)
        gen = perfect_world.generate(req, seed=i, source=src, render=False)
        truth = judge(gen.record)
        assert truth.findings == [], (req.edit, [f.description for f in truth.findings])
        assert truth.scores["image_faithfulness"] == 4.0
        out = gen.record.scene.by_id()
        ed = req.edit
        for o in src.objects:
            if ed.target is not None and ed.target.matches(o.shape, o.color):
                continue
            assert out[o.id] == o
        if ed.op != "background":
            assert gen.record.scene.background == src.background
        if ed.op != "text":
            assert gen.record.scene.sign == src.sign


def test_unrequested_changes_touch_only_kept_elements():
    world = World(GeneratorConfig.perfect(unrequested_change=1.0, preserve_decay=1.0))
    for i in range(60):
        rng = random.Random(i)
        src = sample_source_scene(rng)
        req = sample_edit_request(rng, src)
        truth = judge(world.generate(req, seed=i, source=src, render=False).record)
        assert truth.findings
        assert {f.dimension for f in truth.findings} <= {"image_faithfulness", "physical_quality"}
        assert truth.scores["text_faithfulness"] == 4.0


def test_preserve_wording_lowers_unrequested_changes():
    src_world = World()
    src = src_world.sample_source(1).record.scene
    obj = src.objects[0]
    other = src.objects[-1]
    world = World(GeneratorConfig.perfect(unrequested_change=0.5))
    base = f"Make the background {'mint' if src.background != 'mint' else 'cream'}."
    named = base + f" Keep the {obj.color} {obj.shape} unchanged."
    wrong_named = base + " Keep the pink hexagon unchanged."

    def rate(text):
        return (
            sum(
                any(
                    d.key == f"object:{obj.id}"
                    for d in world.generate(text, s, source=src, render=False).record.fired()
                )
                for s in range(300)
            )
            / 300
        )

    assert rate(named) < rate(base) * 0.6
    assert rate(wrong_named) == rate(base)
    assert other.id != obj.id or len(src.objects) == 1


def test_vividness_controls_saturation(world):
    req, text = world.sample_request(0)
    sats = []
    for v in (0.1, 0.5, 0.9):
        img = world.generate(text, seed=4, vividness=v).image.convert("HSV")
        s = np.asarray(img)[..., 1].astype(float)
        sats.append(s[s > 40].mean())
    assert sats[0] < sats[1] < sats[2]
    with pytest.raises(ValueError):
        world.generate(text, seed=4, vividness=1.5)


def test_bad_inputs_raise(world):
    with pytest.raises(ValueError):
        world.generate("Remove the red circle.", seed=1, task="edit")  # no source
    with pytest.raises(ValueError):
        GeneratorConfig(wrong_count=1.5)
    with pytest.raises(ValueError):
        world.generate("Remove the circle.", seed=1, source=b"not an image")


def test_edit_record_of_an_edit_that_changed_nothing():
    world = World(GeneratorConfig.perfect(edit_not_applied=1.0))
    src = world.sample_source(2)
    req, text = world.sample_request(2, "edit", source=src.record.scene)
    out = world.generate(text, 1, vividness=src.record.vividness, source=src.image)
    assert np.array_equal(np.asarray(out.image), np.asarray(src.image))
    assert world.lookup(out.image).kind == "source"  # same pixels: the first record registered
    rec = world.edit_record(out.image, src.image, text)
    assert rec.kind == "generation" and rec.request == req
    assert [f.kind for f in world.truth(rec).findings] == ["edit_not_applied"]
    # a fresh world that only knows the source still builds the unchanged-edit record
    fresh = World()
    fresh.registry.add(src.record)
    assert [f.kind for f in fresh.truth(fresh.edit_record(out.image, src.image, text)).findings] == ["edit_not_applied"]
