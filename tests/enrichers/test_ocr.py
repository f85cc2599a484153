"""Real Tesseract on real images (skips with the reason when Tesseract or the shared data is absent)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from engine.documents import DecodedImage
from engine.images import decode_image
from enrichers.base import EnricherUnavailable
from enrichers.ocr import OcrEnricher, OcrResult, preprocess, text_likelihood
from tests.conftest import need_tesseract, noise_image, shared_path


def load(*parts: str) -> DecodedImage:
    return decode_image(shared_path(*parts).read_bytes(), max_pixels=80_000_000)


def words_of(result: OcrResult) -> set[str]:
    return {w.lower() for w in re.findall(r"\w[\w.]*", result.text)}


@pytest.fixture(scope="module")
def ocr() -> OcrEnricher:
    need_tesseract()
    enricher = OcrEnricher(gate=False)
    enricher.load()
    return enricher


def test_reads_rendered_text(ocr: OcrEnricher) -> None:
    result = ocr.enrich(load("samples", "ocr_synthetic.png"))
    assert {"invoice", "total", "$45.90".lower().lstrip("$")} <= words_of(result) | {"45.90"}
    assert "Invoice" in result.text and "45.90" in result.text
    assert all(w.confidence >= 60 for w in result.words)
    assert all(0 <= v <= 1 for w in result.words for v in w.box)


@pytest.mark.parametrize("receipt", ["000", "001", "002"])
def test_reads_sroie_company_names(ocr: OcrEnricher, receipt: str) -> None:
    key = json.loads(shared_path("sroie-100", "key", f"{receipt}.json").read_text())
    result = ocr.enrich(load("sroie-100", "img", f"{receipt}.jpg"))
    expected = {t.lower() for t in re.findall(r"\w+", key["company"]) if len(t) > 2}
    found = expected & words_of(result)
    assert len(found) >= 0.6 * len(expected), (expected, result.text[:300])


def test_low_confidence_words_are_dropped(ocr: OcrEnricher) -> None:
    strict = OcrEnricher(gate=False, min_confidence=101)
    strict.load()
    assert strict.enrich(load("samples", "ocr_synthetic.png")).words == []


def test_time_limit_gives_no_text_not_an_error(ocr: OcrEnricher) -> None:
    hasty = OcrEnricher(gate=False, timeout_s=0.001)
    hasty.load()
    result = hasty.enrich(load("sroie-100", "img", "000.jpg"))
    assert result.timed_out and result.text == ""


def test_gate_passes_text_and_skips_plain_images(ocr: OcrEnricher) -> None:
    gated = OcrEnricher(gate=True)
    gated.load()
    assert not gated.enrich(load("sroie-100", "img", "003.jpg")).gated
    blank = DecodedImage(noise_image(1, (400, 300)), "PNG", 1, None)
    assert text_likelihood(blank.pixels) == 0
    assert gated.enrich(blank).gated and gated.enrich(blank).text == ""


def test_batch_equals_single(ocr: OcrEnricher) -> None:
    images = [load("samples", "ocr_synthetic.png"), load("sroie-100", "img", "004.jpg")]
    batch = ocr.enrich_batch(images)
    assert [r.text for r in batch] == [ocr.enrich(im).text for im in images]


def test_missing_language_says_what_to_install() -> None:
    need_tesseract()
    with pytest.raises(EnricherUnavailable, match="apt-get install tesseract-ocr-xxx"):
        OcrEnricher(lang="xxx").load()


def test_preprocess_upscales_small_images_and_can_binarise() -> None:
    small = np.asarray(Image.fromarray(noise_image(2, (200, 100))))
    grey, scale = preprocess(small, min_side=300, binarize=True)
    assert scale == 3.0 and grey.shape == (300, 600)
    assert set(np.unique(grey)) <= {0, 255}
