"""critique_file: records, failure counts, and resuming after a crash."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.batch import critique_file
from rationalrewards.conversation import Conversation
from rationalrewards.format import render_critique
from rationalrewards.model import RationalRewardModel
from rationalrewards.rubric import dimensions_for, normalize
from rationalrewards.schema import Critique
from rationalrewards.store import JsonlStore
from rationalrewards.templates import get_template

N = 9


def _png(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, 40, 90)).save(buf, format="PNG")
    return buf.getvalue()


def _data(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(N):
        (tmp_path / "img" / f"{i}.png").write_bytes(_png(20 * i))
        row = {"id": f"item-{i}", "prompt": f"request number <{i}>", "image": f"img/{i}.png", "generator": "g1"}
        if i == 4:  # an edit, with the image inline
            row["source"] = {"bytes": base64.b64encode(_png(255)).decode()}
        rows.append(row)
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _index(conv: Conversation) -> int:
    text = "\n".join(m.text for m in conv.messages)
    hits = [i for i in range(N) if f"<{i}>" in text]
    assert len(hits) == 1
    return hits[0]


def respond(conv: Conversation, k: int) -> str:
    """Item 3 breaks the backend, item 6 answers prose; the rest get a critique scored by their index."""
    i = _index(conv)
    if i == 3:
        raise TimeoutError("backend timed out")
    if i == 6:
        return "Sorry, I cannot judge this image."
    task = "edit" if i == 4 else "t2i"
    keys = [d.key for d in dimensions_for(task)]
    score = 1.0 + (i % 4) * 0.75
    return render_critique(
        Critique(
            task=task,
            scores=dict.fromkeys(keys, score),
            justifications=dict.fromkeys(keys, f"item {i}"),
            summary=f"summary {i}",
            refined_request=f"better request {i}",
        )
    )


class Crash(BaseException):
    """Stands for the process dying (not an Exception, so nothing on the way catches it)."""


def test_records_and_failure_summary(tmp_path):
    out = tmp_path / "out.jsonl"
    model = RationalRewardModel(ScriptedBackend(respond, name="scripted-judge"))
    summary = critique_file(_data(tmp_path), out, model, batch_size=4, progress=False)
    assert (summary.total, summary.processed, summary.skipped) == (N, N, 0)
    assert dict(summary.failures) == {"backend": 1, "parse: no dimension block found": 1}

    records = JsonlStore(out).records()
    assert sorted(records) == [f"item-{i}" for i in range(N)]
    template = get_template("request-first")
    for i in range(N):
        rec = records[f"item-{i}"]
        assert rec["request"] == f"request number <{i}>"
        assert rec["model"] == "scripted-judge"
        assert rec["template"] == template.name and rec["template_version"] == template.version
        assert rec["meta"] == {"generator": "g1"}
        assert "raw_text" in rec and "parse_errors" in rec
        if i in (3, 6):
            assert rec["parse_status"] == "failed" and rec["reward"] is None
            continue
        score = 1.0 + (i % 4) * 0.75
        assert rec["parse_status"] == "ok"
        assert rec["reward"] == pytest.approx(normalize(score))
        assert rec["summary"] == f"summary {i}" and rec["refined_request"] == f"better request {i}"
        assert set(rec["scores"]) == {d.key for d in dimensions_for(rec["task"])}
    assert records["item-4"]["task"] == "edit" and "image_faithfulness" in records["item-4"]["scores"]
    assert "backend timed out" in records["item-3"]["parse_errors"][0]


def test_resume_after_crash_matches_an_uninterrupted_run(tmp_path):
    data = _data(tmp_path)
    reference = tmp_path / "reference.jsonl"
    critique_file(data, reference, RationalRewardModel(ScriptedBackend(respond)), batch_size=2, progress=False)

    calls = {"n": 0}

    def crashing(conv: Conversation, k: int) -> str:
        calls["n"] += 1
        if calls["n"] > 5:  # dies inside the third batch of two
            raise Crash()
        return respond(conv, k)

    out = tmp_path / "out.jsonl"
    with pytest.raises(Crash):
        critique_file(data, out, RationalRewardModel(ScriptedBackend(crashing)), batch_size=2, progress=False)
    assert len(JsonlStore(out)) == 4  # two whole batches; the batch in flight is lost
    with open(out, "ab") as f:  # and a torn half-line, as a kill during a write leaves
        f.write(b'{"id": "item-9", "req')

    backend = ScriptedBackend(respond)
    summary = critique_file(data, out, RationalRewardModel(backend), batch_size=2, progress=False)
    assert (summary.skipped, summary.processed) == (4, N - 4)
    assert sum(len(batch) for batch in backend.calls) == N - 4  # done items were not asked again
    assert JsonlStore(out).records() == JsonlStore(reference).records()

    again = critique_file(data, out, RationalRewardModel(ScriptedBackend(respond)), batch_size=2, progress=False)
    assert (again.skipped, again.processed) == (N, 0)


def test_refuses_to_mix_models_in_one_output(tmp_path):
    from rationalrewards.data import load_samples

    data = _data(tmp_path)
    out = tmp_path / "out.jsonl"
    first_half = load_samples(data)[:4]
    critique_file(first_half, out, RationalRewardModel(ScriptedBackend(respond, name="judge-1")), progress=False)
    other_backend = RationalRewardModel(ScriptedBackend(respond, name="judge-2"))
    with pytest.raises(ValueError, match="model='judge-1'.*Write to a new output file"):
        critique_file(data, out, other_backend, progress=False)
    other_template = RationalRewardModel(ScriptedBackend(respond, name="judge-1"), template="prefix-shared")
    with pytest.raises(ValueError, match="template='request-first'.*Write to a new output file"):
        critique_file(data, out, other_template, progress=False)
    assert len(JsonlStore(out)) == 4  # nothing was appended by the refused runs
