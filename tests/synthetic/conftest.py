"""Fixtures for the synthetic world's tests."""

import math

import pytest

from rationalrewards.synthetic import GeneratorConfig, World


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def perfect_world() -> World:
    return World(GeneratorConfig.perfect())


@pytest.fixture
def within_binomial():
    """``check(k, probs)``: k successes are consistent with independent Bernoulli(probs) draws (5 sigma)."""

    def check(k: int, probs: list[float], sigmas: float = 5.0) -> bool:
        mean = sum(probs)
        sd = math.sqrt(sum(p * (1 - p) for p in probs))
        return abs(k - mean) <= sigmas * sd + 1

    return check
