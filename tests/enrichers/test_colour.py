from __future__ import annotations

import numpy as np
import pytest

from engine.documents import DecodedImage, Document
from enrichers.colour import COLOUR_NAMES, HIST_DIM, ColourEnricher, ColourResult
from enrichers.registry import create


def decoded(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, format="PNG", orientation_tag=1, taken_at=None)


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> DecodedImage:
    return decoded(np.full((size[1], size[0], 3), rgb, dtype=np.uint8))


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 30, 30), "red"),
        ((245, 140, 20), "orange"),
        ((245, 225, 40), "yellow"),
        ((40, 170, 60), "green"),
        ((40, 210, 220), "cyan"),
        ((30, 70, 210), "blue"),
        ((130, 50, 180), "purple"),
        ((245, 150, 190), "pink"),
        ((120, 70, 30), "brown"),
        ((10, 10, 10), "black"),
        ((128, 128, 128), "grey"),
        ((250, 250, 250), "white"),
    ],
)
def test_solid_colour_is_named(rgb: tuple[int, int, int], name: str) -> None:
    result = ColourEnricher().enrich(solid(rgb))
    assert isinstance(result, ColourResult)
    assert result.colours[0].name == name
    assert result.colours[0].share == pytest.approx(1.0)


def test_shares_follow_area() -> None:
    pixels = np.full((100, 100, 3), (250, 250, 250), dtype=np.uint8)
    pixels[:, :30] = (30, 70, 210)
    shares = {c.name: c.share for c in ColourEnricher().enrich(decoded(pixels)).colours}
    assert shares["blue"] == pytest.approx(0.3, abs=0.02)
    assert shares["white"] == pytest.approx(0.7, abs=0.02)
    assert set(shares) <= set(COLOUR_NAMES)


def test_histogram_is_a_unit_vector_and_similar_images_are_closer() -> None:
    enricher = ColourEnricher()
    red = enricher.enrich(solid((220, 30, 30))).histogram
    dark_red = enricher.enrich(solid((200, 40, 35))).histogram
    blue = enricher.enrich(solid((30, 70, 210))).histogram
    assert red.shape == (HIST_DIM,) and red.dtype == np.float32
    assert np.linalg.norm(red) == pytest.approx(1.0, abs=1e-5)
    assert float(red @ dark_red) > float(red @ blue)


def test_apply_writes_document_fields() -> None:
    doc = Document(id="0" * 32, path=None, width=1, height=1, format="png", bytes=1)
    ColourEnricher().enrich(solid((30, 70, 210))).apply(doc)
    assert doc.colours[0].name == "blue"
    assert doc.vectors["colour"].shape == (HIST_DIM,)


def test_registry_rejects_unknown_names() -> None:
    assert create("colour").name == "colour"
    with pytest.raises(ValueError, match=r"unknown enricher .nope.; choose from colour, objects, ocr, phash"):
        create("nope")
