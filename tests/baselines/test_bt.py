"""The Bradley-Terry baseline learns a request-dependent preference, scores samples, and round-trips through a file."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from rationalrewards.baselines.bt import BradleyTerryRewardModel, BTConfig
from rationalrewards.schema import PreferencePair, Sample

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 60, 220), "yellow": (235, 210, 40)}


def _image(colour: str, rng: random.Random) -> Image.Image:
    r, g, b = COLOURS[colour]
    jitter = rng.randint(-20, 20)
    return Image.new("RGB", (24, 24), tuple(max(0, min(255, c + jitter)) for c in (r, g, b)))


def _pairs(n: int, seed: int) -> list[PreferencePair]:
    """The image in the requested colour is preferred; which side it is on is random."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        want, other = rng.sample(sorted(COLOURS), 2)
        good, bad = _image(want, rng), _image(other, rng)
        first = rng.random() < 0.5
        out.append(
            PreferencePair(
                request=f"a {want} square",
                image_a=good if first else bad,
                image_b=bad if first else good,
                label="A" if first else "B",
            )
        )
    return out


@pytest.fixture(scope="module")
def trained():
    cfg = BTConfig(image_size=8, channels=(8,), embed=16, epochs=30, batch_size=32, seed=1, threads=1)
    return BradleyTerryRewardModel(cfg).fit(_pairs(64, seed=0))


def test_learns_a_request_dependent_preference(trained):
    held = _pairs(40, seed=99)
    preds = trained.compare(held)
    accuracy = sum(p == h.label for p, h in zip(preds, held, strict=True)) / len(held)
    assert accuracy >= 0.8
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]


def test_score_is_one_float_per_sample_and_follows_the_request(trained):
    rng = random.Random(5)
    red, blue = _image("red", rng), _image("blue", rng)
    scores = trained.score([Sample(request="a red square", image=red), Sample(request="a red square", image=blue)])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert scores[0] > scores[1]
    assert trained.score([]) == []


def test_edit_samples_use_the_source(trained):
    rng = random.Random(6)
    s = Sample(request="make it red", image=_image("red", rng), source=_image("blue", rng))
    no_source = Sample(request="make it red", image=s.image)
    a, b = trained.score([s, no_source])
    assert a != b


def test_save_and_load_give_the_same_scores(trained, tmp_path):
    samples = [p.sample_a() for p in _pairs(6, seed=7)]
    path = trained.save(tmp_path / "bt.pt")
    loaded = BradleyTerryRewardModel.load(path)
    assert loaded.config == trained.config
    assert loaded.score(samples) == pytest.approx(trained.score(samples))


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(ValueError, match="labelled"):
        BradleyTerryRewardModel(BTConfig(epochs=1)).fit([p.model_copy(update={"label": None}) for p in _pairs(2, 0)])
    with pytest.raises(ValueError):
        BTConfig(channels=())
    with pytest.raises(FileNotFoundError):
        BradleyTerryRewardModel.load(tmp_path / "missing.pt")
