"""Public preference-dataset loaders, each on a small file in its own layout."""

from __future__ import annotations

import io
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rationalrewards.data.preference import LoadStats, detect_format, load_preference
from rationalrewards.data.samples import DataError
from rationalrewards.images import image_hash, load_image


def _png(color, size=8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 200, 0), (0, 200, 200), (90, 90, 90)]
IMG = [_png(c) for c in COLORS]
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _editreward_rows():
    votes = ["leftvote", "rightvote", "tie", "bothbad_vote", None]
    rows = []
    for i, vote in enumerate(votes):
        rows.append(
            {
                "key": f"k{i}",
                "unique_key": f"u{i}",
                "pair_index": i,
                "instruction": f"make the sky {['red', 'green', 'blue', 'pink', 'gold'][i]}",
                "source_img": {"bytes": IMG[0], "path": None},
                "left_output_image": {"bytes": IMG[1], "path": None},
                "right_output_image": {"bytes": IMG[2], "path": None},
                "left_model": "m1",
                "right_model": "m2",
                "left_overall_score": 6.0,
                "right_overall_score": 7.5,
                "vote_type": vote,
            }
        )
    return rows


def test_editreward_parquet(tmp_path):
    rows = _editreward_rows()
    schema = pa.schema(
        [(k, IMAGE if k.endswith(("_img", "_image")) else None) for k in rows[0] if k.endswith(("_img", "_image"))]
    )
    table = pa.Table.from_pylist(rows)
    for field in schema:
        table = table.set_column(table.schema.get_field_index(field.name), field.name, table[field.name].cast(IMAGE))
    path = tmp_path / "editreward.parquet"
    pq.write_table(table, path)
    assert detect_format(path) == "editreward"
    pairs = load_preference(path)
    assert [p.label for p in pairs] == ["A", "B", "tie", "tie", "B"]  # the last has no vote: B's score is higher
    p = pairs[0]
    assert p.task.value == "edit" and p.request == "make the sky red"
    assert image_hash(p.source) == image_hash(IMG[0]) and image_hash(p.image_a) == image_hash(IMG[1])
    assert p.meta["source_dataset"] == "editreward" and p.meta["left_overall_score"] == 6.0
    assert p.meta["left_model"] == "m1" and "left_output_image" not in p.meta
    assert len({q.id for q in pairs}) == 5 and load_preference(path)[0].id == p.id


def test_editreward_datasets_folder_with_image_features(tmp_path):
    rows = _editreward_rows()[:3]
    for r in rows:
        for k in ("source_img", "left_output_image", "right_output_image"):
            r[k] = Image.open(io.BytesIO(r[k]["bytes"]))
    ds = datasets.Dataset.from_list(rows)
    for k in ("source_img", "left_output_image", "right_output_image"):
        ds = ds.cast_column(k, datasets.Image())
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "er"))
    pairs = load_preference(tmp_path / "er")
    assert [p.label for p in pairs] == ["A", "B", "tie"]
    assert load_image(pairs[1].image_b).getpixel((0, 0)) == COLORS[2]
    # a whole split may also be passed in memory
    assert [p.label for p in load_preference(ds, "editreward")] == ["A", "B", "tie"]


def test_editreward_unknown_vote_is_an_error(tmp_path):
    rows = _editreward_rows()[:1]
    rows[0]["vote_type"] = "sidewaysvote"
    with pytest.raises(DataError, match="sidewaysvote"):
        load_preference(rows, "editreward")


def test_hpdv3_json_with_relative_paths(tmp_path):
    root = tmp_path / "hpd"
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(12):
        a, b = root / "images" / f"{i}_win.png", root / "images" / f"{i}_lose.png"
        a.write_bytes(_png((i * 20, 0, 0)))
        b.write_bytes(_png((0, i * 20, 0)))
        rows.append({"prompt": f"a cat number {i}", "path1": f"images/{i}_win.png", "path2": f"images/{i}_lose.png"})
    meta = tmp_path / "train.json"
    meta.write_text(json.dumps(rows))
    assert detect_format(meta) == "hpdv3"
    pairs = load_preference(meta, image_root=root)
    labels = [p.label for p in pairs]
    assert set(labels) == {"A", "B"}  # the preferred side alternates
    for p, row in zip(pairs, rows, strict=True):
        win = p.image_a if p.label == "A" else p.image_b
        assert image_hash(win) == image_hash(root / row["path1"])
        assert p.meta["source_dataset"] == "hpdv3"
    assert {p.label for p in load_preference(meta, "hpdv3", image_root=root, swap=False)} == {"A"}
    with pytest.raises(DataError, match="image file not found"):
        load_preference(meta, "hpdv3")  # relative to the JSON's folder, where the images are not


def test_imagerewarddb_ranks_become_pairs_and_ties(tmp_path):
    rows = [
        {
            "image": {"bytes": IMG[0], "path": None},
            "prompt_id": "p1",
            "prompt": "a dog",
            "rank": 1,
            "fidelity_rating": 5,
        },
        {
            "image": {"bytes": IMG[1], "path": None},
            "prompt_id": "p1",
            "prompt": "a dog",
            "rank": 2,
            "fidelity_rating": 3,
        },
        {
            "image": {"bytes": IMG[2], "path": None},
            "prompt_id": "p1",
            "prompt": "a dog",
            "rank": 2,
            "fidelity_rating": 4,
        },
        {
            "image": {"bytes": IMG[3], "path": None},
            "prompt_id": "p2",
            "prompt": "a fox",
            "rank": 1,
            "fidelity_rating": 2,
        },
        {
            "image": {"bytes": IMG[4], "path": None},
            "prompt_id": "p3",
            "prompt": "an owl",
            "rank": 3,
            "fidelity_rating": 1,
        },
        {
            "image": {"bytes": IMG[5], "path": None},
            "prompt_id": "p3",
            "prompt": "an owl",
            "rank": 1,
            "fidelity_rating": 5,
        },
    ]
    path = tmp_path / "ir.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert detect_format(path) == "imagerewarddb"
    stats = LoadStats()
    pairs = load_preference(path, stats=stats)
    assert [(p.request, p.label) for p in pairs] == [("a dog", "A"), ("a dog", "A"), ("a dog", "tie"), ("an owl", "B")]
    assert image_hash(pairs[2].image_a) == image_hash(IMG[1]) and image_hash(pairs[2].image_b) == image_hash(IMG[2])
    assert pairs[0].meta["fidelity_rating_a"] == 5 and pairs[0].meta["fidelity_rating_b"] == 3
    assert stats.rows == 6 and stats.pairs == 4 and stats.skipped["prompt with one ranked image"] == 1
    assert len({p.id for p in pairs}) == 4


def test_pickapic_labels_ties_and_skips(tmp_path):
    rows = [
        {"caption": "a red bus", "jpg_0": IMG[0], "jpg_1": IMG[1], "label_0": 1.0, "label_1": 0.0},
        {"caption": "a blue bus", "jpg_0": IMG[1], "jpg_1": IMG[2], "label_0": 0.0, "label_1": 1.0},
        {"caption": "a bus", "jpg_0": IMG[2], "jpg_1": IMG[3], "label_0": 0.5, "label_1": 0.5},
        {"caption": "no label", "jpg_0": IMG[2], "jpg_1": IMG[3], "label_0": 0.5, "label_1": 0.5, "has_label": False},
        {"caption": "same", "jpg_0": IMG[2], "jpg_1": IMG[2], "label_0": 1.0, "label_1": 0.0, "are_different": False},
    ]
    for i, r in enumerate(rows):
        r.setdefault("has_label", True)
        r.setdefault("are_different", True)
        r.update(ranking_id=i, image_0_uid=f"x{i}", image_1_uid=f"y{i}")
    path = tmp_path / "pick.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert detect_format(path) == "pickapic"
    stats = LoadStats()
    pairs = load_preference(path, stats=stats)
    assert [p.label for p in pairs] == ["A", "B", "tie"]
    assert sum(stats.skipped.values()) == 2 and stats.pairs == 3
    assert image_hash(pairs[1].image_b) == image_hash(IMG[2]) and pairs[1].source is None
    assert pairs[0].meta["source_dataset"] == "pickapic"
    # PIL images in memory work too
    pil_rows = [dict(rows[0], jpg_0=Image.open(io.BytesIO(IMG[0])), jpg_1=Image.open(io.BytesIO(IMG[1])))]
    assert load_preference(pil_rows)[0].label == "A"
    assert load_preference(pil_rows)[0].id == pairs[0].id  # ids come from the dataset keys, not the container


def test_generic_pairs_and_unknown_layouts(tmp_path):
    path = tmp_path / "world.parquet"
    pq.write_table(pa.Table.from_pylist([{"request": "r", "image_a": IMG[0], "image_b": IMG[1], "label": "B"}]), path)
    pairs = load_preference(path)
    assert pairs[0].label == "B" and pairs[0].meta["source_dataset"] == "world"
    with pytest.raises(DataError, match="match no known preference format"):
        load_preference([{"text": "x"}])
    with pytest.raises(DataError, match="unknown preference format"):
        load_preference(path, "hpdv4")
    with pytest.raises(DataError, match="not found"):
        load_preference(tmp_path / "missing.parquet")


def test_synthetic_world_parquet(tmp_path):
    from rationalrewards.synthetic.labeler import make_pairs, save_pairs

    made = make_pairs(4, seed=1, task="both")
    path = save_pairs(made, tmp_path / "world.parquet")
    pairs = load_preference(path)
    assert detect_format(path) == "pairs"
    assert [p.id for p in pairs] == [p.key() for p in made]
    assert [p.label for p in pairs] == [p.label for p in made]
    assert [p.task for p in pairs] == [p.task for p in made]
    for p, m in zip(pairs, made, strict=True):
        assert p.meta["source_dataset"] == "world"
        assert {k: p.meta[k] for k in m.meta} == json.loads(json.dumps(m.meta))  # the JSON meta column is unpacked
