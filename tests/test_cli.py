"""The core commands through typer's CliRunner, against a real loopback chat server and the tiny VLM."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from rationalrewards.cli import app
from rationalrewards.format import render_critique, render_pairwise
from rationalrewards.images import image_hash, load_image
from rationalrewards.rubric import dimensions_for, normalize
from rationalrewards.schema import Critique, PairwiseCritique
from rationalrewards.testing.loopback import ScriptedChatServer, answer

T2I = list(dimensions_for("t2i"))
ENV = {"COLUMNS": "240", "NO_COLOR": "1"}


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(buf, format="PNG")
    return buf.getvalue()


RED, GREEN = _png((230, 10, 10)), _png((10, 200, 10))
COLOR_OF = {image_hash(RED): "red", image_hash(GREEN): "green"}
SCORES = {"text_faithfulness": 3.5, "physical_quality": 2.0, "text_rendering": None}
CRITIQUE_TEXT = render_critique(
    Critique(
        scores=SCORES,
        justifications={d.key: f"justification for {d.key}" for d in T2I},
        na=["text_rendering"],
        summary="a decent square",
        refinement_comments="name the shade",
        refined_request="a bright red square on white",
    )
)


def _shown(payload: dict) -> list[str]:
    urls = [
        part["image_url"]["url"]
        for m in payload["messages"]
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part.get("type") == "image_url"
    ]
    return [COLOR_OF[image_hash(load_image(u))] for u in urls]


def _pairwise_text(payload: dict, i: int) -> str:
    """A position-consistent judge: red beats green on every dimension."""
    first, second = _shown(payload)[-2:]
    a, b = (3.5, 1.5) if first == "red" else (1.5, 3.5)
    return render_pairwise(
        PairwiseCritique(
            scores_a={d.key: a for d in T2I},
            scores_b={d.key: b for d in T2I},
            winners={d.key: "A" if a > b else "B" for d in T2I},
            justifications={d.key: "the red one is right" for d in T2I},
            preference="A" if a > b else "B",
            summary="red wins",
        )
    )


@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    paths = {"red": tmp_path / "red.png", "green": tmp_path / "green.png", "bad": tmp_path / "bad.png"}
    paths["red"].write_bytes(RED)
    paths["green"].write_bytes(GREEN)
    paths["bad"].write_text("not an image")
    return paths


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def test_critique_human_and_json(images):
    with ScriptedChatServer(answer(CRITIQUE_TEXT)) as server:
        spec = f"openai:{server.url}"
        human = _run("critique", "--image", images["red"], "--prompt", "a red square", "--model", spec)
        as_json = _run("critique", "-i", images["red"], "-p", "a red square", "-m", spec, "--json")
        assert len(server.chat_requests) == 2
        assert _shown(server.chat_requests[0].json) == ["red"]
    assert human.exit_code == 0, human.output
    for d in T2I:
        assert d.title in human.output
    assert "justification for text_faithfulness" in human.output
    assert "3.50" in human.output and "N/A" in human.output
    assert "a decent square" in human.output and "a bright red square on white" in human.output
    assert f"{normalize((3.5 + 2.0) / 2):.3f}" in human.output

    assert as_json.exit_code == 0, as_json.output
    c = Critique.model_validate_json(as_json.stdout)
    assert c.scores == SCORES and c.parse_status == "ok"
    assert c.template == "request-first" and c.template_version
    assert c.refined_request == "a bright red square on white"


def test_compare_both_orders_human_and_json(images):
    with ScriptedChatServer(answer(_pairwise_text)) as server:
        spec = f"openai:{server.url}"
        args = ("--image-a", images["green"], "--image-b", images["red"], "--prompt", "a red square", "-m", spec)
        human = _run("compare", *args, "--both-orders")
        assert sorted(_shown(r.json) for r in server.chat_requests) == [["green", "red"], ["red", "green"]]
        as_json = _run("compare", *args, "--both-orders", "--json")
        one = _run("compare", *args, "--json")
    assert human.exit_code == 0, human.output
    assert "B is better" in human.output and "both orders agree" in human.output
    assert "Winner" in human.output and "red wins" in human.output
    c = PairwiseCritique.model_validate_json(as_json.stdout)
    assert c.preference == "B" and c.position_consistent is True
    assert c.scores_b["text_faithfulness"] == 3.5 and c.scores_a["text_faithfulness"] == 1.5
    single = PairwiseCritique.model_validate_json(one.stdout)
    assert single.preference == "B" and single.position_consistent is None


def test_critique_batch_resumes(tmp_path, images):
    rows = [{"id": f"s{i}", "request": f"square {i}", "image": "red.png" if i % 2 else "green.png"} for i in range(5)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out" / "critiques.jsonl"
    with ScriptedChatServer(answer(CRITIQUE_TEXT)) as server:
        spec = f"openai:{server.url}"
        first = _run("critique-batch", data, "-o", out, "-m", spec, "--batch-size", "2", "--no-progress")
        second = _run("critique-batch", data, "-o", out, "-m", spec, "--no-progress")
        assert len(server.chat_requests) == 5
    assert first.exit_code == 0, first.output
    assert "5 items, 0 already done, 5 processed, 0 failed" in first.output
    assert second.exit_code == 0 and "5 items, 5 already done, 0 processed" in second.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [f"s{i}" for i in range(5)]
    assert all(r["scores"] == SCORES and r["model"].startswith("openai") for r in records)


def test_tiny_vlm_unparsable_critique_is_shown_not_raised(images, tiny_vlm_path):
    result = _run("critique", "-i", images["red"], "-p", "a red square", "-m", f"transformers:{tiny_vlm_path}")
    assert result.exit_code == 0, result.output
    assert "parse status: failed" in result.output and "none (unparsed)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("critique", "-i", "{missing}", "-p", "x", "-m", "openai:http://127.0.0.1:9/v1"), "image not found"),
        (("critique", "-i", "{bad}", "-p", "x", "-m", "openai:http://127.0.0.1:9/v1"), "is not a readable image"),
        (("critique", "-i", "{red}", "-p", "x", "-m", "nope:thing"), "could not load model 'nope:thing'"),
        (("critique", "-i", "{red}", "-p", "x", "-m", "transformers:{missing}"), "could not load model"),
        (("critique", "-i", "{red}", "-p", "x", "-m", "openai:"), "could not load model 'openai:'"),
        (("compare", "-a", "{red}", "-b", "{bad}", "-p", "x", "-m", "nope:"), "image B"),
        (("compare", "-a", "{red}", "-b", "{red}", "-p", "x", "-t", "{missing}"), "could not load template"),
        (("critique-batch", "{missing}", "-o", "{out}", "-m", "nope:"), "data file not found"),
        (("critique-batch", "{badrows}", "-o", "{out}", "-m", "nope:"), "line 1, field 'image'"),
        (("critique-batch", "{rows}", "-o", "{out}", "-m", "nope:"), "could not load model 'nope:'"),
        (("serve", "-m", "nope:thing", "--port", "9"), "could not serve model 'nope:thing'"),
    ],
)
def test_bad_input_is_one_clean_line(tmp_path, images, args, message):
    (tmp_path / "badrows.jsonl").write_text(json.dumps({"request": "x", "image": "nowhere.png"}) + "\n")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"request": "x", "image": str(images["red"])}) + "\n")
    fill = {
        "missing": tmp_path / "missing.png",
        "bad": images["bad"],
        "red": images["red"],
        "out": tmp_path / "o.jsonl",
        "badrows": tmp_path / "badrows.jsonl",
        "rows": tmp_path / "rows.jsonl",
    }
    result = _run(*(a.format(**fill) for a in args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_names_the_extra_when_fastapi_is_missing(monkeypatch):
    import rationalrewards.cli as cli

    monkeypatch.setattr(cli, "_serve_missing_extra", lambda: ["fastapi"])
    result = _run("serve", "-m", "embedded")
    assert result.exit_code == 1
    assert "pip install 'rationalrewards[serve]'" in result.stderr
