"""run_eval end to end with a scripted judge that reads planted pixels: accuracy, resume, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rationalrewards.evaluate.report import report
from rationalrewards.evaluate.runner import MANIFEST, RAW, rescore, run_eval
from rationalrewards.testing.eval_bench import (
    editreward_rows,
    genai_t2i_rows,
    mmrb2_rows,
    write_parquet,
)

# (quality left, quality right, vote): the honest judge prefers the higher quality, tie when equal
GENAI = [
    (4, 1, "leftvote"),  # A / A ok
    (1, 3, "rightvote"),  # B / B ok
    (2, 2, "tievote"),  # tie / tie ok
    (3, 1, "rightvote"),  # A / B x
    (2, 2, "bothbad_vote"),  # tie / tie ok
    (1, 2, "leftvote"),  # B / A x
]


def _conversations(backend) -> int:
    return sum(len(batch) for batch in backend.calls)


def _acc(metrics: dict, protocol: str, view: str = "overall") -> tuple[int, int]:
    a = metrics["views"][view]["protocols"][protocol]["accuracy"]
    return a["correct"], a["total"]


@pytest.fixture
def genai_file(tmp_path: Path) -> Path:
    return write_parquet(tmp_path / "genai.parquet", genai_t2i_rows(GENAI))


def test_pairwise_accuracy_matches_hand_count(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, backend = scripted()
    result = run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", progress=False)
    assert _acc(result.metrics, "genai-4way") == (4, 6)
    assert _acc(result.metrics, "genai-noties") == (2, 4)  # ties dropped: ok, ok, x, x
    assert _conversations(backend) == 6  # one order: one compare call per pair
    assert result.summary.processed == 6 and result.summary.failed == 0
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert manifest["model"] == "scripted" and manifest["mode"] == "pairwise" and manifest["both_orders"] is False
    assert manifest["template"]["name"] == "request-first" and manifest["template"]["version"]
    assert manifest["protocols"] == ["genai-4way", "genai-noties"]
    assert manifest["created"] and manifest["loader"]["labels"] == {"A": 2, "B": 2, "tie": 2}
    raw = [json.loads(x) for x in (tmp_path / "run" / RAW).read_text().splitlines()]
    assert len(raw) == 6 and all(r["forward"]["raw_text"].startswith("# Detailed Judgement") for r in raw)


def test_mmrb2_both_orders_and_position_bias(tmp_path: Path, scripted) -> None:
    rows = mmrb2_rows([(4, 1, "A", False), (1, 4, "B", False), (3, 2, "B", True), (2, 3, "B", True)])
    data = write_parquet(tmp_path / "mmrb2.parquet", rows)
    honest, hb = scripted()
    res = run_eval("mmrb2", data, honest, tmp_path / "honest", progress=False)
    # the honest judge is right on p0, p1, p3 in both orders and wrong on p2 in both: 6/8
    assert _acc(res.metrics, "mmrb2") == (6, 8)
    assert _conversations(hb) == 8  # both orders by default for MMRB2
    by = res.metrics["views"]["overall"]["protocols"]["mmrb2"]["by"]
    assert (by["subset=t2i"]["correct"], by["subset=edit"]["correct"]) == (4, 2)
    assert res.metrics["diagnostics"]["position_bias"]["flip_rate"] == 0.0

    biased, _ = scripted(first_slot_bias=True)
    res = run_eval("mmrb2", data, biased, tmp_path / "biased", progress=False)
    # always "A": right in exactly one order of every pair
    assert _acc(res.metrics, "mmrb2") == (4, 8)
    pb = res.metrics["diagnostics"]["position_bias"]
    assert pb["flip_rate"] == 1.0 and pb["first_position_rate"] == 1.0
    # the scores stay honest, so the score-based views are unaffected by the bias
    assert _acc(res.metrics, "mmrb2", "text") == (6, 8)


def test_resume_skips_done_pairs_and_rerun_only_rescores(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, backend = scripted()
    run_dir = tmp_path / "run"
    first = run_eval("genai-bench-t2i", genai_file, model, run_dir, limit=2, progress=False)
    assert first.metrics["n_pairs"] == 2 and _conversations(backend) == 2
    full = run_eval("genai-bench-t2i", genai_file, model, run_dir, progress=False)
    assert _conversations(backend) == 6  # only the 4 new pairs were asked
    assert full.summary.skipped == 2 and full.summary.processed == 4
    again = run_eval("genai-bench-t2i", genai_file, model, run_dir, progress=False)
    assert _conversations(backend) == 6 and again.summary is None  # no backend call at all
    assert again.metrics["views"] == full.metrics["views"]


def test_a_finished_run_never_builds_the_model(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, backend = scripted()
    backend.name = "nosuch:model"  # what the manifest records as the model spec
    run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", progress=False)
    # the same spec as a string: loading it would fail, but nothing is left to ask
    res = run_eval("genai-bench-t2i", genai_file, "nosuch:model", tmp_path / "run", progress=False)
    assert res.summary is None and _acc(res.metrics, "genai-4way") == (4, 6)
    with pytest.raises(ValueError, match="unknown backend .nosuch."):
        run_eval("genai-bench-t2i", genai_file, "nosuch:model", tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()  # a mistyped spec leaves no empty run folder behind


class _CrashingModel:
    """Delegates to a real model but raises on its second compare call (a crash mid-run)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0
        self.backend, self.template, self.generation = inner.backend, inner.template, inner.generation

    def compare(self, pairs, both_orders=False):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("killed")
        return self.inner.compare(pairs, both_orders=both_orders)

    def critique(self, samples):
        return self.inner.critique(samples)


def test_crash_loses_nothing_done(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, backend = scripted()
    with pytest.raises(RuntimeError, match="killed"):
        run_eval("genai-bench-t2i", genai_file, _CrashingModel(model), tmp_path / "run", batch_size=2, progress=False)
    assert len((tmp_path / "run" / RAW).read_text().splitlines()) == 2
    res = run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", batch_size=2, progress=False)
    assert res.summary.skipped == 2 and _conversations(backend) == 6
    assert _acc(res.metrics, "genai-4way") == (4, 6)


def test_other_settings_in_the_same_folder_are_refused(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, _ = scripted()
    run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="mode: 'pairwise' -> 'pointwise'"):
        run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", mode="pointwise", progress=False)


def test_pointwise_mode(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, backend = scripted()
    res = run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", mode="pointwise", progress=False)
    assert _conversations(backend) == 12  # two critiques per pair
    # scores equal the planted qualities, so the verdicts equal the honest pairwise ones
    assert _acc(res.metrics, "genai-4way") == (4, 6)
    assert res.metrics["diagnostics"]["position_bias"] is None
    with pytest.raises(ValueError, match="pairwise mode only"):
        run_eval("genai-bench-t2i", genai_file, model, tmp_path / "x", mode="pointwise", both_orders=True)


def test_editreward_group_accuracy_end_to_end(tmp_path: Path, scripted) -> None:
    groups = [
        ("g2", [3, 1], [("AvsB", "A>B")]),  # ok -> group ok
        ("g3", [1, 2, 4], [("AvsB", "B>A"), ("AvsC", "C>A"), ("BvsC", "B>C")]),  # ok, ok, x -> group x
        ("h3", [2, 2, 1], [("AvsB", "A=B"), ("AvsC", "A>C"), ("BvsC", "B>C")]),  # ok, ok, ok -> group ok
    ]
    data = write_parquet(tmp_path / "er.parquet", editreward_rows(groups))
    model, _ = scripted()
    res = run_eval("editreward-bench", data, model, tmp_path / "run", progress=False)
    proto = res.metrics["views"]["overall"]["protocols"]["editreward"]
    assert (proto["accuracy"]["correct"], proto["accuracy"]["total"]) == (6, 7)
    assert (proto["group"]["accuracy"]["correct"], proto["group"]["accuracy"]["total"]) == (2, 3)
    assert (proto["by"]["k=3"]["correct"], proto["by"]["k=3"]["total"]) == (5, 6)


def test_reports_and_rescore(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, backend = scripted()
    res = run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", progress=False)
    md = res.reports["markdown"].read_text()
    four_way = res.metrics["views"]["overall"]["protocols"]["genai-4way"]["accuracy"]
    assert (
        f"| overall | genai-4way | 66.7 [{100 * four_way['ci_low']:.1f}, {100 * four_way['ci_high']:.1f}] | 6 | 6 |"
        in md
    )
    assert "genai-noties | 50.0 [" in md and "position bias" in md and "Tie threshold" in md
    html = res.reports["html"].read_text()
    assert html.count('src="data:image/png;base64,') == 3  # accuracy, ε sweep, histograms
    # the two wrong pairs are the worst disagreements, each shown with both images
    assert html.count('src="data:image/jpeg;base64,') == 4
    assert "prompt 3" in html and "prompt 5" in html and "prompt 0" not in html
    worst = json.loads((tmp_path / "run" / "worst.json").read_text())
    assert [w["request"] for w in worst] == ["prompt 3", "prompt 5"]  # margin 2/3 before 1/3

    calls = _conversations(backend)
    again = rescore(tmp_path / "run", reparse=True)
    assert again.metrics["reparsed"] == 6 and _conversations(backend) == calls
    assert again.metrics["views"] == res.metrics["views"]
    # rescoring without the data keeps the thumbnails made earlier
    assert again.reports["html"].read_text().count('src="data:image/jpeg;base64,') == 4


def test_report_compares_runs_without_recomputing(tmp_path: Path, genai_file: Path, scripted) -> None:
    honest, _ = scripted()
    biased, _ = scripted(first_slot_bias=True)
    biased.backend.name = "biased"
    run_eval("genai-bench-t2i", genai_file, honest, tmp_path / "runs" / "honest", progress=False)
    run_eval("genai-bench-t2i", genai_file, biased, tmp_path / "runs" / "biased", progress=False)
    md, html = report([tmp_path / "runs"], out=tmp_path / "cmp")
    assert "| benchmark · metric | biased | scripted |" in md
    # always "A": right on the two leftvote pairs only -> 2/6 with ties, 2/4 without
    assert "| genai-bench-t2i · genai-4way | 33.3 [" in md and "| 66.7 [" in md
    assert (tmp_path / "cmp" / "report.html").read_text() == html
    assert 'src="data:image/png;base64,' in html and "honest/report.html" in html
    with pytest.raises(FileNotFoundError):
        report([tmp_path / "nothing-here"])


def test_unparseable_outputs_are_counted_not_scored(tmp_path: Path, genai_file: Path, scripted) -> None:
    model, _ = scripted(garble=lambda qs: qs[-2] == 4)  # pair 0 gets text that does not parse
    res = run_eval("genai-bench-t2i", genai_file, model, tmp_path / "run", progress=False)
    assert res.summary.failures == {"parse failed": 1}
    assert res.metrics["diagnostics"]["parse"]["failed"] == 1
    assert _acc(res.metrics, "genai-4way") == (3, 6)  # the unparsed verdict counts as wrong
