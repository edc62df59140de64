"""The ``world`` command group, through typer's CliRunner."""

import json

from typer.testing import CliRunner

from rationalrewards.synthetic import load_bench, load_pairs
from rationalrewards.synthetic.cli import app

runner = CliRunner()


def test_sample_writes_images_requests_and_scores(tmp_path):
    res = runner.invoke(app, ["sample", "-n", "4", "-o", str(tmp_path / "s"), "--seed", "1", "--task", "both"])
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert len(index) == 4
    for e in index:
        assert (tmp_path / "s" / e["file"]).is_file() and e["request"]
        assert set(e["scores"]) >= {"text_faithfulness", "physical_quality"}
    assert any("source_file" in e for e in index)
    assert (tmp_path / "s" / "index.world.jsonl").is_file()


def test_make_pairs_is_byte_identical_for_a_seed(tmp_path):
    outs = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.parquet"
        res = runner.invoke(app, ["make-pairs", "-n", "5", "-o", str(path), "--seed", "9", "--task", "edit"])
        assert res.exit_code == 0, res.output
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    pairs = load_pairs(tmp_path / "a.parquet")
    assert len(pairs) == 5 and all(p.source is not None for p in pairs)
    assert (tmp_path / "a.world.jsonl").is_file()


def test_make_bench(tmp_path):
    res = runner.invoke(app, ["make-bench", "-n", "4", "-o", str(tmp_path / "bench.jsonl"), "--task", "both"])
    assert res.exit_code == 0, res.output
    assert [i.task for i in load_bench(tmp_path / "bench.jsonl")] == ["t2i", "edit", "t2i", "edit"]


def test_bad_task_is_an_error(tmp_path):
    res = runner.invoke(app, ["make-pairs", "-n", "2", "-o", str(tmp_path / "x.parquet"), "--task", "video"])
    assert res.exit_code != 0
    assert not (tmp_path / "x.parquet").exists()
