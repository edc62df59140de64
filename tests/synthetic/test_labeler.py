"""Preference labels, parquet datasets, the registry, benchmark sets."""

import random

import pytest

from rationalrewards.images import to_data_url
from rationalrewards.schema import PreferencePair
from rationalrewards.synthetic import (
    EVAL_KEY,
    LabelerConfig,
    World,
    load_bench,
    load_pairs,
    make_bench,
    make_pairs,
    registry_path,
    save_bench,
    save_pairs,
    strip_eval,
)
from rationalrewards.synthetic.labeler import label, p_prefer_a


@pytest.fixture(scope="module")
def pairs_and_world():
    world = World()
    return make_pairs(300, seed=7, task="both", world=world), world


def test_labels_agree_with_utility_at_the_bradley_terry_rate(pairs_and_world, within_binomial):
    pairs, _ = pairs_and_world
    cfg = LabelerConfig()
    rng = random.Random(0)
    disagree, probs = 0, []
    for p in pairs:
        t = p.meta[EVAL_KEY]
        ua, ub = t["utility_a"], t["utility_b"]
        for _ in range(5):
            lab = label(ua, ub, rng, cfg)
            if abs(ua - ub) < cfg.tie_margin:
                assert lab == "tie"
                continue
            assert lab in ("A", "B")
            disagree += (lab == "A") != (ua > ub)
            probs.append(1 - p_prefer_a(max(ua, ub), min(ua, ub), cfg.temperature))
    assert within_binomial(disagree, probs)
    # the default noise makes roughly 10-15% of the non-tie labels disagree with the utility
    assert 0.08 < disagree / len(probs) < 0.17


def test_dataset_labels_match_their_utilities(pairs_and_world):
    pairs, _ = pairs_and_world
    cfg = LabelerConfig()
    agree = sum(
        (p.label == "A") == (p.meta[EVAL_KEY]["utility_a"] > p.meta[EVAL_KEY]["utility_b"])
        for p in pairs
        if p.label != "tie"
    )
    ties = [p for p in pairs if p.label == "tie"]
    assert all(abs(p.meta[EVAL_KEY]["utility_a"] - p.meta[EVAL_KEY]["utility_b"]) < cfg.tie_margin for p in ties)
    assert agree / (len(pairs) - len(ties)) > 0.8
    assert {p.meta["task"] for p in pairs} == {"t2i", "edit"}
    assert all((p.source is not None) == (p.meta["task"] == "edit") for p in pairs)
    lo, hi = LabelerConfig().vividness
    assert all(lo <= p.meta[EVAL_KEY][k] <= hi for p in pairs for k in ("vividness_a", "vividness_b"))


def test_noise_free_labeler_always_agrees():
    cfg = LabelerConfig(temperature=0.0, tie_margin=0.0)
    rng = random.Random(1)
    assert label(0.5, 0.4, rng, cfg) == "A" and label(0.1, 0.4, rng, cfg) == "B"
    with pytest.raises(ValueError):
        LabelerConfig(vividness=(0.8, 0.2))


def test_parquet_round_trip_and_registry_lookup(tmp_path, pairs_and_world):
    pairs, world = pairs_and_world
    some = pairs[:12]
    path = save_pairs(some, tmp_path / "pairs.parquet", registry=world.registry)
    assert registry_path(path).is_file()
    back = load_pairs(path)
    assert len(back) == len(some)
    for a, b in zip(some, back, strict=False):
        assert isinstance(b, PreferencePair)
        assert (a.request, a.label, a.meta, a.key()) == (b.request, b.label, b.meta, b.id)
        assert a.image_a == b.image_a and a.image_b == b.image_b and a.source == b.source
    # a fresh world finds every image from its bytes, a data URL or a PIL image
    fresh = World()
    fresh.load_registry(path)
    for p in back:
        for img, key in ((p.image_a, "utility_a"), (to_data_url(p.image_b), "utility_b")):
            rec = fresh.lookup(img)
            assert rec is not None and rec.kind == "generation"
            assert fresh.truth(rec).utility == pytest.approx(p.meta[EVAL_KEY][key])
        if p.source is not None:
            assert fresh.lookup(p.source).kind == "source"
    assert fresh.lookup(b"not an image") is None


def test_same_seed_byte_identical_parquet(tmp_path):
    a = save_pairs(make_pairs(6, seed=3, task="both"), tmp_path / "a.parquet")
    b = save_pairs(make_pairs(6, seed=3, task="both"), tmp_path / "b.parquet")
    c = save_pairs(make_pairs(6, seed=4, task="both"), tmp_path / "c.parquet")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_strip_eval_removes_the_truth(pairs_and_world):
    p = strip_eval(pairs_and_world[0][0])
    assert EVAL_KEY not in p.meta and "task" in p.meta


def test_bench_round_trip(tmp_path):
    world = World()
    items = make_bench(6, seed=2, task="both", world=world)
    path = save_bench(items, tmp_path / "bench.jsonl", registry=world.registry)
    back = load_bench(path)
    assert [i.to_json() for i in back] == [i.to_json() for i in items]
    fresh = World()
    fresh.load_registry(path)
    for it in back:
        if it.task == "edit":
            assert fresh.lookup(it.source).kind == "source"
            gen = fresh.generate(it.request, it.seed, source=it.source)
            assert fresh.truth(gen.record).task == "edit"
        else:
            assert it.source is None
    with pytest.raises(ValueError):
        make_bench(2, task="video")
