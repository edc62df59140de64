"""The batch runner, resume, baselines, benchmark output layouts, the HTML report and the CLI."""

from __future__ import annotations

import io
import json

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from rationalrewards.conversation import Conversation
from rationalrewards.refine.cli import register
from rationalrewards.refine.generators.callable import CallableGenerator
from rationalrewards.refine.loop import RefinePolicy
from rationalrewards.refine.report import request_diff_html, write_report
from rationalrewards.refine.runner import load_run, method_policy, run_refine
from rationalrewards.testing.colour_world import COLOURS, ColourCritic, colour_name, paint
from rationalrewards.testing.images_server import ImagesServer
from rationalrewards.testing.loopback import ScriptedChatServer, answer

REFINED = {None: "a green square", "green": "a blue square"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def bench(tmp_path):
    return write_jsonl(
        tmp_path / "reqs.jsonl",
        [
            {"id": "a", "request": "a blue square"},
            {"id": "b", "request": "a square"},
            {"id": "c", "request": "a small square"},
        ],
    )


def run(bench, out, critic_model, gen=None, **kw):
    model, critic, backend = critic_model(target="blue", refined=REFINED)
    gen = gen or CallableGenerator(paint, name="painter")
    kw.setdefault("rounds", 3)
    kw.setdefault("threshold", 0.8)
    kw.setdefault("patience", None)
    result = run_refine(bench, gen, model, out, progress=False, **kw)
    return result, gen, backend


def test_gcr_run_writes_final_images_records_and_summary(bench, tmp_path, critic_model):
    out = tmp_path / "runs" / "gcr"
    result, gen, backend = run(bench, out, critic_model)
    assert result.stage.processed == 3 and result.generator_calls == gen.images_made == 1 + 3 + 3
    settings, records = load_run(out)
    assert [r["item_id"] for r in records] == ["a", "b", "c"]
    for r in records:
        t = r["trajectory"]
        best = t["rounds"][t["best_round"]]["candidates"][t["best_candidate"]]
        assert colour_name(out / r["output"]) == colour_name(out / best["image_path"]) == "blue"
        assert r["output"] == f"final/{r['item_id']}.png"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 3 and summary["generator_calls"] == 7
    assert summary["stop_reasons"] == {"threshold": 3}
    assert summary["mean_gain"] == pytest.approx(2 * 0.5 / 3)
    assert result.report == out / "report.html" and result.report.is_file()


def test_resume_generates_nothing_for_recorded_items(bench, tmp_path, critic_model):
    out = tmp_path / "run"
    first, gen1, _ = run(bench, out, critic_model, limit=2)
    assert gen1.images_made == 1 + 3
    again, gen2, backend2 = run(bench, out, critic_model)
    assert again.stage.skipped == 2 and again.stage.processed == 1
    assert gen2.images_made == 3  # only item c
    done, gen3, backend3 = run(bench, out, critic_model)
    assert done.stage.skipped == 3 and gen3.images_made == 0 and backend3.calls == []
    assert len(load_run(out)[1]) == 3


def test_a_run_folder_with_other_settings_is_refused(bench, tmp_path, critic_model):
    out = tmp_path / "run"
    run(bench, out, critic_model)
    with pytest.raises(ValueError, match="other settings"):
        run(bench, out, critic_model, rounds=5)


def test_baselines_share_seeds_and_budget(bench, tmp_path, critic_model):
    bon = method_policy("best-of-n", RefinePolicy(rounds=3, candidates=2))
    assert (bon.rounds, bon.candidates, bon.threshold) == (1, 6, None)
    assert method_policy("best-of-n", budget=4).candidates == 4
    assert method_policy("single").candidates == 1
    assert method_policy("gcr", budget=5, rounds=2).generator_budget == 5
    with pytest.raises(ValueError):
        method_policy("beam")

    result, gen, _ = run(bench, tmp_path / "bon", critic_model, method="best-of-n", budget=3)
    _, records = load_run(tmp_path / "bon")
    for r in records:
        t = r["trajectory"]
        assert len(t["rounds"]) == 1 and [c["seed"] for c in t["rounds"][0]["candidates"]] == [0, 1, 2]
    assert gen.images_made == 9
    single, gen, _ = run(bench, tmp_path / "single", critic_model, method="single")
    assert gen.images_made == 3
    assert single.summary["mean_best_reward"] == pytest.approx(single.summary["mean_first_reward"])


def test_imgedit_run_writes_key_png_from_sources(tmp_path, critic_model):
    root = tmp_path / "orig"
    (root / "animal").mkdir(parents=True)
    Image.new("RGB", (16, 16), COLOURS["red"]).save(root / "animal" / "1.jpg")
    (tmp_path / "basic_edit.json").write_text(
        json.dumps({"1082": {"id": "animal/1.jpg", "prompt": "keep the square", "edit_type": "alter"}})
    )
    model, critic, _ = critic_model(target="blue", refined={"red": "keep the square but make it blue"})
    out = tmp_path / "run"
    bench = tmp_path / "basic_edit.json"
    run_refine(bench, CallableGenerator(paint), model, out, images_dir=root, threshold=0.85, progress=False)
    assert colour_name(out / "final" / "1082.png") == "blue"
    assert (out / "images" / "1082" / "source.png").is_file()
    assert critic.seen == ["red", "blue"]


def test_unigenbench_repeats_follow_its_naming(tmp_path, critic_model):
    csv_path = tmp_path / "test_prompts_en.csv"
    csv_path.write_text('index,prompt_en,sub_dims_en\n7,a square,"{}"\n')
    model, _, _ = critic_model(target="blue", refined=REFINED)
    out = tmp_path / "run"
    result = run_refine(csv_path, CallableGenerator(paint), model, out, method="single", repeats=2, progress=False)
    assert sorted(p.name for p in (out / "final").iterdir()) == ["7_0.png", "7_1.png"]
    _, records = load_run(out)
    assert [r["trajectory"]["rounds"][0]["candidates"][0]["seed"] for r in records] == [0, 10_000]
    assert result.stage.processed == 2


def test_report_has_diffs_images_and_the_scaling_plot(bench, tmp_path, critic_model):
    runs = tmp_path / "runs"
    run(bench, runs / "gcr", critic_model)
    run(bench, runs / "bon", critic_model, method="best-of-n", budget=3)
    page = write_report(runs / "gcr").read_text()
    # round 1 of item b: the diff from "a square" to the refined "a green square"
    assert request_diff_html("a square", "a green square") in page
    assert "<ins>green</ins>" in page and "<del>green</del>" in page
    assert 'src="images/b/r2_c0.png"' in page and (runs / "gcr" / "images/b/r2_c0.png").is_file()
    assert "gcr (gcr)" in page and "best-of-n (bon)" in page  # the sibling run is compared
    assert "data:image/png;base64," in page and (runs / "gcr" / "scaling.png").is_file()
    embedded = write_report(runs / "gcr", out=tmp_path / "alone.html", embed=True).read_text()
    assert 'src="images/' not in embedded


def test_request_diff_marks_removed_and_added_words():
    html = request_diff_html('a red cube, "OPEN"', 'a blue cube, "OPEN" & more')
    assert "<del>red</del>" in html and "<ins>blue</ins>" in html and "&quot;OPEN&quot;" in html
    assert "<ins>&amp; more</ins>" in html


def _critic_reply(critic: ColourCritic):
    def text(payload, i):
        return critic(Conversation.from_openai(payload["messages"]), i)

    return text


def test_cli_end_to_end_over_http(bench, tmp_path):
    app = typer.Typer()
    register(app)
    critic = ColourCritic(target="blue", refined=REFINED)
    cli = CliRunner()
    out = tmp_path / "runs" / "cli"
    with ScriptedChatServer(answer(_critic_reply(critic))) as chat, ImagesServer() as images:
        args = ["refine", "--bench", str(bench), "--generator", f"openai-images:{images.base_url}"]
        args += ["--model", f"openai:{chat.url}", "-o", str(out), "--rounds", "3"]
        args += ["--threshold", "0.8", "--patience", "0", "--no-progress"]
        res = cli.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "3 processed" in res.output and "report:" in res.output
        assert len(images.state.requests) == 7
        res = cli.invoke(app, args)
        assert res.exit_code == 0 and "3 already done" in res.output
        assert len(images.state.requests) == 7  # the rerun generated nothing
    assert colour_name(Image.open(io.BytesIO((out / "final" / "b.png").read_bytes()))) == "blue"
    res = cli.invoke(app, ["refine-report", str(out)])
    assert res.exit_code == 0 and res.output.strip().endswith("report.html")
    res = cli.invoke(app, ["refine", "--bench", str(bench), "-g", "nope:x", "-o", str(out)])
    assert res.exit_code == 1 and "unknown generator" in res.output
