"""``rationalrewards demo``: GCR in the synthetic world end to end, with the truth beside the model's reward."""

from __future__ import annotations

import json
import re

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from rationalrewards.demo import DEFAULT_MODEL, demo_command, request_change, run_demo


def test_demo_writes_report_and_table(tmp_path):
    console = Console(record=True, width=220)
    out = tmp_path / "demo"
    result = run_demo(out, model=DEFAULT_MODEL, n_items=4, seed=0, rounds=3, console=console)
    assert [it.task for it in result.items] == ["t2i", "edit", "t2i", "edit"]
    report = result.report.read_text(encoding="utf-8")
    saved = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    assert saved["critic"] == result.critic and len(saved["items"]) == 4
    records = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for it, rec in zip(result.items, records, strict=True):
        traj = rec["trajectory"]
        assert traj["id"] == it.id and len(traj["rounds"]) == it.rounds
        for rnd in traj["rounds"]:
            for cand in rnd["candidates"]:
                assert (out / cand["image_path"]).is_file()
                assert f'src="{cand["image_path"]}"' in report  # every image of the item is shown
        # the true utility before and after sits in the item's header line
        assert f"true utility first <b>{it.utility_before:.3f}</b>" in report
        assert f"true utility kept <b>{it.utility_after:.3f}</b>" in report
    assert f"critic: {result.critic}".lower() in report.lower()
    text = console.export_text()
    assert f"critic {result.critic}" in text
    rows = [line for line in text.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert len(rows) == 4  # one row per item (its first line starts with the item number)
    for it in result.items:
        assert f"{it.utility_before:.2f}→{it.utility_after:.2f}" in text
    assert "report:" in text and str(result.report) in text.replace("\n", "")


def test_gcr_improves_true_utility_with_the_teacher(tmp_path):
    result = run_demo(tmp_path / "d", model=DEFAULT_MODEL, n_items=8, seed=0, rounds=4, quiet=True)
    assert result.critic_note is None
    before = [it.utility_before for it in result.items]
    after = [it.utility_after for it in result.items]
    assert sum(after) >= sum(before)
    assert any(a > b for a, b in zip(after, before, strict=True))
    # an item that stopped after one round kept its first image
    for it in result.items:
        if it.rounds == 1:
            assert it.utility_after == it.utility_before and it.changed == ""


def test_default_critic_is_the_teacher_and_is_named(tmp_path):
    console = Console(record=True, width=220)
    result = run_demo(tmp_path / "d", n_items=2, rounds=2, console=console)
    assert result.critic_note is None and DEFAULT_MODEL in result.critic
    assert f"critic {result.critic}" in console.export_text()


def test_rerun_replaces_a_demo_but_refuses_other_folders(tmp_path):
    out = tmp_path / "d"
    first = run_demo(out, model=DEFAULT_MODEL, n_items=2, rounds=2, quiet=True)
    second = run_demo(out, model=DEFAULT_MODEL, n_items=2, rounds=2, seed=1, quiet=True)
    assert [i.request for i in first.items] != [i.request for i in second.items]
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the earlier run's records were cleared, not mixed in
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        run_demo(other, model=DEFAULT_MODEL, n_items=1, quiet=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_demo_command(tmp_path):
    app = typer.Typer()
    app.command()(demo_command)
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["-o", str(out), "-m", DEFAULT_MODEL, "-n", "2", "--rounds", "2"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and "report:" in res.output
    bad = CliRunner().invoke(app, ["-o", str(out), "-m", "no-such-backend", "-n", "1"])
    assert bad.exit_code != 0


def test_request_change_names_the_constraints_made_explicit():
    old = "Draw two red circles."
    assert request_change(old, old) == ""
    new = "Draw exactly two red circles. There are 2 red circles in total."
    change = request_change(old, new)
    assert change.startswith("more explicit:") and "count red circle" in change
    assert request_change(old, "Render two red circles.") == "reworded"
