"""Shared fixtures. Real data comes from ../shared (or IMGSEARCH_TEST_SHARED); tests needing it skip
with the reason when it is absent."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.engine import Engine
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMGSEARCH_TEST_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


def shared_path(*parts: str) -> Path:
    """A path under shared/data, or a skip that says what is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (set IMGSEARCH_TEST_SHARED to the shared/ folder)")
    return path


CHEAP_ENRICHERS_ENV = "IMGSEARCH_ENRICHERS"


@pytest.fixture(scope="session", autouse=True)
def cheap_enrichers() -> Iterator[None]:
    """Engine tests run the fast enrichers (colour, pHash); model tests ask for OCR/YOLO/CLIP explicitly.

    Set through the environment so module fixtures, the CLI and subprocesses all see it.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CHEAP_ENRICHERS_ENV, '["colour", "phash"]')
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", workers=2, batch_size=16)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = Engine.open(settings)
    try:
        yield eng
    finally:
        eng.close()


def image_bytes(
    rgb: tuple[int, int, int] | np.ndarray, size: tuple[int, int] = (64, 48), fmt: str = "PNG", **save: object
) -> bytes:
    """Encode a solid colour (or an RGB array) as image bytes."""
    img = Image.fromarray(rgb) if isinstance(rgb, np.ndarray) else Image.new("RGB", size, rgb)
    out = io.BytesIO()
    img.save(out, format=fmt, **save)  # type: ignore[arg-type]
    return out.getvalue()


def noise_image(seed: int, size: tuple[int, int] = (96, 64)) -> np.ndarray:
    """A smooth random image (distinct per seed, stable under resizing)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))
