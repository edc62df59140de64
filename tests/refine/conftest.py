"""Fixtures for the refine tests: the colour-world painter as a generator and scripted critics as reward models."""

from __future__ import annotations

import pytest

from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.model import RationalRewardModel
from rationalrewards.refine.generators.callable import CallableGenerator
from rationalrewards.testing.colour_world import ColourCritic, paint


@pytest.fixture
def painter() -> CallableGenerator:
    return CallableGenerator(paint, name="painter")


@pytest.fixture
def critic_model():
    """``critic_model(**ColourCritic kwargs) -> (model, critic, backend)``."""

    def make(**kwargs):
        critic = ColourCritic(**kwargs)
        backend = ScriptedBackend(critic)
        return RationalRewardModel(backend), critic, backend

    return make
