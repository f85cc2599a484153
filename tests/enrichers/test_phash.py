from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.documents import DecodedImage, Document
from enrichers.phash import PHashEnricher, hamming, phash, to_hex
from tests.conftest import noise_image


def test_near_duplicates_are_close_and_different_images_far() -> None:
    original = noise_image(11, (256, 192))
    resized = np.asarray(Image.fromarray(original).resize((128, 96)))
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, format="JPEG", quality=40)
    recompressed = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    brighter = np.clip(original.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    base = phash(original)
    assert hamming(base, phash(resized)) <= 4
    assert hamming(base, phash(recompressed)) <= 6
    assert hamming(base, phash(brighter)) <= 10  # clipping at 255 moves a few bits; the default threshold is 12
    others = [hamming(base, phash(noise_image(seed, (256, 192)))) for seed in range(20, 30)]
    assert min(others) > 12


def test_hash_is_64_bits_as_16_hex_chars() -> None:
    value = phash(noise_image(5))
    assert 0 <= value < 2**64
    doc = Document(id="0" * 32, path=None, width=1, height=1, format="png", bytes=1)
    PHashEnricher().enrich(DecodedImage(noise_image(5), "PNG", 1, None)).apply(doc)
    assert doc.phash == to_hex(value) and len(doc.phash) == 16
