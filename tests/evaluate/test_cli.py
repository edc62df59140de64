"""``rationalrewards eval`` through typer's CliRunner, against real loopback chat servers judging planted pixels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rationalrewards.conversation import Conversation
from rationalrewards.evaluate.cli import app as eval_app
from rationalrewards.testing.eval_bench import genai_t2i_rows, planted_responder, write_parquet
from rationalrewards.testing.loopback import ScriptedChatServer, answer

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
GENAI = [(4, 1, "leftvote"), (1, 3, "rightvote"), (2, 2, "tievote"), (3, 1, "rightvote")]


def _root() -> typer.Typer:
    """The eval group mounted as the lead mounts it: ``rationalrewards eval ...``."""
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """root"""

    root.add_typer(eval_app, name="eval")
    return root


def _judge(**kw):
    respond = planted_responder(**kw)

    def text(payload: dict, i: int) -> str:
        return respond(Conversation.from_openai(payload["messages"]), i)

    return answer(text)


@pytest.fixture
def servers():
    with ScriptedChatServer(_judge()) as honest, ScriptedChatServer(_judge(first_slot_bias=True)) as biased:
        yield honest, biased


def test_eval_default_command_two_models_and_report(tmp_path: Path, servers) -> None:
    honest, biased = servers
    data = write_parquet(tmp_path / "genai.parquet", genai_t2i_rows(GENAI))
    runner = CliRunner()
    args = ["eval", "--bench", "genai-bench-t2i", "--data", str(data), "--no-progress", "-o", str(tmp_path / "out")]
    args += ["--model", f"openai:{honest.url}", "--model", f"openai:{biased.url}"]
    res = runner.invoke(_root(), args, env=ENV)
    assert res.exit_code == 0, res.output
    runs = sorted(p.parent for p in (tmp_path / "out").rglob("manifest.json"))
    assert len(runs) == 2  # one subfolder per model
    assert len(honest.chat_requests) == 4 and len(biased.chat_requests) == 4
    metrics = {
        json.loads((r / "manifest.json").read_text())["model"]: json.loads((r / "metrics.json").read_text())
        for r in runs
    }
    by_url = {("biased" if biased.url in k else "honest"): v for k, v in metrics.items()}
    acc = {k: v["views"]["overall"]["protocols"]["genai-4way"]["accuracy"]["correct"] for k, v in by_url.items()}
    assert acc == {"honest": 3, "biased": 1}  # honest: ok ok ok x; always-A: only the leftvote pair
    assert (tmp_path / "out" / "report.md").exists() and "genai-bench-t2i · genai-4way" in res.output

    # a rerun makes no requests; `eval report` compares the finished runs
    res = runner.invoke(_root(), args, env=ENV)
    assert res.exit_code == 0, res.output
    assert len(honest.chat_requests) == 4 and len(biased.chat_requests) == 4
    res = runner.invoke(_root(), ["eval", "report", *map(str, runs), "-o", str(tmp_path / "cmp")], env=ENV)
    assert res.exit_code == 0, res.output
    assert "| 75.0 [" in res.output and "| 25.0 [" in res.output
    assert (tmp_path / "cmp" / "report.html").exists()


def test_eval_run_subcommand_rescore_and_errors(tmp_path: Path, servers) -> None:
    honest, _ = servers
    data = write_parquet(tmp_path / "genai.parquet", genai_t2i_rows(GENAI))
    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(
        _root(),
        ["eval", "run", "-b", "genai-bench-t2i", "-d", str(data), "-m", f"openai:{honest.url}", "-o", str(out)]
        + ["--no-progress", "--mode", "pointwise"],
        env=ENV,
    )
    assert res.exit_code == 0, res.output
    assert len(honest.chat_requests) == 8  # pointwise: two critiques per pair
    res = runner.invoke(_root(), ["eval", "rescore", str(out), "--reparse"], env=ENV)
    assert res.exit_code == 0, res.output
    assert json.loads((out / "metrics.json").read_text())["reparsed"] == 8
    assert len(honest.chat_requests) == 8

    res = runner.invoke(_root(), ["eval", "-b", "nope", "-d", str(data), "-o", str(tmp_path / "x")], env=ENV)
    assert res.exit_code == 1 and "unknown benchmark 'nope'" in res.output
    res = runner.invoke(_root(), ["eval", "-b", "genai-bench-t2i", "-o", str(tmp_path / "x")], env=ENV)
    assert res.exit_code == 1 and "one --data per --bench" in res.output
    res = runner.invoke(_root(), ["eval"], env=ENV)
    assert res.exit_code == 0 and "report" in res.output  # help lists the subcommands
    res = runner.invoke(_root(), ["eval", "benchmarks"], env=ENV)
    assert "editreward-bench" in res.output and "genai-4way" in res.output
