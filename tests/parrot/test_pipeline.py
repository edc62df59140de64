"""Resumable stages: the whole run, reruns, a crash mid-batch, SIGKILL mid-run, the direct baseline, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.parrot.cli import app
from rationalrewards.parrot.config import HindsightConfig, PipelineConfig
from rationalrewards.parrot.hindsight import LABEL_STATEMENTS
from rationalrewards.parrot.pipeline import load_pairs, run_hindsight, run_pipeline
from rationalrewards.store import JsonlStore
from rationalrewards.testing.loopback import ScriptedChatServer, answer
from rationalrewards.testing.parrot_teacher import KEPT_SCENARIOS, SCENARIOS, ScriptedTeacher, make_pairs

ITEMS = [(label, [s]) for s in SCENARIOS for label in ("A", "B", "tie")]


def _records(path: Path) -> dict[str, str]:
    return {k: json.dumps(v, sort_keys=True) for k, v in JsonlStore(path).records().items()}


def _dataset_rows(folder: Path) -> list[str]:
    ds = datasets.load_from_disk(str(folder))
    out = []
    for split in ds:
        for row in ds[split]:
            row = dict(row, images=[im.tobytes() for im in row["images"]], split=split)
            out.append(repr(sorted(row.items())))
    return sorted(out)


def _config(batch: int = 4) -> PipelineConfig:
    cfg = PipelineConfig()
    cfg.hindsight.batch_size = batch
    cfg.consistency.batch_size = batch
    cfg.export.formats = ("hf",)
    return cfg


def test_full_run_then_rerun_skips_everything(tmp_path, known_set):
    pairs, plan, items = known_set
    teacher = ScriptedTeacher(plan)
    result = run_pipeline(pairs, tmp_path, _config(), backend=teacher.backend(), progress=False)
    n_kept = sum(s[0] in KEPT_SCENARIOS for _, s in items)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["hindsight"]["processed"] == len(pairs)
    assert summary["hindsight"]["failures"] == {"no rationale parsed": 3}
    assert summary["filter"]["report"]["rationales"] == {"n": 18, "kept": n_kept, "retention": n_kept / 18}
    assert summary["export"]["examples"] == {"train/pairwise": n_kept, "train/pointwise": 2 * n_kept}
    assert result["_objects"]["report"].pairs.kept == n_kept
    calls = (teacher.hindsight_calls, teacher.consistency_calls)
    again = run_pipeline(pairs, tmp_path, _config(), backend=teacher.backend(), progress=False)
    assert (teacher.hindsight_calls, teacher.consistency_calls) == calls
    assert again["hindsight"]["skipped"] == len(pairs) and again["filter"]["skipped"] == len(pairs)
    assert again["filter"]["report"] == summary["filter"]["report"]


def test_crash_mid_batch_then_resume_gives_the_same_output(tmp_path, known_set):
    pairs, plan, _ = known_set
    clean = tmp_path / "clean"
    run_pipeline(pairs, clean, _config(batch=3), backend=ScriptedTeacher(plan).backend(), progress=False)

    crashed = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(
            pairs, crashed, _config(batch=3), backend=ScriptedTeacher(plan, interrupt_after=7).backend(), progress=False
        )
    assert len(JsonlStore(crashed / "hindsight.jsonl")) == 6  # two whole batches of 3; the third was in flight
    resumed = ScriptedTeacher(plan)
    run_pipeline(pairs, crashed, _config(batch=3), backend=resumed.backend(), progress=False)
    assert resumed.hindsight_calls == len(pairs) - 6
    for name in ("hindsight.jsonl", "filter.jsonl"):
        assert _records(crashed / name) == _records(clean / name)
    assert _dataset_rows(crashed / "sft" / "hf") == _dataset_rows(clean / "sft" / "hf")


def _write_parquet(pairs, path: Path) -> Path:
    from rationalrewards.images import to_png_bytes

    table = pa.table(
        {
            "request": [p.request for p in pairs],
            "image_a": [to_png_bytes(p.image_a) for p in pairs],
            "image_b": [to_png_bytes(p.image_b) for p in pairs],
            "source": [to_png_bytes(p.source) if p.source is not None else None for p in pairs],
            "label": [p.label for p in pairs],
            "source_dataset": [p.meta["source_dataset"] for p in pairs],
        }
    )
    pq.write_table(table, path)
    return path


_CHILD = """
import sys
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.parrot.config import PipelineConfig
from rationalrewards.parrot.pipeline import load_pairs, run_pipeline
from rationalrewards.testing.parrot_teacher import ScriptedTeacher, SCENARIOS, make_pairs

items = [(label, [s]) for s in SCENARIOS for label in ("A", "B", "tie")]
_, plan = make_pairs(items)
cfg = PipelineConfig()
cfg.hindsight.batch_size = cfg.consistency.batch_size = 2
cfg.export.formats = ("hf",)
backend = ScriptedBackend(ScriptedTeacher(plan), name="scripted-teacher", delay_s=float(sys.argv[3]))
run_pipeline(load_pairs(sys.argv[1]), sys.argv[2], cfg, backend=backend, progress=False)
"""


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_mid_run_then_resume(tmp_path):
    """Killed mid-filter (hindsight done, export not started); the rerun completes to the uninterrupted output."""
    pairs, _ = make_pairs(ITEMS)
    data = _write_parquet(pairs, tmp_path / "pairs.parquet")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(data), str(clean), "0"], check=True, env=env, timeout=120)

    work = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(data), str(work), "0.08"], env=env)
    try:
        deadline = time.monotonic() + 90
        while _lines(work / "filter.jsonl") < 4:
            assert proc.poll() is None, "the child finished before it could be killed"
            assert time.monotonic() < deadline, "the child never got far enough"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (work / "summary.json").exists()
    subprocess.run([sys.executable, str(script), str(data), str(work), "0"], check=True, env=env, timeout=120)
    for name in ("hindsight.jsonl", "filter.jsonl"):
        assert _records(work / name) == _records(clean / name)
    assert _dataset_rows(work / "sft" / "hf") == _dataset_rows(clean / "sft" / "hf")


def test_direct_baseline_has_no_label_and_no_filter(tmp_path, known_set):
    pairs, plan, items = known_set
    teacher = ScriptedTeacher(plan)
    backend = teacher.backend()
    result = run_pipeline(pairs, tmp_path, _config(), mode="direct", backend=backend, progress=False)
    prompts = ["\n".join(m.text for m in c.messages) for batch in backend.calls for c in batch]
    assert prompts and not any(s in p for p in prompts for s in LABEL_STATEMENTS.values())
    assert teacher.consistency_calls == 0
    parsed = sum(s[0] != "garbage" for _, s in items)
    assert result["filter"]["report"]["rationales"]["kept"] == parsed
    assert result["export"]["examples"]["train/pairwise"] == parsed
    assert {r["mode"] for r in JsonlStore(tmp_path / "hindsight.jsonl")} == {"direct"}


def test_teacher_errors_are_retried_on_the_next_run(tmp_path, known_set):
    pairs, plan, _ = known_set
    clean = tmp_path / "clean"
    run_pipeline(pairs, clean, _config(), backend=ScriptedTeacher(plan).backend(), progress=False)
    down = {pairs[1].request, pairs[4].request}
    teacher = ScriptedTeacher(plan)

    def flaky(conv, i):  # the endpoint fails for two requests (hindsight and consistency alike)
        if any(r in conv.messages[-1].text for r in down):
            raise ConnectionError("endpoint down")
        return teacher(conv, i)

    work = tmp_path / "work"
    backend = ScriptedBackend(flaky, name="scripted-teacher")
    first = run_pipeline(pairs, work, _config(), backend=backend, progress=False)
    assert first["hindsight"]["failures"]["teacher error"] == 2
    assert _records(work / "hindsight.jsonl") != _records(clean / "hindsight.jsonl")
    second = run_pipeline(pairs, work, _config(), backend=ScriptedTeacher(plan).backend(), progress=False)
    assert second["hindsight"]["processed"] == 2 and second["hindsight"]["skipped"] == len(pairs) - 2
    for name in ("hindsight.jsonl", "filter.jsonl"):
        assert _records(work / name) == _records(clean / name)
    assert second["filter"]["report"] == json.loads((clean / "summary.json").read_text())["filter"]["report"]


def test_settings_change_makes_new_records(tmp_path, known_set):
    pairs, plan, _ = known_set
    out = tmp_path / "h.jsonl"
    backend = ScriptedTeacher(plan).backend()
    run_hindsight(pairs[:4], out, HindsightConfig(), backend=backend, progress=False)
    s = run_hindsight(pairs[:4], out, HindsightConfig(temperature=0.2), backend=backend, progress=False)
    assert s.skipped == 0 and s.processed == 4 and len(JsonlStore(out)) == 8


@pytest.fixture
def teacher_urls(known_set):
    plan = known_set[1]
    teacher = ScriptedTeacher(plan)

    def reply(payload: dict, i: int) -> str:
        return teacher(Conversation.from_openai(payload["messages"]), i)

    with ScriptedChatServer(answer(reply)) as one, ScriptedChatServer(answer(reply)) as two:
        yield f"openai:{one.url},{two.url}", (one, two)


def test_cli_stages_over_http_teachers(tmp_path, known_set, teacher_urls):
    pairs, _, items = known_set
    spec, servers = teacher_urls
    data = _write_parquet(pairs, tmp_path / "pairs.parquet")
    runner = CliRunner()
    work = tmp_path / "work"
    res = runner.invoke(
        app,
        ["hindsight", str(data), "--out", str(work / "hindsight.jsonl"), "-t", spec, "--no-progress", "--limit", "9"],
    )
    assert res.exit_code == 0, res.output
    assert "9 processed" in res.output
    res = runner.invoke(app, ["run", str(data), "--out", str(work), "-t", spec, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "9 already done" in res.output  # the run resumed what the hindsight command wrote
    n_kept = sum(s[0] in KEPT_SCENARIOS for _, s in items)
    assert f"({n_kept}/{len(items)})" in res.output
    assert all(len(s.chat_requests) > 0 for s in servers)  # requests went to both base URLs
    report = tmp_path / "report.json"
    res = runner.invoke(
        app,
        ["filter", str(data), "--hindsight", str(work / "hindsight.jsonl"), "--out", str(tmp_path / "f.jsonl")]
        + ["--checks", "scores", "--report", str(report), "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(report.read_text())["rejected"] == {"scores contradict label": 3, "parse failed": 3}
    res = runner.invoke(
        app,
        ["export", str(data), "--filtered", str(work / "filter.jsonl"), "--out", str(tmp_path / "sft")]
        + ["--pairwise-fraction", "0.5", "--formats", "hf"],
    )
    assert res.exit_code == 0, res.output
    assert len(datasets.load_from_disk(str(tmp_path / "sft" / "hf"))["train"]) == 2 * n_kept


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["hindsight", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "h.jsonl")])
    assert res.exit_code == 1 and "data not found" in res.output
    pairs, _ = make_pairs(ITEMS[:2])
    data = _write_parquet(pairs, tmp_path / "p.parquet")
    res = runner.invoke(app, ["hindsight", str(data), "--out", str(tmp_path / "h.jsonl"), "--mode", "sideways"])
    assert res.exit_code == 1 and "mode must be one of" in res.output
    assert load_pairs(data)[0].meta["source_dataset"] == "alpha"
