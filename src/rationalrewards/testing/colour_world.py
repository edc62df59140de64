"""A tiny deterministic world for tests of generators and the GCR loop: a painter and a critic that agree on colour.

``paint(request, seed, source)`` fills a canvas with the request's *last* colour word (so a refined
request that names another colour changes the picture) and draws one mark per requested count;
``ColourCritic`` is a ``ScriptedBackend`` responder that reads the colour of the judged image and
writes a protocol critique (through ``format.render_critique``) scoring it against a target colour,
with a refined request chosen by the test. Both are plain functions of their inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 50, 170),
    "orange": (240, 140, 20),
    "pink": (240, 140, 190),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
GREY = (128, 128, 128)


def request_colour(request: str) -> str | None:
    """The last colour word of the request (the one the painter obeys), or None."""
    found = [w for w in re.findall(r"[a-z]+", request.lower()) if w in COLOURS]
    return found[-1] if found else None


def paint(request: str, seed: int = 0, source: Any | None = None, size: int = 32) -> Image.Image:
    """A deterministic image of ``request``: background = its last colour word, else the source's colour, else grey."""
    colour = request_colour(request)
    if colour is not None:
        fill = COLOURS[colour]
    elif source is not None:
        from ..images import load_image

        fill = load_image(source).getpixel((0, 0))
    else:
        fill = GREY
    img = Image.new("RGB", (size, size), fill)
    count = 1
    m = re.search(r"\b(\d+|" + "|".join(NUMBERS) + r")\b", request.lower())
    if m:
        count = int(m.group(1)) if m.group(1).isdigit() else NUMBERS[m.group(1)]
    draw = ImageDraw.Draw(img)
    mark = (0, 0, 0) if sum(fill) > 300 else (255, 255, 255)
    for k in range(min(count, 6)):
        x = 4 + (seed * 7 + k * 5) % (size - 8)
        draw.rectangle([x, 4 + 4 * k, x + 2, 5 + 4 * k], fill=mark)
    return img


def colour_name(image: Any) -> str | None:
    """The named colour of the image's corner pixel (what ``paint`` filled it with); None for grey."""
    from ..images import load_image

    px = load_image(image).getpixel((0, 0))
    best = min(
        [*COLOURS.items(), ("grey", GREY)], key=lambda kv: sum((a - b) ** 2 for a, b in zip(px, kv[1], strict=True))
    )
    return None if best[0] == "grey" else best[0]


@dataclass
class ColourCritic:
    """A ``ScriptedBackend`` responder: scores the judged image's colour against ``target``.

    Text faithfulness is ``faithfulness[colour]`` if given, else 4 for the target colour and 1
    otherwise; physical quality is ``quality``; text rendering is N/A; image faithfulness (edits) 4.
    The refined request is ``refined[colour]`` (a mapping or a function of the colour); colours in
    ``garbage`` get unparsable text. ``seen`` records the colour of every image judged.
    """

    target: str
    refined: Mapping[str | None, str | None] | Callable[[str | None], str | None] = field(default_factory=dict)
    comments: str | None = "Make the colour match the request."
    faithfulness: Mapping[str | None, float] = field(default_factory=dict)
    quality: float = 3.0
    garbage: frozenset[str | None] = frozenset()
    seen: list[str | None] = field(default_factory=list)

    def __call__(self, conversation: Any, sample_index: int = 0) -> str:
        from ..format import render_critique
        from ..rubric import Task, dimensions_for
        from ..schema import Critique

        images = conversation.images()
        if not images:
            raise ValueError("ColourCritic got a conversation without an image")
        colour = colour_name(images[-1])
        self.seen.append(colour)
        if colour in self.garbage:
            return "I cannot judge this image."
        task = Task.EDIT if len(images) > 1 else Task.T2I
        faith = self.faithfulness.get(colour, 4.0 if colour == self.target else 1.0)
        scores: dict[str, float | None] = {}
        justifications: dict[str, str] = {}
        for d in dimensions_for(task):
            if d.key == "text_rendering":
                scores[d.key] = None
                justifications[d.key] = "The request asks for no text."
                continue
            if d.key == "text_faithfulness":
                scores[d.key] = faith
            elif d.key == "physical_quality":
                scores[d.key] = self.quality
            else:
                scores[d.key] = 4.0
            justifications[d.key] = f"The image is {colour or 'grey'}; the request wants {self.target}."
        refined = self.refined(colour) if callable(self.refined) else self.refined.get(colour)
        crit = Critique(
            task=task,
            request_analysis=f"The request wants a {self.target} picture.",
            scores=scores,
            justifications=justifications,
            na=["text_rendering"],
            summary=f"A {colour or 'grey'} image.",
            refinement_comments=self.comments,
            refined_request=refined,
            parse_status="ok",
        )
        return render_critique(crit)
