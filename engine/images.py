"""Safe image decoding: size limits before pixels are touched, EXIF transpose, RGB out.

Every failure is an `ImageError` (or `ImageTooLarge`) whose message names what was wrong, so
ingest can report the file and carry on with the rest of the batch.
"""

from __future__ import annotations

import io
import sys
import warnings
from datetime import datetime

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.documents import DecodedImage
from engine.errors import ImageError, ImageTooLarge

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_ORIENTATION = 0x0112


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> DecodedImage:
    """Decode `data` into RGB pixels.

    Raises `ImageError` for empty, non-image, unsupported or corrupt input and `ImageTooLarge`
    when the file or its pixel count exceeds the limits (checked from the header, before the
    pixels are decompressed).
    """
    if not data:
        raise ImageError("empty file (0 bytes): nothing to decode")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLarge(f"file is {len(data):,} bytes, over the {max_bytes:,}-byte limit (max_file_bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning fires between its limit and twice it; ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = _pillow_open(data)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image dimensions are too large (decompression bomb guard): {exc}") from exc
    except (UnidentifiedImageError, ImportError) as exc:
        raise ImageError("not a recognised image format (is it really an image?)") from exc
    except Exception as exc:
        raise ImageError(f"image header is truncated or corrupt: {exc}") from exc

    with img:
        fmt = (img.format or "").upper()
        if fmt not in ALLOWED_FORMATS:
            raise ImageError(f"unsupported image format {fmt or 'unknown'!r}; supported: {sorted(ALLOWED_FORMATS)}")
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageError(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} = {width * height:,} pixels, over the {max_pixels:,}-pixel limit "
                "(raise IMGSEARCH_MAX_IMAGE_PIXELS if this image is genuine)"
            )
        orientation_tag, taken_at = _read_exif(img)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.seek(0)
                img.load()
                rgb = _to_rgb(ImageOps.exif_transpose(img) or img)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"image data is truncated or corrupt: {exc}") from exc
    pixels = np.asarray(rgb, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"could not convert image to RGB (got array of shape {pixels.shape})")
    return DecodedImage(pixels=pixels, format=fmt, orientation_tag=orientation_tag, taken_at=taken_at)


def _pillow_open(data: bytes) -> Image.Image:
    """Pillow's own `Image.open`. ultralytics replaces it process-wide with one that, on a file Pillow
    cannot identify, pip-installs a HEIF plugin at run time; decoding untrusted uploads must not."""
    opener = Image.open
    module = sys.modules.get(getattr(opener, "__module__", "") or "")
    if module is not None and module.__name__.startswith("ultralytics"):
        opener = getattr(module, "_image_open", opener)
    return opener(io.BytesIO(data))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        return Image.fromarray((arr / hi * 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def _read_exif(img: Image.Image) -> tuple[int, datetime | None]:
    try:
        exif = img.getexif()
    except Exception:
        return 1, None
    orientation = exif.get(_ORIENTATION, 1)
    raw = None
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    except Exception:
        raw = None
    raw = raw or exif.get(_DATETIME)
    return (int(orientation) if isinstance(orientation, int) else 1), _parse_exif_date(raw)


def _parse_exif_date(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    text = raw.strip().rstrip("\x00")
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def thumbnail_jpeg(data: bytes, *, size: int, max_pixels: int) -> bytes:
    """A JPEG thumbnail (longest side `size`) of an image's bytes; raises like `decode_image`."""
    decoded = decode_image(data, max_pixels=max_pixels)
    img = Image.fromarray(decoded.pixels)
    img.thumbnail((size, size))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()
