"""Pillow renderer: a scene (plus vividness and artefacts) to an RGB image, deterministically.

Shapes are drawn supersampled and downscaled (smooth edges); the sign's word uses
a built-in 5x7 pixel font scaled by whole factors (10x21 pixels of ink in a
12-pixel cell at 128x128), so text is legible at the default size and renders
identically on every machine (no FreeType).
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .font import text_mask
from .scene import Obj, Scene, Sign
from .vocab import BACKGROUNDS, COLORS, REGIONS

SIGN_BOARD = (250, 246, 232)
SIGN_BORDER = (60, 50, 40)
SIGN_INK = (20, 20, 24)
OVERSATURATION_START = 0.8  # above this vividness objects get a garish glow


@dataclass(frozen=True)
class Artefact:
    """A visual defect drawn over the picture (cut and overlapping shapes live in the scene's geometry)."""

    kind: str  # "noise" | "blur" | "seam"
    region: str | None = None  # noise: one of vocab.REGIONS
    orientation: str | None = None  # seam: "horizontal" | "vertical"
    position: float | None = None  # seam: where across the image (0..1)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def object_rgb(color: str, vividness: float) -> tuple[int, int, int]:
    """The colour an object is painted with at a given vividness (0 = washed out, 1 = neon)."""
    h, s_scale, v_scale = COLORS[color]
    v = min(1.0, max(0.0, vividness))
    sat = s_scale * (0.18 + 0.82 * v)
    val = v_scale * (0.62 + 0.38 * v)
    r, g, b = colorsys.hsv_to_rgb(h / 360.0, sat, val)
    return (round(r * 255), round(g * 255), round(b * 255))


def _outline(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(round(c * 0.55) for c in rgb)  # type: ignore[return-value]


def shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Polygon vertices of a shape of nominal radius ``r`` (None for circles)."""
    if shape == "circle":
        return None
    if shape == "square":
        h = 0.88 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        h = 1.1 * r
        return [(cx, cy - h), (cx + 0.8 * h, cy), (cx, cy + h), (cx - 0.8 * h, cy)]
    if shape == "triangle":
        R = 1.15 * r
        dy = R * 0.2  # centre the triangle's bounding box
        return [(cx + R * math.cos(math.radians(a)), cy + dy + R * math.sin(math.radians(a))) for a in (-90, 30, 150)]
    if shape == "star":
        outer, inner = 1.2 * r, 0.5 * r
        pts = []
        for i in range(10):
            rad = outer if i % 2 == 0 else inner
            a = math.radians(-90 + 36 * i)
            pts.append((cx + rad * math.cos(a), cy + 0.08 * r + rad * math.sin(a)))
        return pts
    raise ValueError(f"unknown shape {shape!r}")


def _draw_shape(draw: ImageDraw.ImageDraw, o: Obj, S: int, fill, outline, scale: float = 1.0, width: int = 1) -> None:
    cx, cy, r = o.x * S, o.y * S, o.r * S * scale
    pts = shape_points(o.shape, cx, cy, r)
    if pts is None:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)
    else:
        draw.polygon(pts, fill=fill, outline=outline, width=width)


def _draw_sign(img: Image.Image, sign: Sign, S: int, ss: int) -> None:
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = (v * S for v in sign.rect())
    draw.rectangle((x0, y0, x1, y1), fill=SIGN_BOARD, outline=SIGN_BORDER, width=max(1, ss))
    if not sign.text:
        return
    sx = max(1, round(S / 64))
    sy = max(1, round(1.5 * S / 64))
    mask = Image.fromarray(text_mask(sign.text, sx, sy), "L")
    px = round(sign.x * S - mask.width / 2)
    py = round(sign.y * S - mask.height / 2)
    img.paste(SIGN_INK, (px, py, px + mask.width, py + mask.height), mask)


def _apply_seam(arr: np.ndarray, a: Artefact) -> np.ndarray:
    h, w = arr.shape[:2]
    shift = max(2, round(w / 40))
    pos = a.position if a.position is not None else 0.5
    if a.orientation == "vertical":
        c = int(pos * w)
        arr[:, c:] = np.roll(arr[:, c:], shift, axis=0)
        arr[:, c : c + 1] = (arr[:, c : c + 1] * 0.55).astype(np.uint8)
    else:
        r = int(pos * h)
        arr[r:] = np.roll(arr[r:], shift, axis=1)
        arr[r : r + 1] = (arr[r : r + 1] * 0.55).astype(np.uint8)
    return arr


def region_centre(region: str) -> tuple[float, float]:
    i = REGIONS.index(region)
    return ((i % 3) + 0.5) / 3, ((i // 3) + 0.5) / 3


def _apply_noise(arr: np.ndarray, a: Artefact) -> np.ndarray:
    h, w = arr.shape[:2]
    rng = np.random.default_rng(a.seed)
    cx, cy = region_centre(a.region or "centre")
    jx, jy = rng.uniform(-0.06, 0.06, size=2)
    cx, cy = (cx + jx) * w, (cy + jy) * h
    rad = 0.1 * w
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / rad
    alpha = np.clip(1.15 - d, 0, 1)[..., None] * 0.9
    noise = rng.integers(60, 200, size=(h, w, 1)).astype(np.float32)
    out = arr.astype(np.float32) * (1 - alpha) + noise * alpha
    return out.astype(np.uint8)


def render_scene(
    scene: Scene,
    size: int = 128,
    vividness: float = 0.5,
    artefacts: tuple[Artefact, ...] | list[Artefact] = (),
    supersample: int = 2,
) -> Image.Image:
    """Draw ``scene`` as a ``size`` x ``size`` RGB image."""
    if size < 32:
        raise ValueError(f"image size must be at least 32 pixels, got {size}")
    ss = max(1, int(supersample))
    S = size * ss
    img = Image.new("RGB", (S, S), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    glow = (vividness - OVERSATURATION_START) / (1 - OVERSATURATION_START)
    if glow > 0:
        halo = Image.new("RGB", (S, S), (0, 0, 0))
        hmask = Image.new("L", (S, S), 0)
        hd, md = ImageDraw.Draw(halo), ImageDraw.Draw(hmask)
        for o in scene.objects:
            rgb = object_rgb(o.color, 1.0)
            _draw_shape(hd, o, S, rgb, None, scale=1.35)
            _draw_shape(md, o, S, round(200 * min(1.0, glow)), None, scale=1.35)
        img.paste(halo, (0, 0), hmask)
    for o in scene.objects:
        rgb = object_rgb(o.color, vividness)
        _draw_shape(draw, o, S, rgb, _outline(rgb), width=max(1, ss))
    if scene.sign is not None:
        _draw_sign(img, scene.sign, S, ss)
    if ss != 1:
        img = img.resize((size, size), Image.Resampling.BOX)
    pixel_arts = [a for a in artefacts if a.kind in ("seam", "noise")]
    if pixel_arts:
        arr = np.asarray(img).copy()
        for a in sorted(pixel_arts, key=lambda a: a.kind != "seam"):
            arr = _apply_seam(arr, a) if a.kind == "seam" else _apply_noise(arr, a)
        img = Image.fromarray(arr, "RGB")
    if any(a.kind == "blur" for a in artefacts):
        img = img.filter(ImageFilter.GaussianBlur(radius=1.3 * size / 128))
    return img


def random_artefact(kind: str, rng: random.Random) -> Artefact:
    """An artefact of ``kind`` with random placement."""
    if kind == "noise":
        return Artefact("noise", region=rng.choice(REGIONS), seed=rng.randrange(2**31))
    if kind == "seam":
        return Artefact(
            "seam", orientation=rng.choice(("horizontal", "vertical")), position=round(rng.uniform(0.3, 0.7), 3)
        )
    if kind == "blur":
        return Artefact("blur")
    raise ValueError(f"{kind!r} is not a drawn artefact (cut and overlap are scene geometry)")
