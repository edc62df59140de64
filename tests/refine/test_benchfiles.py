"""Benchmark prompt files in each benchmark's own layout (written here in miniature)."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rationalrewards.images import load_image
from rationalrewards.refine.benchfiles import BenchFileError, detect_format, read_bench
from rationalrewards.testing.colour_world import COLOURS, colour_name


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), COLOURS[colour]).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def imgedit(tmp_path):
    root = tmp_path / "Benchmark" / "singleturn"
    (root / "animal").mkdir(parents=True)
    (root / "animal" / "000342021.jpg").write_bytes(png("red"))
    (root / "style").mkdir()
    (root / "style" / "000278574.jpg").write_bytes(png("green"))
    data = {
        "1082": {"id": "animal/000342021.jpg", "prompt": "Change the shell to blue. ", "edit_type": "alter"},
        "673": {"id": "style/000278574.jpg", "prompt": "Transfer the image into ukiyo-e style.", "edit_type": "style"},
    }
    path = tmp_path / "basic_edit.json"
    path.write_text(json.dumps(data, indent=4))
    return path, root


def test_imgedit(imgedit):
    path, root = imgedit
    assert detect_format(path) == "imgedit"
    items = read_bench(path, images_dir=root)
    assert [it.id for it in items] == ["1082", "673"]
    assert items[0].request == "Change the shell to blue."
    assert items[0].output_path() == "1082.png"
    assert items[0].meta == {"edit_type": "alter", "image_id": "animal/000342021.jpg"}
    assert colour_name(load_image(items[0].source)) == "red"
    with pytest.raises(BenchFileError, match="--images"):
        read_bench(path)
    with pytest.raises(BenchFileError, match="not found"):
        read_bench(path, images_dir=root / "elsewhere")


def test_gedit_parquet_with_image_structs(tmp_path):
    rows = [
        {"task_type": "color_alter", "key": "k1", "instruction": "make it blue", "instruction_language": "en",
         "input_image": {"bytes": png("red"), "path": None}},
        {"task_type": "color_alter", "key": "k1", "instruction": "把它变成蓝色", "instruction_language": "cn",
         "input_image": {"bytes": png("red"), "path": None}},
        {"task_type": "subject-add", "key": "k2", "instruction": "add a dog", "instruction_language": "en",
         "input_image": {"bytes": png("green"), "path": None}},
    ]  # fmt: skip
    path = tmp_path / "gedit.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert detect_format(path) == "gedit"
    items = read_bench(path)
    assert len(items) == 3 and len({it.id for it in items}) == 3
    assert items[0].output_path() == "fullset/color_alter/en/k1.png"
    assert items[1].output_path() == "fullset/color_alter/cn/k1.png"
    assert colour_name(load_image(items[2].source)) == "green"
    assert [it.meta["key"] for it in read_bench(path, language="en")] == ["k1", "k2"]


def test_gedit_jsonl_with_image_paths(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png("blue"))
    path = tmp_path / "gedit.jsonl"
    path.write_text(json.dumps({"key": "a", "instruction": "remove it", "input_image": "a.png"}) + "\n")
    items = read_bench(path, images_dir=tmp_path / "imgs")
    assert items[0].output_path() == "fullset/all/en/a.png"
    assert colour_name(load_image(items[0].source)) == "blue"


def test_unigenbench_csv(tmp_path):
    path = tmp_path / "test_prompts_en.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "prompt_en", "sub_dims_en"])
        w.writerow([0, "two pandas in spacesuits", json.dumps({"Testpoints": ["Attribute - Quantity"]})])
        w.writerow([1, 'a sign that says "OPEN"', json.dumps({"Testpoints": ["Text"]})])
    assert detect_format(path) == "unigenbench"
    items = read_bench(path)
    assert [it.request for it in items] == ["two pandas in spacesuits", 'a sign that says "OPEN"']
    assert items[0].meta["sub_dims"]["Testpoints"] == ["Attribute - Quantity"]
    assert [items[1].output_path(j, repeats=4) for j in range(2)] == ["1_0.png", "1_1.png"]
    assert items[1].source is None


def test_plain_jsonl_and_errors(tmp_path):
    (tmp_path / "s.png").write_bytes(png("red"))
    path = tmp_path / "reqs.jsonl"
    path.write_text(
        json.dumps({"id": "x", "request": "a blue cube", "tag": 1}) + "\n\n"
        + json.dumps({"id": "y", "request": "make it blue", "source": "s.png"}) + "\n"
    )  # fmt: skip
    items = read_bench(path)
    assert [(it.id, it.output_path(), it.meta) for it in items] == [("x", "x.png", {"tag": 1}), ("y", "y.png", {})]
    assert items[1].output_path(1, repeats=2) == "sample1/y.png"
    assert colour_name(load_image(items[1].source)) == "red"

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "prompt": "no request key"}) + "\n")
    with pytest.raises(BenchFileError):
        read_bench(bad, format="jsonl")
    dup = tmp_path / "dup.jsonl"
    dup.write_text((json.dumps({"id": "x", "request": "a"}) + "\n") * 2)
    with pytest.raises(BenchFileError, match="more than once"):
        read_bench(dup)
    with pytest.raises(BenchFileError, match="not found"):
        read_bench(tmp_path / "missing.jsonl")
