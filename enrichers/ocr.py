"""OCR: words printed in an image, read by Tesseract (pytesseract over the `tesseract` binary).

Preprocessing: grey, upscaled when the image is small (Tesseract wants text at least ~20 px
high), optionally Otsu-binarised (Tesseract binarises internally; `binarize` is measured in
BENCHMARKS.md). Words below `min_confidence` are dropped. Each image runs in its own
`tesseract` process with a time limit; `enrich_batch` keeps `workers` of them running at
once. A cheap gate (`text_likelihood`) skips images unlikely to contain text.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.documents import DecodedImage, Document, OcrWord
from enrichers.base import BaseEnricher, EnricherUnavailable

_GATE_SIDE = 640


@dataclass(slots=True)
class OcrResult:
    words: list[OcrWord] = field(default_factory=list)
    text: str = ""
    gated: bool = False
    timed_out: bool = False
    seconds: float = 0.0

    def apply(self, doc: Document) -> None:
        doc.ocr_text = self.text
        doc.ocr_words = list(self.words)


def text_likelihood(pixels: np.ndarray) -> int:
    """Count text-line-like regions: a cheap "is there text?" signal (a few ms per image).

    Morphological gradient -> Otsu -> horizontal closing joins characters into lines; lines are
    wide, short, densely filled components.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    scale = _GATE_SIDE / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    _, binary = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    closed = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    lines = 0
    for _x, _y, w, h, area in stats[1:count]:
        if 6 <= h <= 60 and w >= 2.5 * h and w >= 20 and area >= 0.45 * w * h:
            lines += 1
    return lines


def preprocess(pixels: np.ndarray, *, min_side: int, binarize: bool) -> tuple[np.ndarray, float]:
    """Grey (and upscaled so the short side is at least `min_side`, at most 3x); returns image and scale."""
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    scale = min(3.0, max(1.0, min_side / min(grey.shape)))
    if scale > 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    if binarize:
        _, grey = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return grey, scale


class OcrEnricher(BaseEnricher):
    name = "ocr"
    version = "1"

    def __init__(
        self,
        *,
        lang: str = "eng",
        min_confidence: float = 60.0,
        timeout_s: float = 20.0,
        gate: bool = True,
        gate_min_lines: int = 3,
        workers: int = 2,
        min_side: int = 800,
        binarize: bool = False,
        psm: int = 3,
    ) -> None:
        super().__init__()
        self.lang, self.min_confidence, self.timeout_s = lang, min_confidence, timeout_s
        self.gate, self.gate_min_lines, self.workers = gate, gate_min_lines, max(1, workers)
        self.min_side, self.binarize, self.psm = min_side, binarize, psm

    def _load(self) -> None:
        try:
            import pytesseract
        except ImportError as exc:
            raise EnricherUnavailable("ocr", "the pytesseract package is missing", "pip install pytesseract") from exc
        if shutil.which("tesseract") is None:
            raise EnricherUnavailable(
                "ocr", "the tesseract binary is not on PATH", "apt-get install tesseract-ocr tesseract-ocr-eng"
            )
        missing = set(self.lang.split("+")) - set(pytesseract.get_languages(config=""))
        if missing:
            packages = " ".join(f"tesseract-ocr-{m}" for m in sorted(missing))
            raise EnricherUnavailable(
                "ocr", f"Tesseract has no data for {sorted(missing)}", f"apt-get install {packages}"
            )
        # One thread per tesseract process: parallelism comes from running `workers` processes.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        self.tesseract_version = str(pytesseract.get_tesseract_version())

    def _enrich(self, image: DecodedImage) -> OcrResult:
        started = time.perf_counter()
        if self.gate and text_likelihood(image.pixels) < self.gate_min_lines:
            return OcrResult(gated=True, seconds=time.perf_counter() - started)
        result = self.read(image.pixels)
        result.seconds = time.perf_counter() - started
        return result

    def read(self, pixels: np.ndarray) -> OcrResult:
        """OCR without the gate: words (confidence-filtered, boxes normalised 0..1) and line-joined text."""
        import pytesseract

        prepared, scale = preprocess(pixels, min_side=self.min_side, binarize=self.binarize)
        try:
            data = pytesseract.image_to_data(
                prepared,
                lang=self.lang,
                config=f"--oem 1 --psm {self.psm}",
                output_type=pytesseract.Output.DICT,
                timeout=self.timeout_s,
            )
        except RuntimeError as exc:  # pytesseract's time-out
            if "timeout" in str(exc).lower():
                return OcrResult(timed_out=True)
            raise
        height, width = pixels.shape[:2]
        words: list[OcrWord] = []
        lines: dict[tuple[int, int, int], list[str]] = {}
        for i, raw in enumerate(data["text"]):
            text = raw.strip()
            conf = float(data["conf"][i])
            if not text or conf < self.min_confidence:
                continue
            x, y = data["left"][i] / scale, data["top"][i] / scale
            w, h = data["width"][i] / scale, data["height"][i] / scale
            box = (
                round(x / width, 4),
                round(y / height, 4),
                round(min(1.0, (x + w) / width), 4),
                round(min(1.0, (y + h) / height), 4),
            )
            words.append(OcrWord(text=text, confidence=conf, box=box))
            lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(text)
        return OcrResult(words=words, text="\n".join(" ".join(ws) for ws in lines.values()))

    def enrich_batch(self, images: Sequence[DecodedImage]) -> list[OcrResult]:
        self.load()
        if self.workers == 1 or len(images) == 1:
            return [self._enrich(image) for image in images]
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ocr") as pool:
            return list(pool.map(self._enrich, images))
