"""The renderer: sizes, determinism, legible text at the default size, distinct renders."""

import numpy as np
import pytest

from rationalrewards.synthetic import Obj, Scene, Sign, render_scene
from rationalrewards.synthetic.vocab import WORDS


def _sign_scene(word: str) -> Scene:
    return Scene("white", (), Sign(word, 0.5, 0.5))


def _slots(img, word_len):
    """The ink of each letter slot of a centred sign at 128x128 (12 pixels a letter)."""
    a = 255 - np.asarray(img.convert("L")).astype(float)
    left = round(64 - 6 * word_len)
    return [a[50:78, left + 12 * i : left + 12 * (i + 1)] for i in range(word_len)]


@pytest.mark.parametrize("word", ["OPEN", "MARKET", "PARKING", "WELCOME", "ZOO"])
def test_sign_text_is_legible_at_128(word):
    """Read the word back by template matching every letter slot against all 26 letters."""
    img = render_scene(_sign_scene(word))
    slots = _slots(img, len(word))
    templates = {c: _slots(render_scene(_sign_scene(c * len(word))), len(word)) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    read = ""
    for i, slot in enumerate(slots):
        read += min(templates, key=lambda c: np.abs(templates[c][i] - slot).sum())
    assert read == word


def test_every_vocabulary_word_fits_on_the_canvas():
    for w in WORDS:
        x0, y0, x1, y1 = Sign(w, 0.5, 0.5).rect()
        assert x0 >= 0 and x1 <= 1


@pytest.mark.parametrize("size", [64, 128, 256])
def test_sizes_and_determinism(size):
    scene = Scene("cream", (Obj(0, "star", "red", "medium", 0.3, 0.4), Obj(1, "circle", "blue", "small", 0.7, 0.6)))
    a = render_scene(scene, size=size)
    b = render_scene(scene, size=size)
    assert a.size == (size, size)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_renders_tell_colours_shapes_and_counts_apart():
    base = Scene("white", (Obj(0, "circle", "red", "medium", 0.3, 0.5),))
    variants = [
        Scene("white", (Obj(0, "circle", "orange", "medium", 0.3, 0.5),)),
        Scene("white", (Obj(0, "square", "red", "medium", 0.3, 0.5),)),
        Scene("white", (Obj(0, "circle", "red", "medium", 0.3, 0.5), Obj(1, "circle", "red", "medium", 0.7, 0.5))),
    ]
    a = np.asarray(render_scene(base)).astype(int)
    for v in variants:
        diff = np.abs(np.asarray(render_scene(v)).astype(int) - a).sum(axis=2)
        assert (diff > 60).sum() > 40  # at least a few dozen clearly different pixels


def test_bad_scene_values_raise():
    with pytest.raises(ValueError):
        Obj(0, "hexagon", "red", "small", 0.5, 0.5)
    with pytest.raises(ValueError):
        Scene("tartan")
    with pytest.raises(ValueError):
        render_scene(Scene("white"), size=8)
