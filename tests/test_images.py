"""Image inputs in every container, decoded to the same RGB pixels; bad inputs raise ImageError."""

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from rationalrewards.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    image_hash,
    load_image,
    to_data_url,
    to_png_bytes,
)


def _noise(seed: int = 0, size=(24, 16)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


@pytest.fixture
def ref() -> Image.Image:
    return _noise(0)


@pytest.fixture
def png(ref) -> bytes:
    return _encode(ref, "PNG")


def _with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with its header claiming another size (CRC fixed up, so it parses)."""
    data = bytearray(png)
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_pil_passes_through(ref):
    out = load_image(ref)
    assert out.mode == "RGB" and np.array_equal(_pixels(out), _pixels(ref))


@pytest.mark.parametrize("container", [bytes, bytearray, memoryview])
def test_png_bytes(ref, png, container):
    out = load_image(container(png))
    assert out.mode == "RGB" and out.size == ref.size
    assert np.array_equal(_pixels(out), _pixels(ref))


def test_jpeg_bytes():
    y, x = np.mgrid[0:32, 0:48]
    smooth = np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)
    out = load_image(_encode(Image.fromarray(smooth), "JPEG"))
    assert out.mode == "RGB" and out.size == (48, 32)
    # lossy, but a smooth picture comes back close
    assert np.abs(_pixels(out).astype(int) - smooth.astype(int)).mean() < 8


def test_path_str_and_pathlib(tmp_path, ref, png):
    f = tmp_path / "a.png"
    f.write_bytes(png)
    for arg in (f, str(f)):
        assert np.array_equal(_pixels(load_image(arg)), _pixels(ref))


def test_relative_path_with_base_dir(tmp_path, ref, png):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(png)
    assert np.array_equal(_pixels(load_image("sub/a.png", base_dir=tmp_path)), _pixels(ref))
    assert np.array_equal(_pixels(load_image({"path": "sub/a.png"}, base_dir=str(tmp_path))), _pixels(ref))
    with pytest.raises(ImageError, match="not found"):
        load_image("sub/a.png", base_dir=tmp_path / "elsewhere")


def test_absolute_path_ignores_base_dir(tmp_path, ref, png):
    f = tmp_path / "a.png"
    f.write_bytes(png)
    assert np.array_equal(_pixels(load_image(str(f), base_dir="/nonexistent")), _pixels(ref))


def test_data_url_and_bare_base64(ref, png):
    b64 = base64.b64encode(png).decode()
    assert np.array_equal(_pixels(load_image(f"data:image/png;base64,{b64}")), _pixels(ref))
    assert np.array_equal(_pixels(load_image(b64)), _pixels(ref))


def test_dicts(tmp_path, ref, png):
    f = tmp_path / "a.png"
    f.write_bytes(png)
    assert np.array_equal(_pixels(load_image({"bytes": png})), _pixels(ref))
    assert np.array_equal(_pixels(load_image({"path": str(f)})), _pixels(ref))
    # the datasets Image feature stores both keys; bytes win, a None is skipped
    assert np.array_equal(_pixels(load_image({"bytes": png, "path": "missing.png"})), _pixels(ref))
    assert np.array_equal(_pixels(load_image({"bytes": None, "path": str(f)})), _pixels(ref))
    with pytest.raises(ImageError, match="neither"):
        load_image({"url": "x"})


def test_numpy_arrays(ref, png):
    hwc = _pixels(ref).copy()
    assert np.array_equal(_pixels(load_image(hwc)), hwc)
    gray = hwc[:, :, 0].copy()
    out = load_image(gray)
    assert out.mode == "RGB" and np.array_equal(_pixels(out)[:, :, 2], gray)
    one_channel = load_image(gray[:, :, None])
    assert np.array_equal(_pixels(one_channel), _pixels(out))
    # parquet object columns hand over an array of one element
    obj = np.empty(1, dtype=object)
    obj[0] = png
    assert np.array_equal(_pixels(load_image(obj)), hwc)
    obj2 = np.empty((1, 1), dtype=object)
    obj2[0, 0] = {"bytes": png}
    assert np.array_equal(_pixels(load_image(obj2)), hwc)


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4, 3), dtype=np.float32), np.zeros((3,), dtype=np.uint8), np.zeros((2, 4, 4, 3), dtype=np.uint8)],
)
def test_unreadable_arrays(array):
    with pytest.raises(ImageError, match="array"):
        load_image(array)


def test_uint8_array_of_odd_channel_count_is_an_image_error():
    with pytest.raises(ImageError):
        load_image(np.zeros((4, 4, 7), dtype=np.uint8))


def test_rgba_and_l_become_rgb(ref):
    rgba = ref.convert("RGBA")
    out = load_image(_encode(rgba, "PNG"))
    assert out.mode == "RGB" and np.array_equal(_pixels(out), _pixels(ref))
    gray = ref.convert("L")
    out = load_image(_encode(gray, "PNG"))
    assert out.mode == "RGB"
    g = _pixels(gray)
    assert all(np.array_equal(_pixels(out)[:, :, c], g) for c in range(3))
    pal = ref.convert("P")
    assert load_image(pal).mode == "RGB"


def test_corrupt_bytes():
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(b"this is not an image at all")
    with pytest.raises(ImageError):
        load_image(b"")


def test_truncated_png():
    png = _encode(_noise(1, (64, 64)), "PNG")
    with pytest.raises(ImageError, match="truncated"):
        load_image(png[: len(png) // 2])


def test_truncated_jpeg():
    jpg = _encode(_noise(1, (64, 64)), "JPEG")
    with pytest.raises(ImageError):
        load_image(jpg[: len(jpg) // 2])


@pytest.mark.parametrize(
    "text", ["data:image/png;base64,@@not base64@@", "data:image/png;base64,iVBORw0KGgo=x", "A" * 63 + "!" * 10]
)
def test_wrong_base64(text):
    with pytest.raises(ImageError):
        load_image(text)


def test_valid_base64_of_non_image():
    b64 = base64.b64encode(b"hello, this is text and not a picture of anything at all....").decode()
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(b64)
    with pytest.raises(ImageError, match="not a readable image"):
        load_image("data:image/png;base64," + b64)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="not found"):
        load_image("nope.png")


def test_overlong_or_nul_string_is_an_image_error():
    with pytest.raises(ImageError):
        load_image("x/" * 3000 + "a.png")  # longer than the OS allows for a path
    with pytest.raises(ImageError):
        load_image("a\0b.png")


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path)


@pytest.mark.parametrize("value", [12, 3.5, None, ["a.png"], object()])
def test_unknown_type(value):
    with pytest.raises(ImageError, match="cannot read"):
        load_image(value)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_decompression_bomb_rejected_before_decoding(png):
    bomb = _with_ihdr_size(png, 5000, 5000)  # 25 M pixels claimed by a file of a few hundred bytes
    assert len(bomb) < 2000 and DEFAULT_MAX_PIXELS < 5000 * 5000
    with pytest.raises(ImageError, match="above the limit"):
        load_image(bomb)
    # without our limit it gets as far as decoding, which fails on the missing data: the limit came first
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(bomb, max_pixels=None)


def test_huge_bomb_header_rejected(png):
    bomb = _with_ihdr_size(png, 50000, 50000)
    with pytest.raises(ImageError):
        load_image(bomb)
    with pytest.raises(ImageError):
        load_image("data:image/png;base64," + base64.b64encode(bomb).decode())
    with pytest.raises(ImageError):
        load_image({"bytes": bomb})


def test_max_pixels_is_a_limit_on_width_times_height(ref, png):
    w, h = ref.size
    assert load_image(png, max_pixels=w * h).size == (w, h)
    with pytest.raises(ImageError, match="above the limit"):
        load_image(png, max_pixels=w * h - 1)


def test_bomb_in_a_file_rejected(tmp_path, png):
    f = tmp_path / "bomb.png"
    f.write_bytes(_with_ihdr_size(png, 5000, 5000))
    with pytest.raises(ImageError, match="above the limit"):
        load_image(f)


def test_to_png_bytes_passes_png_through(png):
    assert to_png_bytes(png) is not None
    assert to_png_bytes(png) == png
    assert to_png_bytes(bytearray(png)) == png


def test_to_png_bytes_converts(ref):
    jpg = _encode(ref, "JPEG")
    out = to_png_bytes(jpg)
    assert out[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(_pixels(load_image(out)), _pixels(load_image(jpg)))
    assert np.array_equal(_pixels(load_image(to_png_bytes(ref))), _pixels(ref))


def test_to_data_url_round_trip(ref, png):
    url = to_data_url(ref)
    assert url.startswith("data:image/png;base64,")
    assert np.array_equal(_pixels(load_image(url)), _pixels(ref))
    assert to_data_url(png) == f"data:image/png;base64,{base64.b64encode(png).decode()}"
    jpeg_url = to_data_url(ref, fmt="JPEG")
    assert jpeg_url.startswith("data:image/jpeg;base64,")
    assert load_image(jpeg_url).size == ref.size


def test_image_hash_equal_across_containers(tmp_path, ref, png):
    f = tmp_path / "a.png"
    f.write_bytes(png)
    hashes = {
        image_hash(ref),
        image_hash(png),
        image_hash(str(f)),
        image_hash({"bytes": png}),
        image_hash(to_data_url(png)),
        image_hash(_pixels(ref).copy()),
        image_hash(ref.convert("RGBA")),
    }
    assert len(hashes) == 1


def test_image_hash_differs_for_different_pixels(ref):
    changed = _pixels(ref).copy()
    changed[0, 0, 0] ^= 1
    assert image_hash(changed) != image_hash(ref)
    assert image_hash(_noise(1)) != image_hash(ref)


def test_image_hash_depends_on_shape():
    flat = np.zeros((4, 6, 3), dtype=np.uint8)
    assert image_hash(flat) != image_hash(flat.reshape(6, 4, 3))  # same bytes, other size
