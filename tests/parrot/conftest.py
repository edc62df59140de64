"""Shared PARROT fixtures: a small labelled set whose teacher behaviours (and so its retention) are known."""

from __future__ import annotations

import pytest

from rationalrewards.testing.parrot_teacher import SCENARIOS, ScriptedTeacher, make_pairs


@pytest.fixture
def known_set():
    """Every scenario under every label: 18 pairs (6 of them edits), one rationale each."""
    items = [(label, [scenario]) for scenario in SCENARIOS for label in ("A", "B", "tie")]
    pairs, plan = make_pairs(items)
    return pairs, plan, items


@pytest.fixture
def teacher(known_set):
    return ScriptedTeacher(known_set[1])
