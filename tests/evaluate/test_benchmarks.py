"""Benchmark adapters on small files in each benchmark's public layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rationalrewards.evaluate.benchmarks import editreward_label, image_list, load_benchmark, one_image
from rationalrewards.testing.eval_bench import (
    editreward_rows,
    genai_edit_rows,
    genai_t2i_rows,
    mmrb2_rows,
    planted_png,
    read_planted,
    write_parquet,
)


def test_genai_t2i_every_vote_spelling(tmp_path: Path) -> None:
    rows = genai_t2i_rows([(4, 1, "leftvote"), (1, 3, "rightvote"), (2, 2, "tievote"), (1, 1, "bothbad_vote")])
    rows.append({**rows[0], "prompt": "spaced", "vote_type": " LeftVote "})
    data = load_benchmark("genai-bench-t2i", write_parquet(tmp_path / "t2i.parquet", rows))
    assert [p.label for p in data.pairs] == ["A", "B", "tie", "tie", "A"]
    assert [p.meta["vote_type"] for p in data.pairs][:4] == ["leftvote", "rightvote", "tievote", "bothbad_vote"]
    first = data.pairs[0]
    assert first.source is None and first.task.value == "t2i"
    assert read_planted(first.image_a)[0] == 4 and read_planted(first.image_b)[0] == 1
    assert data.stats.labels == {"A": 2, "B": 1, "tie": 2}
    assert len({p.id for p in data.pairs}) == 5  # ids unique and stable
    again = load_benchmark("genai-bench-t2i", tmp_path / "t2i.parquet")
    assert [p.id for p in again.pairs] == [p.id for p in data.pairs]


def test_genai_edit_and_autodetect(tmp_path: Path) -> None:
    write_parquet(tmp_path / "g" / "image_edition" / "test.parquet", genai_edit_rows([(3, 2, "leftvote")]))
    write_parquet(tmp_path / "g" / "image_generation" / "test.parquet", genai_t2i_rows([(1, 2, "rightvote")]))
    edit = load_benchmark("genai-bench-edit", tmp_path / "g" / "image_edition")
    (pair,) = edit.pairs
    assert pair.task.value == "edit" and read_planted(pair.source)[2] is True
    assert pair.request == "edit 0" and pair.label == "A"
    both = load_benchmark("genai-bench", tmp_path / "g")
    assert sorted(p.meta["subset"] for p in both.pairs) == ["edit", "t2i"]


def test_unknown_label_names_row_and_spellings(tmp_path: Path) -> None:
    rows = genai_t2i_rows([(1, 2, "leftvote"), (1, 2, "maybe")])
    with pytest.raises(ValueError, match=r"row 1.*'maybe'.*leftvote"):
        load_benchmark("genai-bench-t2i", write_parquet(tmp_path / "bad.parquet", rows))


def test_mmrb2_list_columns_subsets_and_placeholders(tmp_path: Path) -> None:
    rows = mmrb2_rows([(4, 2, "A", False), (1, 3, "b", True), (2, 3, " B ", False)])
    path = write_parquet(tmp_path / "t2i" / "test.parquet", rows)
    data = load_benchmark("mmrb2", path)
    assert [p.label for p in data.pairs] == ["A", "B", "B"]
    assert [p.id for p in data.pairs] == ["p0", "p1", "p2"]
    edit = data.pairs[1]
    assert edit.meta["subset"] == "edit" and edit.source is not None
    assert "<image_1>" not in edit.request and edit.request == "Edit so that thing 1"
    assert read_planted(edit.image_b)[0] == 3
    assert data.spec.both_orders is True
    only_edit = load_benchmark("mmrb2", path, subset="edit")
    assert [p.id for p in only_edit.pairs] == ["p1"]
    assert only_edit.stats.skipped == {"not in subset edit": 2}


def test_mmrb2_through_pandas_numpy_object_arrays(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    path = write_parquet(tmp_path / "m.parquet", mmrb2_rows([(4, 2, "A", False), (1, 3, "B", True)]))
    df = pd.read_parquet(path)
    assert isinstance(df["response_a_images"].iloc[0], np.ndarray)  # the layout under test
    from_df = load_benchmark("mmrb2", df)
    from_file = load_benchmark("mmrb2", path)
    for a, b in zip(from_df.pairs, from_file.pairs, strict=True):
        assert (a.id, a.label, a.request) == (b.id, b.label, b.request)
        assert read_planted(a.image_a) == read_planted(b.image_a)
        assert (a.source is None) == (b.source is None)


def test_mmrb2_text_subsets_are_skipped_and_multi_image_responses_rejected(tmp_path: Path) -> None:
    write_parquet(tmp_path / "mm" / "t2i" / "a.parquet", mmrb2_rows([(4, 2, "A", False)]))
    write_parquet(tmp_path / "mm" / "interleaved" / "a.parquet", [{**mmrb2_rows([(1, 1, "A", False)])[0]}])
    data = load_benchmark("mmrb2", tmp_path / "mm")
    assert len(data.pairs) == 1
    assert sum(data.stats.skipped.values()) == 1
    two = mmrb2_rows([(4, 2, "A", False)])[0]
    two["response_a_images"] = two["response_a_images"] * 2
    with pytest.raises(ValueError, match="response_a_images.*2 images"):
        load_benchmark("mmrb2", write_parquet(tmp_path / "two.parquet", [two]))


GROUPS = [
    ("g2", [3, 1], [("AvsB", "A>B")]),
    ("g3", [2, 4, 1], [("AvsB", "B>A"), ("AvsC", "C>A"), ("BvsC", "B>C")]),
    (
        "g4",
        [1, 2, 3, 4],
        [("AvsB", "A=B"), ("AvsC", "C>A"), ("AvsD", "D>A"), ("BvsC", "B<C"), ("BvsD", "B>D"), ("CvsD", "C = D")],
    ),
]


def test_editreward_groups_labels_and_k(tmp_path: Path) -> None:
    data = load_benchmark("editreward-bench", write_parquet(tmp_path / "e.parquet", editreward_rows(GROUPS)))
    labels = {p.id: p.label for p in data.pairs}
    assert labels == {
        "g2_AvsB": "A",
        "g3_AvsB": "B",
        "g3_AvsC": "B",  # C>A with candidate_1 = A, candidate_2 = C
        "g3_BvsC": "A",
        "g4_AvsB": "tie",
        "g4_AvsC": "B",
        "g4_AvsD": "B",
        "g4_BvsC": "B",  # B<C
        "g4_BvsD": "A",
        "g4_CvsD": "tie",
    }
    assert {p.meta["group"] for p in data.pairs} == {"g2", "g3", "g4"}
    assert {p.meta["group"]: p.meta["k"] for p in data.pairs} == {"g2": 2, "g3": 3, "g4": 4}
    assert all(p.task.value == "edit" for p in data.pairs)
    # candidate_2 of "AvsC" is candidate C (quality 1 in group g3)
    g3c = next(p for p in data.pairs if p.id == "g3_AvsC")
    assert read_planted(g3c.image_b)[0] == 1


def test_editreward_limit_keeps_whole_groups_and_infers_k(tmp_path: Path) -> None:
    rows = editreward_rows(GROUPS)
    for r in rows:
        del r["dataset"]
    data = load_benchmark("editreward-bench", write_parquet(tmp_path / "e.parquet", rows), limit=2)
    assert [p.id for p in data.pairs] == ["g2_AvsB", "g3_AvsB", "g3_AvsC", "g3_BvsC"]
    assert [p.meta["k"] for p in data.pairs] == [2, 3, 3, 3]
    assert data.stats.notes  # K inference is reported


@pytest.mark.parametrize(
    ("ranking", "comparison", "label"),
    [("A>B", "AvsB", "A"), ("B>A", None, "B"), ("a = b", "AvsB", "tie"), ("D>B", "BvsD", "B"), ("C<A", "AvsC", "A")],
)
def test_editreward_label_spellings(ranking: str, comparison: str | None, label: str) -> None:
    assert editreward_label(ranking, comparison) == label


def test_editreward_label_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not compare"):
        editreward_label("C>A", "AvsB")


def test_generic_pairs_jsonl_with_paths_and_mappings(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "l.png").write_bytes(planted_png(4, 1))
    (tmp_path / "img" / "r.png").write_bytes(planted_png(2, 1))
    lines = [
        {"prompt": "p1", "left": "img/l.png", "right": "img/r.png", "winner": 1},
        {"prompt": "p2", "left": "img/r.png", "right": "img/l.png", "winner": 2},
        {"prompt": "p3", "left": "img/r.png", "right": "img/l.png", "winner": "tie"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    data = load_benchmark(
        "pairs",
        path,
        columns={"request": "prompt", "image_a": "left", "image_b": "right", "label": "winner"},
        labels={"1": "A", "2": "B"},
    )
    assert [p.label for p in data.pairs] == ["A", "B", "tie"]
    assert read_planted(data.pairs[0].image_a)[0] == 4  # relative path resolved against the file
    with pytest.raises(ValueError, match="unknown label 1"):
        load_benchmark(
            "pairs", path, columns={"request": "prompt", "image_a": "left", "image_b": "right", "label": "winner"}
        )


def test_synthetic_world_layout(tmp_path: Path) -> None:
    rows = [
        {
            "request": "two red squares",
            "image_a": {"bytes": planted_png(3, 0), "path": None},
            "image_b": {"bytes": planted_png(1, 0), "path": None},
            "source": None,
            "label": "A",
            "id": "w0",
            "meta": json.dumps({"utility_a": 0.8}),
        },
        {
            "request": "make it blue",
            "image_a": {"bytes": planted_png(1, 1), "path": None},
            "image_b": {"bytes": planted_png(2, 1), "path": None},
            "source": {"bytes": planted_png(1, 1, source=True), "path": None},
            "label": "tie",
            "id": "w1",
            "meta": json.dumps({}),
        },
    ]
    data = load_benchmark("synthetic", write_parquet(tmp_path / "w.parquet", rows))
    assert [(p.id, p.label, p.task.value) for p in data.pairs] == [("w0", "A", "t2i"), ("w1", "tie", "edit")]
    assert data.pairs[0].meta["utility_a"] == 0.8


def test_pairs_written_by_the_synthetic_world(tmp_path: Path) -> None:
    labeler = pytest.importorskip("rationalrewards.synthetic.labeler")
    pairs = labeler.make_pairs(4, seed=1, task="both")
    path = labeler.save_pairs(pairs, tmp_path / "pairs.parquet")
    data = load_benchmark("synthetic", path)
    assert [(p.id, p.label, p.task) for p in data.pairs] == [(p.key(), p.label, p.task) for p in pairs]
    assert all(labeler.EVAL_KEY not in p.meta for p in data.pairs)  # the truth never reaches a model
    assert {p.meta["subset"] for p in data.pairs} == {"t2i", "edit"}


def test_save_to_disk_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    import io

    from PIL import Image

    def pil(q: int) -> Image.Image:
        return Image.open(io.BytesIO(planted_png(q, 3))).convert("RGB")

    ds = datasets.Dataset.from_dict(
        {"prompt": ["p"], "left_image": [pil(4)], "right_image": [pil(1)], "vote_type": ["rightvote"]},
        features=datasets.Features(
            {
                "prompt": datasets.Value("string"),
                "left_image": datasets.Image(),
                "right_image": datasets.Image(),
                "vote_type": datasets.Value("string"),
            }
        ),
    )
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "ds"))
    (pair,) = load_benchmark("genai-bench-t2i", tmp_path / "ds").pairs
    assert pair.label == "B" and read_planted(pair.image_a)[0] == 4


def test_image_cells_in_every_container(tmp_path: Path) -> None:
    png = planted_png(2, 9)
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = {"bytes": png, "path": "x.png"}, png
    assert len(image_list(arr)) == 2
    assert image_list(None) == [] and image_list([]) == [] and image_list({"bytes": None, "path": None}) == []
    assert image_list([[png], (png,)]) == [png, png]
    one = np.empty(1, dtype=object)
    one[0] = {"bytes": png}
    assert one_image(one, "c") == png
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    assert image_list(pixels)[0] is pixels
    assert image_list("rel.png", tmp_path) == [str(tmp_path / "rel.png")]
    with pytest.raises(ValueError, match="exactly one"):
        one_image([png, png], "c")
