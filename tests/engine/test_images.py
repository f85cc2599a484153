from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from engine.errors import ImageError, ImageTooLarge
from engine.images import decode_image, thumbnail_jpeg
from tests.conftest import image_bytes, noise_image, shared_path

LIMIT = 80_000_000


def png_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of width x height zeros: tiny on disk, huge decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_decodes_rgb_pixels_and_format() -> None:
    decoded = decode_image(image_bytes((200, 10, 10), (40, 30), "JPEG"), max_pixels=LIMIT)
    assert decoded.format == "JPEG"
    assert (decoded.width, decoded.height) == (40, 30)
    assert decoded.pixels.shape == (30, 40, 3) and decoded.pixels.dtype == np.uint8
    assert decoded.pixels[..., 0].mean() > 150


def test_rgba_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    decoded = decode_image(out.getvalue(), max_pixels=LIMIT)
    assert decoded.pixels.min() == 255


def test_exif_orientation_is_applied_and_date_read() -> None:
    img = Image.fromarray(noise_image(1, (80, 40)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    exif[0x0132] = "2021:07:04 12:30:00"
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    decoded = decode_image(out.getvalue(), max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == (40, 80)
    assert decoded.orientation_tag == 6
    assert decoded.taken_at == datetime(2021, 7, 4, 12, 30)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty file"),
        (b"hello, I am a text file pretending to be a JPEG\n" * 10, "not a recognised image"),
        (image_bytes((1, 2, 3), (300, 300), "JPEG")[:400], "header is truncated or corrupt"),
        (image_bytes(noise_image(2, (300, 300)), fmt="JPEG")[:-1500], "data is truncated or corrupt"),
    ],
    ids=["zero-byte", "text-as-jpg", "truncated-jpeg-header", "truncated-jpeg-data"],
)
def test_bad_input_names_the_problem(data: bytes, needle: str) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data, max_pixels=LIMIT)
    assert needle in info.value.message


def test_png_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(20_000, 20_000)
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageTooLarge) as info:
        decode_image(bomb, max_pixels=LIMIT)
    assert info.value.status == 413


def test_pixel_limit_is_a_setting() -> None:
    data = image_bytes((0, 0, 0), (100, 100))
    with pytest.raises(ImageTooLarge, match="10,000 pixels"):
        decode_image(data, max_pixels=9_999)
    assert decode_image(data, max_pixels=10_000).width == 100


def test_file_size_limit() -> None:
    with pytest.raises(ImageTooLarge, match="max_file_bytes"):
        decode_image(image_bytes((0, 0, 0)), max_pixels=LIMIT, max_bytes=10)


def test_unsupported_format_is_refused() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PCX")
    with pytest.raises(ImageError, match="unsupported image format 'PCX'"):
        decode_image(out.getvalue(), max_pixels=LIMIT)


def test_real_photo_decodes() -> None:
    data = shared_path("samples", "bus.jpg").read_bytes()
    decoded = decode_image(data, max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == (810, 1080)


def test_thumbnail_is_small_jpeg() -> None:
    thumb = thumbnail_jpeg(image_bytes(noise_image(3, (400, 200))), size=64, max_pixels=LIMIT)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.format == "JPEG"
        assert max(img.size) == 64


def test_decoding_ignores_ultralytics_pillow_patch() -> None:
    """ultralytics patches PIL.Image.open to pip-install a HEIF plugin on unknown files; we must not use it."""
    import importlib.util

    from PIL import Image as PILImage

    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("ultralytics is not installed: nothing patches Pillow")
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)

    assert PILImage.open.__module__.startswith("ultralytics")
    with pytest.raises(ImageError, match="not a recognised image format"):
        decode_image(b"just some text, not an image\n" * 10, max_pixels=LIMIT)
