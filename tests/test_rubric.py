"""The rubric: which dimensions apply to which task, aggregation, clamping and score vectors."""

import math

import pytest

from rationalrewards.rubric import (
    DIMENSION_KEYS,
    DIMENSIONS,
    SCORE_MAX,
    SCORE_MIN,
    Task,
    aggregate,
    clamp_score,
    dimension,
    dimensions_for,
    score_vector,
)

IMAGE_FAITHFULNESS = next(d.key for d in DIMENSIONS if d.tasks == (Task.EDIT,))


def test_keys_are_unique_and_every_dimension_applies_somewhere():
    assert len(set(DIMENSION_KEYS)) == len(DIMENSION_KEYS) == len(DIMENSIONS)
    for d in DIMENSIONS:
        assert d.tasks, d.key
        assert len(d.levels) == 4 and all(level.strip() for level in d.levels)
        assert d.allows_na == bool(d.na_when)


def test_image_faithfulness_only_for_edits():
    edit = [d.key for d in dimensions_for(Task.EDIT)]
    t2i = [d.key for d in dimensions_for("t2i")]
    assert edit == list(DIMENSION_KEYS)  # every dimension applies to edits, in protocol order
    assert t2i == [k for k in DIMENSION_KEYS if k != IMAGE_FAITHFULNESS]
    assert IMAGE_FAITHFULNESS == "image_faithfulness"
    assert dimensions_for("edit") == dimensions_for(Task.EDIT)


def test_dimensions_for_unknown_task_raises():
    with pytest.raises(ValueError):
        dimensions_for("video")


def test_aggregate_plain_mean_normalized():
    # mean of 2 and 4 is 3 -> (3 - 1) / 3
    assert aggregate({"a": 2.0, "b": 4.0}) == pytest.approx(2 / 3)


def test_aggregate_range_ends():
    keys = list(DIMENSION_KEYS)
    assert aggregate(dict.fromkeys(keys, SCORE_MIN)) == 0.0
    assert aggregate(dict.fromkeys(keys, SCORE_MAX)) == 1.0
    assert aggregate({keys[0]: 1.0, keys[1]: 4.0}) == pytest.approx(0.5)


def test_aggregate_leaves_out_none():
    with_none = aggregate({"text_faithfulness": 4.0, "text_rendering": None, "physical_quality": 2.0})
    without = aggregate({"text_faithfulness": 4.0, "physical_quality": 2.0})
    assert with_none == without == pytest.approx(2 / 3)


def test_aggregate_all_none_or_empty_is_none():
    assert aggregate({k: None for k in DIMENSION_KEYS}) is None
    assert aggregate({}) is None


def test_aggregate_weights():
    scores = {"text_faithfulness": 4.0, "physical_quality": 1.0}
    # weighted mean (3*4 + 1*1) / 4 = 3.25 -> 2.25 / 3
    assert aggregate(scores, weights={"text_faithfulness": 3, "physical_quality": 1}) == pytest.approx(0.75)
    # a dimension missing from the weights has weight 0
    assert aggregate(scores, weights={"physical_quality": 2.0}) == 0.0


def test_aggregate_zero_weights_is_none():
    scores = {"text_faithfulness": 4.0, "physical_quality": 1.0}
    assert aggregate(scores, weights={"text_faithfulness": 0, "physical_quality": 0}) is None
    assert aggregate(scores, weights={}) is None
    # a weighted dimension that is N/A leaves nothing to average
    assert aggregate({"text_rendering": None, "physical_quality": 3.0}, weights={"text_rendering": 1}) is None


def test_aggregate_keys_subset():
    scores = {"text_faithfulness": 4.0, "physical_quality": 1.0, "text_rendering": 1.0}
    assert aggregate(scores, keys=["text_faithfulness"]) == 1.0
    assert aggregate(scores, keys=("physical_quality", "text_rendering")) == 0.0
    assert aggregate(scores, keys=["image_faithfulness"]) is None
    assert aggregate(scores, keys=[]) is None


@pytest.mark.parametrize("value,expected", [(0.0, 1.0), (-3, 1.0), (1, 1.0), (2.5, 2.5), (4, 4.0), (7.5, 4.0)])
def test_clamp_score(value, expected):
    out = clamp_score(value)
    assert out == expected and isinstance(out, float)


def test_clamp_score_infinities_and_nan():
    assert clamp_score(float("inf")) == SCORE_MAX
    assert clamp_score(float("-inf")) == SCORE_MIN
    with pytest.raises(ValueError, match="NaN"):
        clamp_score(float("nan"))  # never silently becomes a number


def test_clamp_score_accepts_numeric_strings():
    assert clamp_score("3") == 3.0


def test_score_vector_order_and_fill():
    scores = {"physical_quality": 2.0, "text_faithfulness": 3.0, "text_rendering": None, "image_faithfulness": 4.0}
    t2i = score_vector(scores, "t2i")
    assert t2i[:2] == [3.0, 2.0]  # protocol order, not dict order; image faithfulness left out
    assert len(t2i) == 3 and math.isnan(t2i[2])
    assert score_vector(scores, Task.EDIT, fill=-1.0) == [3.0, 4.0, 2.0, -1.0]
    assert score_vector({}, "edit", fill=0.0) == [0.0] * 4


def test_unknown_dimension_error_names_known_keys():
    assert dimension("text_rendering").allows_na
    with pytest.raises(KeyError) as info:
        dimension("text_faithfullness")
    message = str(info.value)
    assert "text_faithfullness" in message
    for key in DIMENSION_KEYS:
        assert key in message
