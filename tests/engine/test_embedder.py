"""CLIP plumbing with a tiny randomly initialised CLIP saved to a temp dir (no weights exist here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.documents import DecodedImage
from engine.embedder import ClipEmbedder
from engine.engine import Engine
from engine.ingest import ingest_paths
from engine.search import SearchRequest, run_search
from engine.settings import Settings
from enrichers.base import EnricherUnavailable
from tests.conftest import image_bytes, need_module, noise_image


@pytest.fixture(scope="module")
def clip(tiny_clip: Path) -> ClipEmbedder:
    embedder = ClipEmbedder(model=str(tiny_clip), device="cpu", batch_size=3)
    embedder.load()
    return embedder


def test_loads_local_directory_offline(clip: ClipEmbedder) -> None:
    assert clip.local_files_only and clip.device == "cpu" and clip.dtype == "float32"
    assert clip.vector_fields == {"clip": 16}


def test_image_vectors_are_unit_and_batch_equals_single(clip: ClipEmbedder) -> None:
    images = [noise_image(i, (40 + i, 50)) for i in range(7)]  # 7 > batch_size: several batches
    batch = clip.encode_images(images)
    assert batch.shape == (7, 16) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)
    for i in (0, 4, 6):
        assert np.allclose(clip.encode_images([images[i]])[0], batch[i], atol=1e-5)
    assert not np.allclose(batch[0], batch[1])


def test_text_and_images_share_one_space(clip: ClipEmbedder) -> None:
    text = clip.encode_text(["a photo of a dog", "red car", "a photo of " + "the " * 40 + "receipt"])
    assert text.shape == (3, 16)  # the long query is truncated to the context length, not an error
    assert np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    image = clip.encode_images([noise_image(1)])
    assert image.shape[1] == text.shape[1]
    assert np.allclose(clip.encode_text(["red car"])[0], text[1], atol=1e-5)


def test_enricher_interface(clip: ClipEmbedder) -> None:
    results = clip.enrich_batch([DecodedImage(noise_image(3), "PNG", 1, None)])
    assert results[0].vector.shape == (16,)


def test_missing_weights_say_what_to_do(tmp_path: Path) -> None:
    need_module("transformers")
    with pytest.raises(EnricherUnavailable) as info:
        ClipEmbedder(model=str(tmp_path / "no-such-dir"), local_files_only=True).load()
    assert "IMGSEARCH_CLIP__MODEL" in info.value.fix and "cannot load CLIP weights" in info.value.reason


def test_engine_uses_clip_for_text_and_images(tiny_clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        (folder / f"img{i}.png").write_bytes(image_bytes(noise_image(i)))
    settings = Settings(
        data_dir=tmp_path / "data", enrichers=["colour", "phash", "clip"], clip={"model": str(tiny_clip)}, device="cpu"
    )
    with Engine.open(settings) as engine:
        report = ingest_paths(engine, [folder])
        assert report.added == 6
        assert engine.indexes["clip"].ntotal == 6
        doc = engine.get(report.ids[0])
        assert doc.enrichments["clip"] == "1" and doc.vectors["clip"].shape == (16,)
        text = run_search(engine, SearchRequest(text="a photo of a dog", k=6))
        assert text.legs["clip"] == 6 and len(text.hits) == 6  # the CLIP leg ranks every image
        assert all("cosine.clip" in h.signals for h in text.hits)
        similar = run_search(engine, SearchRequest(like=report.ids[0], k=3))
        assert "clip" in similar.legs and report.ids[0] not in [h.id for h in similar.hits]


def test_engine_runs_without_clip_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    need_module("transformers")
    settings = Settings(
        data_dir=tmp_path / "data",
        enrichers=["colour", "phash", "clip"],
        clip={"model": str(tmp_path / "missing-clip"), "local_files_only": True},
        device="cpu",
    )
    (tmp_path / "a.png").write_bytes(image_bytes((200, 30, 30)))
    with Engine.open(settings) as engine:
        report = ingest_paths(engine, [tmp_path / "a.png"])
        assert report.added == 1 and not report.failed
        assert "clip" not in engine.indexes
        assert run_search(engine, SearchRequest(text="red")).hits[0].id == report.ids[0]
        states = {c["name"]: c for c in engine.components(load=True)}
        assert states["enricher.clip"]["status"] == "missing"
        assert "IMGSEARCH_CLIP__MODEL" in states["enricher.clip"]["fix"]
    warnings = [r for r in caplog.records if "clip enricher unavailable" in r.getMessage()]
    assert len(warnings) == 1  # said once, clearly


def test_unreachable_hub_fails_fast_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    need_module("transformers")
    from engine.embedder import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens on the discard port
    assert not hub_reachable(timeout=1.0)
    with pytest.raises(EnricherUnavailable, match="model hub cannot be reached"):
        ClipEmbedder(model="openai/clip-vit-base-patch32").load()
