"""The embedded default model: the shipped folder loads through TransformersBackend and writes critiques that parse."""

from __future__ import annotations

import pytest

from rationalrewards.models import embedded
from rationalrewards.rubric import SCORE_MAX, SCORE_MIN, dimensions_for

MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def backend():
    from rationalrewards.backends import load_backend

    b = load_backend("embedded")
    yield b
    b.close()


@pytest.fixture(scope="module")
def world_pairs():
    from rationalrewards.synthetic import World, make_pairs, strip_eval

    # a world seed the build never uses for training (it trains on seed 0, holds out seed 1000003)
    return [strip_eval(p) for p in make_pairs(2, seed=424242, task="both", world=World())]


def test_shipped_folder_is_small_and_has_a_model_card():
    folder = embedded.embedded_path()
    files = [p for p in folder.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert set(embedded.REQUIRED_FILES) <= names
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "synthetic world" in card
    assert "build_embedded_model.py" in card


def test_load_backend_embedded_is_a_transformers_backend_on_the_shipped_folder(backend):
    from rationalrewards.backends.transformers_local import TransformersBackend

    assert isinstance(backend, TransformersBackend)
    assert backend.path.resolve() == embedded.embedded_path().resolve()
    assert backend.name == "embedded"
    assert type(backend.model).__name__ == "Qwen3VLForConditionalGeneration"


def test_critiques_of_world_images_parse_with_scores_in_range(backend, world_pairs):
    from rationalrewards.model import RationalRewardModel

    rm = RationalRewardModel(backend)
    samples = [s for p in world_pairs for s in (p.sample_a(), p.sample_b())]
    assert {s.task.value for s in samples} == {"t2i", "edit"}
    critiques = rm.critique(samples)
    for sample, c in zip(samples, critiques, strict=True):
        assert c.parse_ok, (c.parse_status, c.parse_errors, c.raw_text)
        keys = {d.key for d in dimensions_for(sample.task)}
        assert set(c.scores) == keys
        scored = [v for k, v in c.scores.items() if k not in c.na]
        assert scored and all(SCORE_MIN <= v <= SCORE_MAX for v in scored)
        assert c.reward is not None and 0.0 <= c.reward <= 1.0
        assert c.template == rm.template.name


def test_compare_gives_a_parsed_preference(backend, world_pairs):
    from rationalrewards.model import RationalRewardModel

    (c,) = RationalRewardModel(backend).compare(world_pairs[:1])
    assert c.parse_ok, (c.parse_status, c.parse_errors, c.raw_text)
    assert c.preference in ("A", "B", "tie")


def test_missing_weights_name_the_build_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_embedded_model.py"):
        embedded.load_embedded(tmp_path)


def test_spec_takes_no_argument():
    with pytest.raises(ValueError, match="transformers:PATH"):
        embedded.from_spec("some/folder")
