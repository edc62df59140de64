"""Samples, pairs and critiques: tasks, content keys, label swapping, rewards and JSON round trips."""

import io

import numpy as np
import pytest
from PIL import Image

from rationalrewards.rubric import DIMENSION_KEYS, Task, aggregate, dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique, PreferencePair, Sample, stable_id


def _img(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# --- stable_id -----------------------------------------------------------------


def test_stable_id_deterministic_and_short():
    a = stable_id("req", 1, {"b": 2, "a": [1, 2]})
    assert a == stable_id("req", 1, {"a": [1, 2], "b": 2})  # dict key order does not matter
    assert len(a) == 16 and int(a, 16) >= 0


def test_stable_id_order_and_content_sensitive():
    assert stable_id("a", "b") != stable_id("b", "a")
    assert stable_id("ab") != stable_id("a", "b")
    assert stable_id("a", None) != stable_id("a")
    assert stable_id(1) != stable_id("1")


# --- Sample --------------------------------------------------------------------


def test_sample_task():
    assert Sample(request="r", image=_img(0)).task is Task.T2I
    assert Sample(request="r", image=_img(0), source=_img(1)).task is Task.EDIT


def test_sample_key_same_pixels_any_container(tmp_path):
    img = _img(0)
    f = tmp_path / "x.png"
    f.write_bytes(_png(img))
    keys = {
        Sample(request="a red cube", image=img).key(),
        Sample(request="a red cube", image=_png(img)).key(),
        Sample(request="a red cube", image=str(f)).key(),
        Sample(request="a red cube", image={"path": str(f)}).key(),
    }
    assert len(keys) == 1


def test_sample_key_changes_with_content():
    base = Sample(request="a red cube", image=_img(0)).key()
    assert Sample(request="a red cube", image=_img(1)).key() != base
    assert Sample(request="a blue cube", image=_img(0)).key() != base
    # an edit of the same output differs from the generation, and by source
    edit1 = Sample(request="a red cube", image=_img(0), source=_img(2)).key()
    edit2 = Sample(request="a red cube", image=_img(0), source=_img(3)).key()
    assert len({base, edit1, edit2}) == 3


def test_sample_key_ignores_meta_and_explicit_id_wins():
    assert Sample(request="r", image=_img(0), meta={"x": 1}).key() == Sample(request="r", image=_img(0)).key()
    assert Sample(request="r", image=_img(0), id="s-17").key() == "s-17"
    assert Sample(request="r", image="/no/such/file.png", id="given").key() == "given"  # the image is not read


def test_sample_key_unreadable_image_raises():
    from rationalrewards.images import ImageError

    with pytest.raises(ImageError):
        Sample(request="r", image="/no/such/file.png").key()


# --- PreferencePair ------------------------------------------------------------


def _pair(label=None, **kw) -> PreferencePair:
    return PreferencePair(request="two cats", image_a=_img(0), image_b=_img(1), label=label, **kw)


@pytest.mark.parametrize("label,expected", [("A", "B"), ("B", "A"), ("tie", "tie"), (None, None)])
def test_swapped_label(label, expected):
    p = _pair(label)
    s = p.swapped()
    assert s.label == expected
    assert s.image_a is p.image_b and s.image_b is p.image_a
    assert s.request == p.request and s.source is p.source
    assert p.label == label  # the original is unchanged
    assert s.swapped().label == label


def test_swapped_key_differs_and_round_trips():
    p = _pair("A")
    assert p.swapped().key() != p.key()
    assert p.swapped().swapped().key() == p.key()


def test_pair_bad_label_rejected():
    with pytest.raises(ValueError):
        _pair("C")


def test_pair_task_and_key():
    p = _pair()
    assert p.task is Task.T2I
    e = _pair(source=_img(2))
    assert e.task is Task.EDIT and e.key() != p.key()
    same_pixels = PreferencePair(request="two cats", image_a=_png(_img(0)), image_b=_png(_img(1)))
    assert same_pixels.key() == p.key()
    assert _pair(id="pair-1").key() == "pair-1"


def test_sample_a_and_b():
    src = _img(2)
    p = _pair("A", source=src, meta={"group": 3}, id="p1")
    a, b = p.sample_a(), p.sample_b()
    assert a.image is p.image_a and b.image is p.image_b
    assert a.source is src and b.source is src and a.task is Task.EDIT
    assert a.request == b.request == p.request
    assert a.meta == {"group": 3}
    a.meta["group"] = 4
    assert p.meta == {"group": 3}  # a copy, not shared
    assert a.id is None  # the pair's id does not name one output
    assert a.key() == Sample(request=p.request, image=p.image_a, source=src).key()
    assert a.key() != b.key()


# --- Critique ------------------------------------------------------------------


def test_reward_none_when_failed():
    c = Critique(scores=dict.fromkeys(DIMENSION_KEYS, 4.0), parse_status="failed")
    assert c.reward is None and not c.parse_ok
    assert Critique().reward is None  # the default status is failed


def test_reward_partial_counts():
    c = Critique(scores={"text_faithfulness": 4.0, "physical_quality": 2.0}, parse_status="partial")
    assert c.reward == pytest.approx(2 / 3)
    assert not c.parse_ok


def test_reward_only_over_applicable_dimensions():
    scores = {"text_faithfulness": 4.0, "physical_quality": 4.0, "text_rendering": None, "image_faithfulness": 1.0}
    t2i = Critique(task="t2i", scores=scores, parse_status="ok")
    edit = Critique(task="edit", scores=scores, parse_status="ok")
    assert t2i.parse_ok
    assert t2i.reward == 1.0  # image faithfulness has no say on a generation
    assert edit.reward == pytest.approx(aggregate({"a": 4.0, "b": 4.0, "c": 1.0}))
    assert edit.reward < t2i.reward


def test_reward_none_when_everything_na():
    c = Critique(task="t2i", scores={"text_rendering": None, "image_faithfulness": 3.0}, parse_status="partial")
    assert c.reward is None


def test_vector_has_all_keys():
    c = Critique(task="t2i", scores={"text_faithfulness": 3.0}, parse_status="partial")
    v = c.vector()
    assert list(v) == list(DIMENSION_KEYS)
    assert v["text_faithfulness"] == 3.0 and all(v[k] is None for k in DIMENSION_KEYS[1:])


def test_critique_json_round_trip():
    c = Critique(
        task=Task.EDIT,
        scores={"text_faithfulness": 3.0, "image_faithfulness": 2.0, "physical_quality": 4.0, "text_rendering": None},
        justifications={"text_faithfulness": "mostly"},
        na=["text_rendering"],
        parse_status="ok",
        raw_text="raw",
        template="request-first",
        template_version="1",
        spread={"text_faithfulness": 0.5},
        n_samples=3,
    )
    text = c.model_dump_json()
    dumped = c.model_dump(mode="json")
    assert dumped["reward"] == c.reward and dumped["parse_ok"] is True and dumped["task"] == "edit"
    back = Critique.model_validate_json(text)
    assert back == c
    assert back.reward == c.reward and back.parse_ok
    assert back.task is Task.EDIT


def test_critique_json_stale_computed_fields_are_recomputed():
    """A stored reward or parse_ok that disagrees with the scores never wins over the scores."""
    c = Critique(task="t2i", scores={"text_faithfulness": 1.0}, parse_status="partial")
    data = c.model_dump(mode="json")
    data["reward"] = 0.99
    data["parse_ok"] = True
    back = Critique.model_validate(data)
    assert back.reward == 0.0 and back.parse_ok is False


def test_pairwise_rewards_and_round_trip():
    pc = PairwiseCritique(
        task="t2i",
        scores_a={"text_faithfulness": 4.0, "image_faithfulness": 1.0},
        scores_b={"text_faithfulness": 1.0},
        winners={"text_faithfulness": "A"},
        preference="A",
        parse_status="ok",
    )
    assert pc.reward_a == 1.0 and pc.reward_b == 0.0
    back = PairwiseCritique.model_validate_json(pc.model_dump_json())
    assert back == pc and back.reward_a == 1.0 and back.preference == "A"
    failed = PairwiseCritique(scores_a={"text_faithfulness": 4.0}, parse_status="failed")
    assert failed.reward_a is None and failed.reward_b is None


def test_applicable_dimensions_match_rubric():
    # the reward considers exactly the rubric's dimensions for the task
    for task in Task:
        for d in dimensions_for(task):
            c = Critique(task=task, scores={d.key: 4.0}, parse_status="partial")
            assert c.reward == 1.0, (task, d.key)
