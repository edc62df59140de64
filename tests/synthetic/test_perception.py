"""Perception labels: what each world image truly shows, from its record, for probes of a vision tower."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from rationalrewards.synthetic.perception import TARGETS, has_defect, intensity, labels, perception_records
from rationalrewards.synthetic.render import Artefact
from rationalrewards.synthetic.scene import Obj, Scene


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
