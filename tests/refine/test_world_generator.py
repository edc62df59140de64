"""The synthetic world as a refine generator: determinism, registration, seeds, edits and the spec."""

from __future__ import annotations

import pytest

from rationalrewards.images import image_hash, load_image
from rationalrewards.refine.generators import GeneratorError, load_generator
from rationalrewards.refine.generators.world import WorldGenerator, content_key
from rationalrewards.rubric import dimensions_for
from rationalrewards.synthetic import GeneratorConfig, World, make_bench, parse_request


def _bench(world: World, n: int = 12, seed: int = 5):
    items = make_bench(n, seed=seed, task="both", world=world)
    requests = [it.request for it in items]
    sources = [load_image(it.source) if it.source is not None else None for it in items]
    return items, requests, sources


def test_same_seed_same_images_new_seed_new_images():
    w1, w2 = World(), World()
    _, requests, sources = _bench(w1)
    _, _, sources2 = _bench(w2)  # the same bench registered in a second, independent world
    g1, g2 = WorldGenerator(w1), WorldGenerator(w2)
    seeds = list(range(len(requests)))
    a = [image_hash(im) for im in g1.generate(requests, seeds, sources)]
    b = [image_hash(im) for im in g2.generate(requests, seeds, sources2)]
    assert a == b
    c = [image_hash(im) for im in g1.generate(requests, [s + 1 for s in seeds], sources)]
    assert a != c
    offset = WorldGenerator(w1, seed=1)  # the seed option shifts every seed
    assert [image_hash(im) for im in offset.generate(requests, seeds, sources)] == c
    assert g1.images_made == 2 * len(requests)


def test_every_image_is_registered_and_judged_against_the_original():
    world = World()
    items, requests, sources = _bench(world)
    gen = WorldGenerator(world)
    images = gen.generate(requests, [3] * len(requests), sources)
    for it, text, img in zip(items, requests, images, strict=True):
        rec = world.lookup(img)
        assert rec is not None
        assert gen.record_of(image_hash(img)).task == it.task
        truth = gen.truth_of(img, text)
        assert truth.task == it.task
        assert set(truth.scores) == {d.key for d in dimensions_for(it.task)}
        assert truth.utility == pytest.approx(world.truth(gen.record_of(img), text).utility)
    foreign = World().generate("Draw a red circle.", seed=1).image
    with pytest.raises(KeyError):
        gen.truth_of(foreign, "Draw a red circle.")


def test_truth_is_against_the_request_given_not_the_one_followed():
    world = World(GeneratorConfig.perfect())
    gen = WorldGenerator(world)
    img = gen.generate(["Draw two red circles."], [0])[0]
    assert gen.truth_of(img, "Draw two red circles.").findings == []
    wrong = gen.truth_of(img, "Draw three red circles.")
    assert {f.kind for f in wrong.findings} == {"wrong_count"}


def test_items_draw_independently_but_a_restatement_keeps_its_stream():
    world = World()
    _, requests, _ = _bench(world, n=40, seed=9)
    t2i = [parse_request(r, "t2i") for r in requests[::2]]
    mixed, raw = WorldGenerator(world), WorldGenerator(world, mix_seeds=False)
    assert len({mixed.world_seed(r, 0) for r in t2i}) == len({content_key(r) for r in t2i}) > 1
    assert {raw.world_seed(r, 0) for r in t2i} == {0}

    # with raw seeds every item draws the same artefact dice; mixed seeds give each item its own
    def noise_fired(gen):
        out = []
        for text in requests[::2]:
            rec = gen.record_of(gen.generate([text], [0])[0])
            out.append(any(d.fired for d in rec.decisions if d.kind == "noise"))
        return out

    assert len(set(noise_fired(raw))) == 1
    plain = parse_request("Draw two red circles and no blue shapes.", "t2i")
    louder = parse_request(
        "Draw exactly two red circles and absolutely no blue shapes. There are 2 red circles in total.", "t2i"
    )
    assert plain.explicitness() != louder.explicitness()
    assert mixed.world_seed(plain, 7) == mixed.world_seed(louder, 7)


def test_edits_keep_the_source_where_the_world_says():
    world = World()
    items, requests, sources = _bench(world, n=30, seed=2)
    gen = WorldGenerator(world)
    edits = [(r, s) for it, r, s in zip(items, requests, sources, strict=True) if it.task == "edit"]
    images = gen.generate([r for r, _ in edits], list(range(len(edits))), [s for _, s in edits])
    checked = 0
    for (_, src), img in zip(edits, images, strict=True):
        rec = gen.record_of(img)
        src_rec = world.lookup(src)
        assert rec.task == "edit" and rec.source == src_rec.scene
        op = rec.request.edit.op
        targets = {o.id for o in src_rec.scene.objects if rec.request.edit.target is not None
                   and rec.request.edit.target.matches(o.shape, o.color)}  # fmt: skip
        disturbed = {d.key for d in rec.decisions if d.kind == "unrequested_change" and d.fired}
        now = rec.scene.by_id()
        for o in src_rec.scene.objects:
            if (o.id in targets and op in ("recolor", "remove", "move")) or f"object:{o.id}" in disturbed:
                continue
            assert now.get(o.id) == o  # kept exactly where the world did not disturb it
            checked += 1
        if "background" not in disturbed and op != "background":
            assert rec.scene.background == src_rec.scene.background
    assert checked > 10


def test_an_edit_that_changes_nothing_is_judged_as_an_edit():
    world = World(GeneratorConfig.perfect(edit_not_applied=1.0))
    src = world.sample_source("unchanged")
    gen = WorldGenerator(world)
    obj = src.record.scene.objects[0]
    req = f"Recolour the {obj.color} {obj.shape} {'blue' if obj.color != 'blue' else 'red'}."
    out = gen.generate([req], [0], [src.image])[0]
    assert image_hash(out) == src.record.image_hash  # same pixels as the source
    truth = gen.truth_of(out, req)
    assert truth.task == "edit"
    assert "edit_not_applied" in {f.kind for f in truth.findings}


def test_spec_options_and_errors():
    gen = load_generator("world:seed=3&vividness=0.7&scale=2")
    assert isinstance(gen, WorldGenerator)
    assert gen.seed == 3 and gen.vividness == 0.7
    assert gen.world.config.wrong_count == pytest.approx(2 * GeneratorConfig().wrong_count)
    assert gen.supports_edit and gen.supports_t2i
    assert isinstance(load_generator("world"), WorldGenerator)
    with pytest.raises(ValueError, match="unknown world generator option"):
        load_generator("world:sed=3")
    with pytest.raises(ValueError):
        WorldGenerator(World(), config=GeneratorConfig())
    stranger = World().sample_source("elsewhere").image
    with pytest.raises(GeneratorError, match="registry"):
        WorldGenerator(World()).generate(["Recolour the red circle blue."], [0], [stranger])
