"""Colour: an HSV histogram as a vector (for "looks like" search) and named dominant colours.

The histogram is 8 hue x 4 saturation x 4 value bins, normalised to sum 1 and square-rooted,
so the cosine of two histograms is their Bhattacharyya coefficient (Hellinger kernel).
Named colours classify every pixel into one of 12 names and report each name's share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from engine.documents import ColourShare, DecodedImage, Document
from enrichers.base import BaseEnricher

COLOUR_NAMES = (
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "grey",
    "white",
)
HIST_BINS = (8, 4, 4)
HIST_DIM = HIST_BINS[0] * HIST_BINS[1] * HIST_BINS[2]
_MAX_SIDE = 256  # colour statistics do not need more pixels than this
_MIN_SHARE = 0.01


@dataclass(slots=True)
class ColourResult:
    histogram: np.ndarray
    colours: list[ColourShare]

    def apply(self, doc: Document) -> None:
        doc.colours = list(self.colours)
        doc.vectors["colour"] = self.histogram


def _small_hsv(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = _MAX_SIDE / max(h, w)
    if scale < 1.0:
        pixels = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2HSV)


def colour_histogram(hsv: np.ndarray) -> np.ndarray:
    """128-d float32 unit vector: sqrt of the normalised 8x4x4 HSV histogram."""
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    total = float(hist.sum()) or 1.0
    vec = np.sqrt(hist / total).astype(np.float32)
    norm = float(np.linalg.norm(vec)) or 1.0
    return vec / norm


def colour_names(hsv: np.ndarray) -> np.ndarray:
    """Per-pixel index into COLOUR_NAMES (OpenCV HSV: H 0..179, S and V 0..255)."""
    h = hsv[..., 0].astype(np.int16) * 2  # degrees
    s = hsv[..., 1].astype(np.int16)
    v = hsv[..., 2].astype(np.int16)
    idx = np.empty(h.shape, dtype=np.int8)
    # Chromatic pixels by hue first, then the achromatic and brown overrides.
    hue_edges = [
        (0, 15, "red"),
        (15, 40, "orange"),
        (40, 70, "yellow"),
        (70, 165, "green"),
        (165, 195, "cyan"),
        (195, 255, "blue"),
        (255, 290, "purple"),
        (290, 340, "pink"),
        (340, 361, "red"),
    ]
    for lo, hi, name in hue_edges:
        idx[(h >= lo) & (h < hi)] = COLOUR_NAMES.index(name)
    warm = (h < 45) | (h >= 340)
    idx[warm & (v < 150) & (s > 60)] = COLOUR_NAMES.index("brown")
    idx[((h < 15) | (h >= 330)) & (s < 120) & (v >= 180)] = COLOUR_NAMES.index("pink")
    achromatic = s < 45
    idx[achromatic] = COLOUR_NAMES.index("grey")
    idx[achromatic & (v >= 205)] = COLOUR_NAMES.index("white")
    idx[v < 45] = COLOUR_NAMES.index("black")
    idx[(s < 25) & (v >= 225)] = COLOUR_NAMES.index("white")
    return idx


def dominant_colours(hsv: np.ndarray, *, min_share: float = _MIN_SHARE) -> list[ColourShare]:
    """Named colours covering at least `min_share` of the image, largest first."""
    counts = np.bincount(colour_names(hsv).ravel(), minlength=len(COLOUR_NAMES)).astype(np.float64)
    shares = counts / max(1.0, counts.sum())
    order = np.argsort(-shares, kind="stable")
    return [ColourShare(COLOUR_NAMES[i], float(shares[i])) for i in order if shares[i] >= min_share]


class ColourEnricher(BaseEnricher):
    name = "colour"
    version = "1"
    default_vector_fields: ClassVar[dict[str, int]] = {"colour": HIST_DIM}

    def _enrich(self, image: DecodedImage) -> ColourResult:
        hsv = _small_hsv(image.pixels)
        return ColourResult(histogram=colour_histogram(hsv), colours=dominant_colours(hsv))
