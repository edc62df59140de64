"""Fixtures for the evaluation tests: a scripted judge that reads planted pixels."""

from __future__ import annotations

from typing import Any

import pytest

from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.model import RationalRewardModel
from rationalrewards.testing.eval_bench import planted_responder


@pytest.fixture
def scripted():
    """``scripted(**kw) -> (model, backend)``: a RationalRewardModel over a planted-pixel ScriptedBackend."""

    def make(**kw: Any) -> tuple[RationalRewardModel, ScriptedBackend]:
        backend = ScriptedBackend(planted_responder(**kw))
        return RationalRewardModel(backend), backend

    return make
