"""RationalRewardModel: critique, self-consistency, both-order comparison, rewards and refinement.

Parse-success paths run on a ScriptedBackend whose texts are rendered from chosen
Critique objects with ``format.render_critique``; the tiny Qwen3-VL runs the real
local path (its random text does not parse, which is what the failure tests need).
"""

from __future__ import annotations

import io
import logging
import statistics
from collections.abc import Sequence

import pytest
from PIL import Image

from rationalrewards.backends import Backend, GenerationConfig
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.format import render_critique, render_pairwise
from rationalrewards.images import image_hash
from rationalrewards.model import NoRefinementError, RationalRewardModel
from rationalrewards.rubric import DIMENSION_KEYS, dimensions_for, normalize
from rationalrewards.schema import Critique, PairwiseCritique, PreferencePair, Sample
from rationalrewards.templates import get_template

T2I_KEYS = [d.key for d in dimensions_for("t2i")]
EDIT_KEYS = [d.key for d in dimensions_for("edit")]


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="PNG")
    return buf.getvalue()


RED, GREEN, BLUE = _png((220, 0, 0)), _png((0, 200, 0)), _png((0, 0, 210))
COLOR_OF = {image_hash(RED): "red", image_hash(GREEN): "green", image_hash(BLUE): "blue"}


def _critique(
    scores: dict[str, float | None], task: str = "t2i", refined: str | None = "a sharper request"
) -> Critique:
    keys = [d.key for d in dimensions_for(task)]
    return Critique(
        task=task,
        scores={k: scores.get(k) for k in keys},
        justifications={k: f"why {k} earns its score" for k in keys},
        summary="overall fine",
        refinement_comments="say it more explicitly" if refined else None,
        refined_request=refined,
        na=[k for k in keys if scores.get(k) is None],
    )


def _text_of(conv: Conversation) -> str:
    return "\n".join(m.text for m in conv.messages)


def _request_in(conv: Conversation, requests: Sequence[str]) -> str:
    text = _text_of(conv)
    found = [r for r in requests if r in text]
    assert len(found) == 1, f"expected exactly one known request in the prompt, found {found}"
    return found[0]


def _shown(conv: Conversation) -> list[str]:
    """Colours of the images in the order the conversation shows them."""
    return [COLOR_OF[image_hash(im)] for im in conv.images()]


# ---------------------------------------------------------------------------------------------- pointwise


def test_critique_parses_each_item_in_one_batch_and_tags_template():
    wanted = {
        "req-a": {"text_faithfulness": 4.0, "physical_quality": 3.5, "text_rendering": None},
        "req-b": {"text_faithfulness": 1.5, "physical_quality": 2.0, "text_rendering": 3.0},
    }
    backend = ScriptedBackend(lambda conv, i: render_critique(_critique(wanted[_request_in(conv, list(wanted))])))
    model = RationalRewardModel(backend)
    samples = [Sample(request=r, image=RED) for r in wanted]
    out = model.critique(samples)

    assert len(backend.calls) == 1 and len(backend.calls[0]) == 2  # one backend call for the batch
    template = get_template("request-first")
    for c, r in zip(out, wanted, strict=True):
        assert c.parse_status == "ok", c.parse_errors
        assert c.scores == {k: wanted[r].get(k) for k in T2I_KEYS}
        assert c.template == template.name and c.template_version == template.version
        assert c.n_samples == 1
    # the reward is the normalized mean of the scored applicable dimensions
    assert model.reward(samples) == pytest.approx([normalize(3.75), normalize((1.5 + 2.0 + 3.0) / 3)])
    vectors = model.reward_vectors(samples)
    assert set(vectors[0]) == set(DIMENSION_KEYS)
    assert vectors[0]["image_faithfulness"] is None and vectors[0]["text_rendering"] is None
    assert vectors[1]["text_rendering"] == 3.0


def test_edit_samples_are_parsed_with_the_edit_rubric():
    scores = {"text_faithfulness": 3.0, "image_faithfulness": 2.0, "physical_quality": 4.0, "text_rendering": None}
    backend = ScriptedBackend(lambda conv, i: render_critique(_critique(scores, task="edit")))
    c = RationalRewardModel(backend).critique([Sample(request="make it blue", image=BLUE, source=RED)])[0]
    assert c.task.value == "edit" and c.parse_status == "ok"
    assert c.scores["image_faithfulness"] == 2.0
    assert sorted(_shown(backend.calls[0][0])) == ["blue", "red"]  # the source and the output are both shown


def test_backend_error_and_unparsable_text_fail_per_item_with_reward_none():
    def responder(conv: Conversation, i: int) -> str:
        req = _request_in(conv, ["good", "boom", "junk"])
        if req == "boom":
            raise ConnectionError("upstream went away")
        if req == "junk":
            return "lorem ipsum, no critique here"
        return render_critique(_critique({"text_faithfulness": 3.0, "physical_quality": 3.0, "text_rendering": 3.0}))

    model = RationalRewardModel(ScriptedBackend(responder))
    samples = [Sample(request=r, image=RED) for r in ("good", "boom", "junk")]
    good, boom, junk = model.critique(samples)
    assert good.parse_status == "ok"
    assert boom.parse_status == "failed" and boom.reward is None
    assert any("backend" in e and "upstream went away" in e for e in boom.parse_errors)
    assert boom.template == get_template("request-first").name
    assert junk.parse_status == "failed" and junk.reward is None and junk.parse_errors
    assert junk.raw_text == "lorem ipsum, no critique here"
    assert model.reward(samples) == [pytest.approx(normalize(3.0)), None, None]
    assert model.reward_vectors(samples)[1] == {k: None for k in DIMENSION_KEYS}


def test_self_consistency_averages_scores_and_reports_spread():
    tf_per_sample = [2.0, 3.0, 4.0, None]  # the 4th sample does not parse

    def responder(conv: Conversation, i: int) -> str:
        if tf_per_sample[i] is None:
            return "I refuse to use the format."
        return render_critique(
            _critique({"text_faithfulness": tf_per_sample[i], "physical_quality": 3.0, "text_rendering": None})
        ).replace("overall fine", f"summary of sample {i}")

    backend = ScriptedBackend(responder)
    model = RationalRewardModel(backend, generation=GenerationConfig(temperature=0.8), n_samples=4)
    c = model.critique([Sample(request="r", image=RED)])[0]

    assert c.n_samples == 4
    assert c.scores["text_faithfulness"] == pytest.approx(3.0)
    assert c.spread["text_faithfulness"] == pytest.approx(statistics.pstdev([2.0, 3.0, 4.0]))
    assert c.spread["physical_quality"] == pytest.approx(0.0)
    assert c.scores["text_rendering"] is None and "text_rendering" in c.na
    assert c.summary == "summary of sample 0"  # texts come from the first parsed sample
    assert c.parse_status == "partial"  # one of the four did not parse
    assert any(e.startswith("sample 4:") for e in c.parse_errors)
    assert c.reward == pytest.approx(normalize(3.0))


def test_self_consistency_all_samples_failing_is_a_failure():
    model = RationalRewardModel(
        ScriptedBackend(lambda conv, i: "nothing"), generation=GenerationConfig(temperature=1.0), n_samples=3
    )
    c = model.critique([Sample(request="r", image=RED)])[0]
    assert c.parse_status == "failed" and c.reward is None and c.n_samples == 3
    assert any("none of 3 samples parsed" in e for e in c.parse_errors)


def test_weighted_reward():
    scores = {"text_faithfulness": 4.0, "physical_quality": 1.0, "text_rendering": 2.5}
    backend = ScriptedBackend(lambda conv, i: render_critique(_critique(scores)))
    samples = [Sample(request="r", image=RED)]
    plain = RationalRewardModel(backend).reward(samples)[0]
    weighted = RationalRewardModel(backend, weights={"text_faithfulness": 3.0, "physical_quality": 1.0}).reward(
        samples
    )[0]
    assert plain == pytest.approx(normalize((4.0 + 1.0 + 2.5) / 3))
    assert weighted == pytest.approx(normalize((3 * 4.0 + 1.0) / 4))
    only_tf = RationalRewardModel(backend, weights={"text_faithfulness": 1.0})
    result = only_tf.score(samples)[0]
    assert result.reward == pytest.approx(1.0)
    assert result.vector["physical_quality"] == 1.0 and result.critique.parse_status == "ok"


def test_constructor_rejects_bad_settings():
    backend = ScriptedBackend(lambda conv, i: "")
    with pytest.raises(ValueError, match="unknown dimension"):
        RationalRewardModel(backend, weights={"sharpness": 1.0})
    with pytest.raises(ValueError, match="n_samples"):
        RationalRewardModel(backend, n_samples=0)
    with pytest.raises(ValueError, match="conflicts with n_samples"):
        RationalRewardModel(backend, generation=GenerationConfig(n=3))
    with pytest.raises(ValueError, match="unknown backend"):
        RationalRewardModel("no-such-backend:x")
    with pytest.warns(UserWarning, match="temperature 0"):
        RationalRewardModel(backend, n_samples=2)


def test_large_inputs_are_chunked_in_order():
    backend = ScriptedBackend(
        lambda conv, i: render_critique(
            _critique({"text_faithfulness": 1.0 + int(_request_in(conv, [f"#{n}#" for n in range(7)])[1]) / 2})
        )
    )
    model = RationalRewardModel(backend, chunk_size=3)
    out = model.critique([Sample(request=f"#{n}#", image=RED) for n in range(7)])
    assert [len(b) for b in backend.calls] == [3, 3, 1]
    assert [c.scores["text_faithfulness"] for c in out] == [1.0 + n / 2 for n in range(7)]


def test_refine_prompt(caplog):
    backend = ScriptedBackend(lambda conv, i: render_critique(_critique({"text_faithfulness": 2.0})))
    model = RationalRewardModel(backend)
    sample = Sample(request="a cat", image=RED)
    assert model.refine_prompt(sample) == "a sharper request"  # critiques first when no critique is given
    no_refinement = _critique({"text_faithfulness": 2.0}, refined=None)
    with caplog.at_level(logging.WARNING, logger="rationalrewards.model"):
        assert model.refine_prompt(sample, no_refinement) == "a cat"
    assert "no refined request" in caplog.text
    with pytest.raises(NoRefinementError, match="no refined request"):
        model.refine_prompt(sample, no_refinement, strict=True)
    assert model.refine_prompts([sample, sample], [no_refinement, _critique({})]) == ["a cat", "a sharper request"]


# ---------------------------------------------------------------------------------------------- pairwise


def _pairwise(sa: dict[str, float], sb: dict[str, float], pref: str) -> str:
    return render_pairwise(
        PairwiseCritique(
            scores_a={k: sa.get(k) for k in T2I_KEYS},
            scores_b={k: sb.get(k) for k in T2I_KEYS},
            justifications={k: "because" for k in T2I_KEYS},
            winners={k: ("A" if sa[k] > sb[k] else "B" if sb[k] > sa[k] else "tie") for k in T2I_KEYS},
            preference=pref,
            summary="compared",
        )
    )


def _judge(bias: float):
    """Prefers red by 0.5 on every dimension; ``bias`` adds to whichever image is shown first."""

    def respond(conv: Conversation, i: int) -> str:
        first, second = _shown(conv)[-2:]
        a = 2.0 + bias + (0.5 if first == "red" else 0.0)
        b = 2.0 + (0.5 if second == "red" else 0.0)
        pref = "A" if a > b else "B" if b > a else "tie"
        return _pairwise(dict.fromkeys(T2I_KEYS, a), dict.fromkeys(T2I_KEYS, b), pref)

    return respond


def test_compare_one_order():
    backend = ScriptedBackend(_judge(bias=0.0))
    out = RationalRewardModel(backend).compare([PreferencePair(request="r", image_a=GREEN, image_b=RED)])
    c = out[0]
    assert c.preference == "B" and c.position_consistent is None
    assert c.scores_b["text_faithfulness"] == 2.5 and c.scores_a["text_faithfulness"] == 2.0
    assert c.template == get_template("request-first").name
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 1


def test_compare_both_orders_consistent_judge_maps_the_swapped_verdict_back():
    backend = ScriptedBackend(_judge(bias=0.0))
    pairs = [
        PreferencePair(request="r1", image_a=RED, image_b=GREEN),
        PreferencePair(request="r2", image_a=GREEN, image_b=RED),
    ]
    out = RationalRewardModel(backend).compare(pairs, both_orders=True)
    # both orders of both pairs went to the backend in one batch
    assert len(backend.calls) == 1
    assert [_shown(c) for c in backend.calls[0]] == [
        ["red", "green"],
        ["green", "red"],
        ["green", "red"],
        ["red", "green"],
    ]
    first, second = out
    assert first.preference == "A" and first.position_consistent is True
    assert first.scores_a["text_faithfulness"] == 2.5 and first.scores_b["text_faithfulness"] == 2.0
    assert second.preference == "B" and second.position_consistent is True
    assert second.scores_b["physical_quality"] == 2.5 and second.winners["physical_quality"] == "B"


def test_compare_both_orders_position_bias_disagreement():
    # first-shown bonus 1.0 outweighs the red preference of 0.5: each order prefers whatever is shown first
    backend = ScriptedBackend(_judge(bias=1.0))
    pair = PreferencePair(request="r", image_a=RED, image_b=GREEN)
    model = RationalRewardModel(backend)
    tie = model.compare([pair], both_orders=True)[0]
    assert tie.position_consistent is False and tie.preference == "tie"
    # averaged over both orders the bias cancels: red = 2 + (1 + 0.5 + 0.5) / 2, green = 2 + 1 / 2
    assert tie.scores_a["text_faithfulness"] == pytest.approx(3.0)
    assert tie.scores_b["text_faithfulness"] == pytest.approx(2.5)
    assert tie.winners["text_faithfulness"] == "A"
    by_scores = model.compare([pair], both_orders=True, on_disagreement="scores")[0]
    assert by_scores.position_consistent is False and by_scores.preference == "A"


def test_compare_both_orders_with_one_order_failing():
    def respond(conv: Conversation, i: int) -> str:
        if _shown(conv)[0] == "green":
            return "garbled"
        return _judge(0.0)(conv, i)

    c = RationalRewardModel(ScriptedBackend(respond)).compare(
        [PreferencePair(request="r", image_a=RED, image_b=GREEN)], both_orders=True
    )[0]
    assert c.parse_status == "partial" and c.position_consistent is None
    assert c.preference == "A"
    assert any(e.startswith("swapped order:") for e in c.parse_errors)


# ---------------------------------------------------------------------------------------------- tiny VLM


class Recording(Backend):
    """Passes batches to a real backend and keeps the conversations it was given."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.seen: list[Conversation] = []

    async def agenerate(self, conversations, config=None):
        self.seen.extend(conversations)
        return await self.inner.agenerate(conversations, config)


@pytest.fixture(scope="module")
def tiny_model(tiny_backend):
    return RationalRewardModel(Recording(tiny_backend), generation=GenerationConfig(max_tokens=24))


def test_tiny_vlm_critique_failure_is_recorded_and_reward_is_none(tiny_model):
    samples = [Sample(request="a red square", image=RED), Sample(request="make it blue", image=BLUE, source=RED)]
    out = tiny_model.critique(samples)
    assert [c.task.value for c in out] == ["t2i", "edit"]
    for c in out:
        # a random tiny model writes text, not a critique
        assert c.raw_text and c.parse_status == "failed" and c.parse_errors
        assert c.template == get_template("request-first").name
    assert tiny_model.reward(samples) == [None, None]


def test_tiny_vlm_compare_both_orders(tiny_model):
    tiny_model.backend.seen.clear()
    pair = PreferencePair(request="a red square", image_a=RED, image_b=GREEN)
    c = tiny_model.compare([pair], both_orders=True)[0]
    assert [_shown(conv) for conv in tiny_model.backend.seen] == [["red", "green"], ["green", "red"]]
    assert c.parse_status == "failed" and c.reward_a is None and c.preference is None
    assert any(e.startswith("original order:") for e in c.parse_errors)
    assert any(e.startswith("swapped order:") for e in c.parse_errors)
