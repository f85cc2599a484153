"""Perceptual hash: 64-bit DCT pHash, for near-duplicate search by Hamming distance."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.documents import DecodedImage, Document
from enrichers.base import BaseEnricher


def phash(pixels: np.ndarray) -> int:
    """The 64-bit pHash of RGB pixels: the 8x8 lowest DCT frequencies of a 32x32 grey image vs their median."""
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8]
    bits = (low > np.median(low)).ravel()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def to_hex(value: int) -> str:
    return f"{value:016x}"


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(slots=True)
class PHashResult:
    value: int

    def apply(self, doc: Document) -> None:
        doc.phash = to_hex(self.value)


class PHashEnricher(BaseEnricher):
    name = "phash"
    version = "1"

    def _enrich(self, image: DecodedImage) -> PHashResult:
        return PHashResult(phash(image.pixels))
