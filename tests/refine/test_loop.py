"""The GCR loop on the colour world: a painter that obeys the request's last colour word and a critic that wants blue.

Rewards follow from the critic's scores: text faithfulness 4 (blue) or 1 (other), quality 3, text
rendering N/A -> blue = (3.5 - 1) / 3 = 0.833, anything else = (2 - 1) / 3 = 0.333.
"""

from __future__ import annotations

import pytest

from rationalrewards.refine.generators.callable import CallableGenerator
from rationalrewards.refine.loop import RefineItem, RefinePolicy, Trajectory, refine, refine_many
from rationalrewards.testing.colour_world import COLOURS, colour_name, paint

BLUE = (4 + 3) / 2
OTHER = (1 + 3) / 2


def reward(mean: float) -> float:
    return (mean - 1) / 3


def test_threshold_stops_once_the_refined_request_succeeds(painter, critic_model):
    model, critic, backend = critic_model(target="blue", refined={None: "a blue square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=4, threshold=0.8))
    assert t.stop_reason == "threshold"
    assert [r.request for r in t.rounds] == ["a square", "a blue square"]
    assert [r.request_source for r in t.rounds] == ["original", "refined"]
    assert t.first_reward == pytest.approx(reward(OTHER))
    assert t.best_reward == pytest.approx(reward(BLUE))
    assert (t.best_round, t.best_candidate) == (1, 0)
    assert t.gain == pytest.approx(reward(BLUE) - reward(OTHER))
    assert critic.seen == [None, "blue"]
    assert t.generator_calls == painter.images_made == 2
    # the critic always judges against the user's original request, never the rewrite
    round1_text = " ".join(m.text for m in backend.calls[1][0].messages)
    assert "a square" in round1_text and "a blue square" not in round1_text


def test_below_threshold_the_loop_continues(painter, critic_model):
    model, _, _ = critic_model(target="blue", refined={None: "a blue square", "blue": "a blue square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=3, threshold=0.9, patience=None))
    assert t.stop_reason == "rounds" and len(t.rounds) == 3


def test_dimension_floor(painter, critic_model):
    model, _, _ = critic_model(target="blue", refined={None: "a blue square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=4, threshold=None, dimension_floor=3.0))
    assert t.stop_reason == "floor" and len(t.rounds) == 2

    # physical quality 2.5 never reaches the floor of 3: the loop runs to its round budget
    model, _, _ = critic_model(target="blue", quality=2.5, refined={None: "a blue square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=3, threshold=None, dimension_floor=3.0, patience=None))
    assert t.stop_reason == "rounds" and len(t.rounds) == 3


def test_patience_stops_when_nothing_improves(painter, critic_model):
    model, critic, _ = critic_model(target="blue", refined={None: "a green square", "green": "a green square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=6, threshold=None, patience=2))
    assert t.stop_reason == "patience"
    assert len(t.rounds) == 3  # round 0, then two rounds without improvement
    assert [r.improved for r in t.rounds] == [True, False, False]
    assert critic.seen == [None, "green", "green"]


def test_generator_budget_counts_every_image(painter, critic_model):
    model, _, backend = critic_model(target="blue", refined={None: "a green square", "green": "a red square"})
    policy = RefinePolicy(rounds=5, candidates=2, generator_budget=3, threshold=None, patience=None)
    t = refine("a square", painter, model, policy)
    assert t.stop_reason == "budget"
    assert [len(r.candidates) for r in t.rounds] == [2, 1]
    assert t.generator_calls == painter.images_made == 3
    assert t.critic_calls == sum(len(batch) for batch in backend.calls) == 3


def test_best_is_kept_when_a_later_round_gets_worse(painter, critic_model):
    model, _, _ = critic_model(target="blue", refined={None: "a blue square", "blue": "a red square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=3, threshold=None, patience=None))
    assert [colour_name(r.candidates[0].image) for r in t.rounds] == [None, "blue", "red"]
    assert t.best_round == 1 and colour_name(t.best().image) == "blue"
    assert t.best_request == "a blue square"
    assert t.anytime_curve() == pytest.approx([reward(OTHER), reward(BLUE), reward(BLUE)])


def test_refined_request_that_drops_a_constraint_is_rejected(painter, critic_model):
    original = 'a sign saying "OPEN" with three stars'
    model, _, _ = critic_model(target="blue", refined={None: "a blue sign with stars"}, comments="Use blue.")
    t = refine(original, painter, model, RefinePolicy(rounds=2, threshold=None, patience=None))
    r1 = t.rounds[1]
    assert r1.request_source == "fallback:original+comments"
    assert r1.request == f"{original} Use blue."
    assert "quoted:OPEN" in r1.constraint_missing and "count:3" in r1.constraint_missing
    assert "a blue sign with stars" in r1.note

    t = refine(original, painter, model, RefinePolicy(rounds=2, threshold=None, patience=None, fallback="previous"))
    assert (t.rounds[1].request_source, t.rounds[1].request) == ("fallback:previous", original)

    t = refine(original, painter, model, RefinePolicy(rounds=2, threshold=None, patience=None, keep_constraints=False))
    assert (t.rounds[1].request_source, t.rounds[1].request) == ("refined", "a blue sign with stars")


def test_refined_request_that_keeps_constraints_is_used_with_comments(painter, critic_model):
    original = 'a sign saying "OPEN" with three stars'
    refined = 'a blue sign saying "OPEN" with three stars'
    model, _, _ = critic_model(target="blue", refined={None: refined}, comments="Paint it blue.")
    t = refine(original, painter, model, RefinePolicy(rounds=2, threshold=None, append_comments=True))
    assert t.rounds[1].request_source == "refined+comments"
    assert t.rounds[1].request == f"{refined} Paint it blue."
    assert t.rounds[1].constraint_missing == []


def test_unparsed_critique_is_never_a_score(critic_model):
    # seed parity picks the colour: candidate 1 (blue) would win, but its critique does not parse
    gen = CallableGenerator(lambda r, s, src: paint("blue" if s % 2 else "red"), name="parity")
    model, _, _ = critic_model(target="blue", garbage=frozenset({"blue"}))
    t = refine("a square", gen, model, RefinePolicy(rounds=1, candidates=2))
    cands = t.rounds[0].candidates
    assert [c.reward for c in cands][1] is None and cands[1].critique.parse_status == "failed"
    assert t.parse_failures == 1
    assert (t.best_round, t.best_candidate) == (0, 0)
    assert t.best_reward == pytest.approx(reward(OTHER))


def test_nothing_parsed_keeps_first_image_and_previous_request(painter, critic_model):
    model, _, _ = critic_model(target="blue", garbage=frozenset({"red"}))
    t = refine("a red square", painter, model, RefinePolicy(rounds=2, threshold=0.5, patience=None))
    assert t.best_reward is None and t.first_reward is None
    assert (t.best_round, t.best_candidate) == (0, 0)
    assert t.parse_failures == 2 and t.stop_reason == "rounds"
    assert t.rounds[1].request_source == "kept:previous" and t.rounds[1].request == "a red square"


def test_lockstep_one_generator_and_one_critic_call_per_round(painter, critic_model):
    model, _, backend = critic_model(target="blue", refined={None: "a green square", "green": "a blue square"})
    items = ["a blue square", "a square", "a square with a dot"]
    trajs = refine_many(items, painter, model, RefinePolicy(rounds=3, candidates=2, threshold=0.8, patience=None))
    assert [len(t.rounds) for t in trajs] == [1, 3, 3]
    assert painter.batches == 3 and len(backend.calls) == 3
    assert [len(batch) for batch in backend.calls] == [6, 4, 4]  # the first item stopped after round 0
    assert painter.images_made == sum(t.generator_calls for t in trajs) == 14


def test_seed_modes(painter, critic_model):
    model, _, _ = critic_model(target="blue", refined={None: "a green square", "green": "a red square"})
    base = {"rounds": 3, "candidates": 2, "threshold": None, "patience": None, "seed": 5}
    t = refine("a square", painter, model, RefinePolicy(**base, seed_mode="new"))
    assert [[c.seed for c in r.candidates] for r in t.rounds] == [[5, 6], [7, 8], [9, 10]]
    t = refine("a square", painter, model, RefinePolicy(**base, seed_mode="same"))
    assert [[c.seed for c in r.candidates] for r in t.rounds] == [[5, 6], [5, 6], [5, 6]]


def test_edit_items_pass_the_source_to_generator_and_critic(painter, critic_model, tmp_path):
    from PIL import Image

    model, _, backend = critic_model(target="blue", refined={"red": "make the square blue"})
    source = Image.new("RGB", (16, 16), COLOURS["red"])
    item = RefineItem(request="keep the square", source=source, id="edit-1")
    t = refine(item, painter, model, RefinePolicy(rounds=2, threshold=0.8), image_dir=tmp_path / "images")
    assert t.task == "edit" and t.id == "edit-1"
    assert len(backend.calls[0][0].images()) == 2  # source and output
    assert colour_name(t.rounds[0].candidates[0].image) == "red"  # painter kept the source colour
    assert colour_name(t.best().image) == "blue"
    assert t.source_path == "images/edit-1/source.png"
    assert (tmp_path / "images/edit-1/r1_c0.png").is_file()
    assert t.rounds[1].candidates[0].image_path == "images/edit-1/r1_c0.png"


def test_trajectory_round_trips_through_json(painter, critic_model):
    model, _, _ = critic_model(target="blue", refined={None: "a blue square"})
    t = refine("a square", painter, model, RefinePolicy(rounds=3))
    back = Trajectory.model_validate_json(t.model_dump_json())
    assert back.model_dump() == t.model_dump()
    assert back.best().image is None  # images are not serialised, only their paths and hashes
    assert back.best().image_hash == t.best().image_hash


def test_bad_policies_and_inputs_are_refused(painter, critic_model):
    for bad in ({"rounds": 0}, {"threshold": 2.0}, {"dimension_floor": 5}, {"patience": 0}, {"seed_mode": "x"}):
        with pytest.raises(ValueError):
            RefinePolicy(**bad)
    model, _, _ = critic_model(target="blue")
    with pytest.raises(ValueError, match="duplicate"):
        refine_many(["a square", "a square"], painter, model)
    with pytest.raises(TypeError):
        refine(42, painter, model)


def test_refine_from_round_or_best(painter, critic_model):
    model, _, _ = critic_model(target="blue", refined={"blue": "a red square", "red": "a green square"})
    base = {"rounds": 3, "threshold": None, "patience": None, "keep_constraints": False}
    t = refine("a blue square", painter, model, RefinePolicy(**base, refine_from="round"))
    assert [r.request for r in t.rounds] == ["a blue square", "a red square", "a green square"]
    t = refine("a blue square", painter, model, RefinePolicy(**base, refine_from="best"))
    assert [r.request for r in t.rounds] == ["a blue square", "a red square", "a red square"]
    assert t.best_round == 0
