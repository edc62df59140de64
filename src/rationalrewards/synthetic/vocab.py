"""The world's closed vocabulary: shapes, colours, sizes, backgrounds, sign words, regions and number words."""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")
# shapes that can hold another shape inside (their inscribed disc is large enough)
CONTAINERS: tuple[str, ...] = ("circle", "square")

# object colours: hue in degrees, saturation scale, value scale (at full vividness)
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.0, 1.0, 0.95),
    "orange": (28.0, 1.0, 1.0),
    "yellow": (54.0, 1.0, 1.0),
    "green": (125.0, 1.0, 0.8),
    "blue": (218.0, 1.0, 1.0),
    "purple": (278.0, 0.9, 0.85),
    "pink": (325.0, 0.6, 1.0),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (250, 250, 250),
    "cream": (245, 236, 210),
    "light grey": (205, 205, 208),
    "dark grey": (70, 72, 76),
    "sand": (222, 200, 160),
    "mint": (205, 238, 220),
}
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)

# radius as a fraction of the canvas side
SIZES: dict[str, float] = {"small": 0.068, "medium": 0.09, "large": 0.12}
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)
SIZE_SYNONYMS: dict[str, str] = {"tiny": "small", "big": "large", "medium-sized": "medium"}

WORDS: tuple[str, ...] = (
    "OPEN", "STOP", "SALE", "CAFE", "EXIT", "BAR", "INN", "TAXI", "HOTEL", "PIZZA", "MUSIC", "BOOKS", "FRESH",
    "BAKERY", "GARDEN", "MARKET", "SCHOOL", "TICKETS", "LIBRARY", "PARKING", "WELCOME", "CLOSED", "DANGER",
    "BEACH", "TOYS", "FISH", "MILK", "SHOP", "ZOO", "PARK",
)  # fmt: skip
MAX_WORD_LEN = 8

NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
NUMBER_NAMES: dict[int, str] = {v: k for k, v in NUMBER_WORDS.items()}

# 3x3 grid regions used to describe where things are
REGIONS: tuple[str, ...] = (
    "top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right",
)  # fmt: skip
# regions an edit may move an object to, with their target centre
MOVE_TARGETS: dict[str, tuple[float, float]] = {
    "top left corner": (0.2, 0.2),
    "top right corner": (0.8, 0.2),
    "bottom left corner": (0.2, 0.8),
    "bottom right corner": (0.8, 0.8),
    "centre": (0.5, 0.5),
}

RELATIONS: tuple[str, ...] = ("left_of", "right_of", "above", "below", "inside")
CONVERSE: dict[str, str] = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}

# artefact kinds a request can ask to avoid, with the words that name them
ARTEFACTS: tuple[str, ...] = ("noise", "blur", "seam", "cut", "overlap")
ARTEFACT_WORDS: dict[str, str] = {
    "noise": "noise blotches",
    "blur": "blur",
    "seam": "seams",
    "cut": "cut-off shapes",
    "overlap": "overlapping shapes",
}


def plural(shape: str, n: int = 2) -> str:
    return shape if n == 1 else shape + "s"


def number_word(n: int) -> str:
    return NUMBER_NAMES.get(n, str(n))


def region_of(x: float, y: float) -> str:
    """The 3x3 grid region that holds the point (x, y) in [0, 1]^2."""
    col = 0 if x < 1 / 3 else (1 if x < 2 / 3 else 2)
    row = 0 if y < 1 / 3 else (1 if y < 2 / 3 else 2)
    return REGIONS[row * 3 + col]
