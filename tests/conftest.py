"""Shared fixtures. Real data comes from ../shared (or IMGSEARCH_TEST_SHARED); tests needing it skip
with the reason when it is absent."""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


MODEL_DIR = SHARED / "models" / "yolo11n_int8_openvino_model"
ES_SPEC = SHARED / "es-spec"
ES_SCHEMA = ES_SPEC / "es-9.5-stack-strict.schema.json"


def es_spec(name: str) -> Any:
    """A module of the shared es-spec folder (`recorder`, `validate`), or a skip saying what is missing."""
    if not (ES_SPEC / f"{name}.py").exists():
        pytest.skip(f"{ES_SPEC} is absent: the Elasticsearch request contract cannot be checked")
    if importlib.util.find_spec("elasticsearch") is None:
        pytest.skip("the elasticsearch client is not installed (pip install 'elasticsearch>=9,<10')")
    sys.path.insert(0, str(ES_SPEC))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ES_SPEC))


def need_module(name: str) -> None:
    """Skip (with the reason) when an optional model package is not installed."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (scripts/setup installs it)")


def need_tesseract() -> None:
    import shutil

    need_module("pytesseract")
    if shutil.which("tesseract") is None:
        pytest.skip("the tesseract binary is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")


def need_detector() -> Path:
    need_module("ultralytics")
    need_module("openvino")
    if not MODEL_DIR.exists():
        pytest.skip(f"detector model {MODEL_DIR} is absent (set IMGSEARCH_TEST_SHARED to the shared/ folder)")
    return MODEL_DIR


def make_tiny_clip(directory: Path) -> Path:
    """A randomly initialised CLIP (16-d, 32x32 images, 11-word vocabulary) saved like a real checkpoint."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast

    words = ["<|startoftext|>", "<|endoftext|>", "a", "photo", "of", "dog", "cat", "red", "car", "receipt", "the"]
    vocab = {w if w.startswith("<|") else f"{w}</w>": i for i, w in enumerate(words)}
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.decoder = decoders.BPEDecoder(suffix="</w>")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
    }
    tokenizer = CLIPTokenizerFast(tokenizer_object=bpe, **special)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(directory)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_module("torch")
    need_module("transformers")
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))
