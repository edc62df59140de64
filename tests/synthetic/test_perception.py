"""Perception labels: what each world image truly shows, from its record, for probes of a vision tower."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from rationalrewards.synthetic.perception import (
    DENSE_TARGETS,
    TARGETS,
    artefact_kinds,
    cell_labels,
    has_defect,
    intensity,
    labels,
    perception_records,
)
from rationalrewards.synthetic.render import Artefact
from rationalrewards.synthetic.scene import Obj, Scene, Sign
from rationalrewards.synthetic.vocab import COLOR_NAMES, SHAPES


def test_records_are_distinct_deterministic_and_cover_both_tasks():
    recs = list(perception_records(60, seed=3))
    assert len(recs) == 60
    assert len({r.image_hash for r in recs}) == 60
    assert [r.image_hash for r in perception_records(60, seed=3)] == [r.image_hash for r in recs]
    assert {r.image_hash for r in perception_records(60, seed=4)}.isdisjoint(r.image_hash for r in recs)
    assert {(r.kind, r.task) for r in recs} >= {("generation", "t2i"), ("generation", "edit"), ("source", None)}
    assert list(perception_records(0)) == []
    with pytest.raises(ValueError):
        list(perception_records(-1))


def test_intensity_classes_follow_the_vividness_bounds():
    assert [intensity(v) for v in (0.1, 0.35, 0.55, 0.7, 0.9)] == ["washed out", "soft", "rich", "vivid", "garish"]
    assert intensity(0.65) == "vivid" and intensity(0.6499) == "rich"  # the utility peak starts "vivid"


def _record(scene: Scene, artefacts=(), vividness=0.5):
    rec = next(perception_records(1, seed=0))
    return dataclasses.replace(rec, scene=scene, artefacts=tuple(artefacts), vividness=vividness)


def test_labels_read_the_scene_not_the_request():
    scene = Scene(
        "mint",
        (Obj(0, "circle", "red", "small", 0.2, 0.2), Obj(1, "star", "blue", "large", 0.75, 0.7),
         Obj(2, "circle", "red", "medium", 0.5, 0.25)),
    )  # fmt: skip
    got = labels(_record(scene, vividness=0.2))
    assert got == {
        "background": "mint",
        "intensity": "washed out",
        "defect": "none",
        "colours": frozenset({"red", "blue"}),
        "colour_shapes": frozenset({"red circle", "blue star"}),
    }
    for name, (kind, classes) in TARGETS.items():
        values = got[name] if kind == "multi" else {got[name]}
        assert set(values) <= set(classes)


@pytest.mark.parametrize(
    ("objects", "artefacts", "expected"),
    [
        ((Obj(0, "square", "green", "small", 0.5, 0.5),), (), False),
        ((Obj(0, "square", "green", "small", 0.5, 0.5),), (Artefact("blur"),), True),
        ((Obj(0, "square", "green", "large", 0.02, 0.5),), (), True),  # cut off at the left edge
        ((Obj(0, "circle", "red", "large", 0.5, 0.5), Obj(1, "star", "blue", "large", 0.52, 0.5)), (), True),
    ],
)
def test_defect_is_any_artefact_cut_or_overlap(objects, artefacts, expected):
    assert has_defect(_record(Scene("white", objects), artefacts)) is expected


def test_labels_of_generated_images_agree_with_their_truth():
    """Images whose truth has a physical finding of a visible kind are exactly those labelled as defective."""
    from rationalrewards.synthetic.truth import judge

    visible = {"noise", "blur", "seam", "cut", "overlap"}
    for rec in itertools.islice((r for r in perception_records(150, seed=5) if r.kind == "generation"), 80):
        kinds = {f.kind for f in judge(rec).findings}
        assert (labels(rec)["defect"] == "some") == bool(kinds & visible), kinds


def test_artefact_kinds_name_each_visible_defect():
    scene = Scene("white", (Obj(0, "circle", "red", "large", 0.5, 0.5), Obj(1, "star", "blue", "large", 0.52, 0.5),
                            Obj(2, "square", "green", "large", 0.02, 0.2)))  # fmt: skip
    assert artefact_kinds(_record(scene, (Artefact("noise", region="top"),))) == {"noise", "overlap", "cut"}
    assert artefact_kinds(_record(Scene("white", (Obj(0, "square", "green", "small", 0.5, 0.5),)))) == frozenset()


def test_cell_labels_bind_colour_and_shape_to_the_cell_of_each_centre():
    # 4 x 4 grid: cells are 0.25 wide; (0.1, 0.1) -> cell 0, (0.9, 0.6) -> row 2, col 3 -> cell 11
    scene = Scene(
        "white",
        (Obj(0, "circle", "red", "small", 0.1, 0.1), Obj(1, "star", "blue", "small", 0.9, 0.6),
         Obj(2, "square", "green", "small", 0.15, 0.15)),  # drawn last, centred in cell 0 too
    )  # fmt: skip
    got = cell_labels(_record(scene), grid=4)
    assert len(got["colour"]) == len(got["shape"]) == len(got["cover"]) == 16
    colour = {i: COLOR_NAMES[c - 1] for i, c in enumerate(got["colour"]) if c}
    shape = {i: SHAPES[s - 1] for i, s in enumerate(got["shape"]) if s}
    assert colour == {0: "green", 11: "blue"} and shape == {0: "square", 11: "star"}
    # cover: a cell centre within an object's radius; small objects (r 0.068) cover only their own cell centre
    # when the centre is near it: (0.9, 0.6) is 0.025 from cell 11's centre (0.875, 0.625)
    assert got["cover"][11][COLOR_NAMES.index("blue")] == 1.0
    assert sum(map(sum, got["cover"])) >= 1
    assert not any(v for row in got["sign"] for v in row)  # no sign


def test_cell_labels_mark_the_sign_board_and_reject_a_bad_grid():
    scene = Scene("white", (), Sign("OPEN", 0.5, 0.5))
    got = cell_labels(_record(scene), grid=8)
    marked = {i for i, row in enumerate(got["sign"]) if row[0]}
    x0, y0, x1, y1 = scene.sign.rect()
    expected = {
        r * 8 + c for r in range(8) for c in range(8) if x0 <= (c + 0.5) / 8 <= x1 and y0 <= (r + 0.5) / 8 <= y1
    }
    assert marked == expected and {27, 28, 35, 36} <= marked  # the four central cells
    assert got["colour"] == [0] * 64
    with pytest.raises(ValueError):
        cell_labels(_record(scene), grid=0)
    for name, (kind, classes) in DENSE_TARGETS.items():
        assert kind in ("single", "multi") and classes
        if kind == "single":
            assert classes[0] == "none" and max(got[name]) < len(classes)
