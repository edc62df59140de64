"""Fixtures for the RL tests: a scripted critic whose scores depend on the request text and the image pixels."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation
from rationalrewards.format import render_critique
from rationalrewards.images import image_hash, load_image
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import Critique

FAIL = "FAILME"
PQ_SCORE = 3.0  # physical quality the critic always gives
IF_SCORE = 2.0  # image faithfulness it gives edits


def request_of(conv: Conversation) -> str:
    return "\n".join(m.text for m in conv.messages)


class Critic:
    """A scripted critic: text faithfulness is ``score=X`` from the request, else ``1 + 3 * mean pixel / 255``.

    A request containing ``FAILME`` gets text that does not parse. Records the hash of every output image seen
    (the last image of each conversation) and the number of images per conversation.
    """

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.n_images: list[int] = []

    def __call__(self, conv: Conversation, i: int) -> str:
        text = request_of(conv)
        images = conv.images()
        self.seen.append(image_hash(images[-1]))
        self.n_images.append(len(images))
        if FAIL in text:
            return "I would rather not follow the format today."
        m = re.search(r"score=([0-9.]+)", text)
        if m:
            tf = float(m.group(1))
        else:
            tf = round(1 + 3 * float(np.asarray(load_image(images[-1])).mean()) / 255, 4)
        task = "edit" if len(images) == 2 else "t2i"
        keys = [d.key for d in dimensions_for(task)]
        scores = {"text_faithfulness": tf, "physical_quality": PQ_SCORE, "text_rendering": None}
        if task == "edit":
            scores["image_faithfulness"] = IF_SCORE
        c = Critique(
            task=task,
            scores={k: scores[k] for k in keys},
            justifications={k: f"looked at {k}" for k in keys},
            request_analysis="the request asks for something",
            summary="fine",
            refinement_comments="be explicit",
            refined_request="a more explicit request",
            na=["text_rendering"],
        )
        return render_critique(c)


@pytest.fixture
def critic() -> Critic:
    return Critic()


@pytest.fixture
def backend(critic: Critic) -> ScriptedBackend:
    return ScriptedBackend(critic)
