"""Loading Sample / PreferencePair records from real JSONL and parquet files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rationalrewards.data import DataError, load_pairs, load_samples
from rationalrewards.data.samples import cell_image, cell_images
from rationalrewards.images import image_hash, load_image


def _png(color: tuple[int, int, int], size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


RED, GREEN, BLUE = _png((255, 0, 0)), _png((0, 255, 0)), _png((0, 0, 255))


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_paths_relative_to_file_folder_and_base64(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "red.png").write_bytes(RED)
    data_url = "data:image/png;base64," + base64.b64encode(GREEN).decode()
    f = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"request": "a red square", "image": "imgs/red.png", "id": 7, "model": "gen-x"},
            {"prompt": "a green square", "image": data_url},
            {
                "request": "edit: make it blue",
                "image": {"bytes": base64.b64encode(BLUE).decode()},
                "source": "imgs/red.png",
            },
        ],
    )
    samples = load_samples(f)
    assert [s.request for s in samples] == ["a red square", "a green square", "edit: make it blue"]
    assert samples[0].id == "7" and samples[0].meta == {"model": "gen-x"}
    assert load_image(samples[0].image).getpixel((0, 0)) == (255, 0, 0)
    assert load_image(samples[1].image).getpixel((0, 0)) == (0, 255, 0)
    assert samples[1].id is None and samples[1].task.value == "t2i"
    assert samples[2].task.value == "edit"
    assert image_hash(samples[2].source) == image_hash(RED)
    # the same file read from another working directory resolves the same path
    assert Path(samples[0].image).is_absolute()


def test_parquet_bytes_and_hf_structs_with_pairs(tmp_path):
    table = pa.table(
        {
            "prompt": ["red or green", "blue or red"],
            "image_a": [{"bytes": RED, "path": None}, {"bytes": BLUE, "path": None}],
            "image_b": [GREEN, RED],
            "label": ["a", "Tie"],
            "id": ["p1", "p2"],
        }
    )
    f = tmp_path / "pairs.parquet"
    pq.write_table(table, f)
    pairs = load_pairs(f)
    assert [p.label for p in pairs] == ["A", "tie"]
    assert [p.id for p in pairs] == ["p1", "p2"]
    assert image_hash(pairs[0].image_a) == image_hash(RED)
    assert image_hash(pairs[0].image_b) == image_hash(GREEN)
    assert pairs[1].source is None


def test_column_mapping(tmp_path):
    table = pa.table({"caption": ["a red square"], "output": [RED], "human": ["B"], "other": [GREEN]})
    f = tmp_path / "x.parquet"
    pq.write_table(table, f)
    samples = load_samples(f, columns={"request": "caption", "image": "output", "label": "human"})
    assert samples[0].request == "a red square"
    assert samples[0].meta == {"label": "B"}  # bytes columns are not copied into meta
    pairs = load_pairs(f, columns={"request": "caption", "image_a": "output", "image_b": "other", "label": "human"})
    assert pairs[0].label == "B" and image_hash(pairs[0].image_b) == image_hash(GREEN)
    with pytest.raises(DataError, match="unknown fields"):
        load_samples(f, columns={"caption": "request"})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"request": "ok", "image": "missing.png"}], r"line 1, field 'image': image file not found"),
        ([{"request": "ok", "image": "data:image/png;base64,AAAA"}], r"line 1, field 'image': not a readable image"),
        ([{"image": "data:image/png;base64,x"}], r"line 1: missing field 'request' \(column 'request' or 'prompt'\)"),
        ([{"request": "  ", "image": "a.png"}], r"field 'request': the request must be a non-empty string"),
        ([{"request": "ok", "image": {"foo": 1}}], r"neither 'bytes' nor 'path'"),
        ([{"request": "ok", "image": 3}], r"cannot read an image from a int"),
    ],
)
def test_bad_rows_name_row_and_field(tmp_path, rows, message):
    f = _jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=message):
        load_samples(f)


def test_bad_label_and_missing_pair_image(tmp_path):
    img = base64.b64encode(RED).decode()
    f = _jsonl(
        tmp_path / "p.jsonl", [{"request": "r", "image_a": {"bytes": img}, "image_b": {"bytes": img}, "label": 1}]
    )
    with pytest.raises(DataError, match=r"line 1, field 'label': expected 'A', 'B' or 'tie', got 1"):
        load_pairs(f)
    f = _jsonl(tmp_path / "q.jsonl", [{"request": "r", "image_a": {"bytes": img}}])
    with pytest.raises(DataError, match=r"line 1: missing field 'image_b'"):
        load_pairs(f)


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_samples(tmp_path / "nope.jsonl")
    (tmp_path / "d.csv").write_text("request,image\n")
    with pytest.raises(DataError, match=r"unknown data format '.csv'"):
        load_samples(tmp_path / "d.csv")
    (tmp_path / "broken.jsonl").write_text('{"request": "a", "image": "x.png"}\n\n{not json\n')
    (tmp_path / "x.png").write_bytes(RED)
    with pytest.raises(DataError, match=r"line 3: not valid JSON"):
        load_samples(tmp_path / "broken.jsonl")
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    with pytest.raises(DataError, match="line 1: expected a JSON object"):
        load_samples(tmp_path / "list.jsonl")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_samples(tmp_path / "bad.parquet")


def test_cell_images_flatten_every_cell_layout(tmp_path):
    np = pytest.importorskip("numpy")
    b64 = base64.b64encode(RED).decode()
    assert cell_images({"bytes": b64, "path": None}) == [RED]  # JSON carries struct bytes as base64
    assert cell_images({"bytes": None, "path": None}) == [] and cell_images(b"") == [] and cell_images("") == []
    assert cell_images(float("nan")) == []
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = {"bytes": GREEN}, [BLUE]
    assert cell_images([arr, (RED,)]) == [GREEN, BLUE, RED]
    assert cell_images({"path": "a/b.png"}, tmp_path) == [str(tmp_path / "a" / "b.png")]
    with pytest.raises(DataError, match=r"cell 'x': cannot read an image from a float"):
        cell_images([1.5], where="cell 'x'")


def test_cell_image_wants_exactly_one_and_checks_local_files(tmp_path):
    (tmp_path / "red.png").write_bytes(RED)
    assert cell_image({"path": "red.png"}, "c", tmp_path, local_files=True) == tmp_path / "red.png"
    assert cell_image("red.png", "c", tmp_path) == str(tmp_path / "red.png")  # not checked without local_files
    with pytest.raises(DataError, match="c holds 2 images"):
        cell_image([RED, GREEN], "c")
    with pytest.raises(DataError, match="c holds 0 images"):
        cell_image({"bytes": None, "path": None}, "c")
    with pytest.raises(DataError, match="image file not found"):
        cell_image("gone.png", "c", tmp_path, local_files=True)
    with pytest.raises(DataError, match="relative image path 'red.png'"):
        cell_image("red.png", "c", local_files=True)
