"""Image inputs in every form users hand us (PIL, bytes, paths, dicts, data URLs), decoded once and safely."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from pathlib import Path
from typing import Any, Union

from PIL import Image

ImageLike = Union[Image.Image, bytes, bytearray, str, Path, dict]

DEFAULT_MAX_PIXELS = 4096 * 4096

# a bare base64 image (no ``data:`` prefix); long enough that no ordinary file name looks like one
_BARE_BASE64 = re.compile(r"[A-Za-z0-9+/]{64,}={0,2}")


class ImageError(ValueError):
    """An image could not be read, or breaks a limit."""


def _decode_bytes(data: bytes, max_pixels: int | None) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
    except Exception as exc:  # PIL raises several types on bad data
        raise ImageError(f"not a readable image ({len(data)} bytes): {exc}") from None
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
    try:
        img.load()
    except Exception as exc:
        raise ImageError(f"image data is truncated or corrupt: {exc}") from None
    return img


def decode_data_url(url: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``data:image/...;base64,...`` (or bare base64) into a PIL image."""
    payload = url.split(",", 1)[1] if url.startswith("data:") else url
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("image is not valid base64") from None
    return _decode_bytes(data, max_pixels)


def load_image(
    image: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS, base_dir: str | Path | None = None
) -> Image.Image:
    """Return an RGB PIL image from a PIL image, bytes, a path, a data URL (or bare base64),
    a ``{"bytes"|"path": ...}`` dict or a uint8 array."""
    if isinstance(image, Image.Image):
        img = image
    elif isinstance(image, (bytes, bytearray, memoryview)):
        img = _decode_bytes(bytes(image), max_pixels)
    elif isinstance(image, dict):
        if image.get("bytes") is not None:
            return load_image(image["bytes"], max_pixels, base_dir)
        if image.get("path"):
            return load_image(image["path"], max_pixels, base_dir)
        raise ImageError(f"image dict has neither 'bytes' nor 'path': keys {sorted(image)}")
    elif isinstance(image, (str, Path)):
        s = str(image)
        if s.startswith("data:"):
            img = decode_data_url(s, max_pixels)
        else:
            path = Path(s)
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            if _is_file(path):
                img = _decode_bytes(path.read_bytes(), max_pixels)
            elif isinstance(image, str) and _BARE_BASE64.fullmatch(s):
                img = decode_data_url(s, max_pixels)
            else:
                raise ImageError(f"image file not found: {str(path)[:200]}")
    else:
        # numpy arrays (HWC uint8) and array-likes of one element (parquet object columns)
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy comes with the core deps
            np = None
        if np is not None and isinstance(image, np.ndarray):
            if image.dtype == object and image.size == 1:
                return load_image(image.reshape(-1)[0], max_pixels, base_dir)
            if image.dtype == np.uint8 and image.ndim in (2, 3):
                if image.ndim == 3 and image.shape[2] == 1:
                    image = image[:, :, 0]
                try:
                    img = Image.fromarray(image)
                except (TypeError, ValueError) as exc:
                    raise ImageError(f"cannot read an image from an array of shape {image.shape}: {exc}") from None
            else:
                raise ImageError(f"cannot read an image from an array of dtype {image.dtype}, shape {image.shape}")
        else:
            raise ImageError(f"cannot read an image from a {type(image).__name__}")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the OS, or with a NUL byte
        return False


def to_png_bytes(image: Any) -> bytes:
    """PNG bytes of any image input (PNG bytes are passed through unchanged)."""
    if isinstance(image, (bytes, bytearray)) and bytes(image[:8]) == b"\x89PNG\r\n\x1a\n":
        return bytes(image)
    buf = io.BytesIO()
    load_image(image, max_pixels=None).save(buf, format="PNG")
    return buf.getvalue()


def to_data_url(image: Any, fmt: str = "PNG") -> str:
    """A ``data:`` URL for any image input, as the OpenAI protocol takes it."""
    if fmt.upper() == "PNG":
        data = to_png_bytes(image)
    else:
        buf = io.BytesIO()
        load_image(image, max_pixels=None).save(buf, format=fmt)
        data = buf.getvalue()
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(data).decode('ascii')}"


def image_hash(image: Any) -> str:
    """A content hash of the decoded pixels (the same picture hashes alike whatever its container)."""
    img = load_image(image, max_pixels=None)
    h = hashlib.sha256()
    h.update(f"{img.size[0]}x{img.size[1]}".encode())
    h.update(img.tobytes())
    return h.hexdigest()[:16]
