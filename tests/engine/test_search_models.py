"""Search with the real model enrichers (Tesseract OCR, YOLO) on real images; CLIP is absent here.

Skips with the reason when Tesseract, ultralytics/openvino or the shared data are missing.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.documents import content_id
from engine.engine import Engine
from engine.filters import parse_filters
from engine.ingest import reindex_stale
from engine.search import SearchRequest, run_search
from engine.settings import Settings
from enrichers.colour import ColourEnricher
from tests.conftest import DATA, need_detector, need_tesseract

RECEIPTS = [f"{i:03d}" for i in range(12)]


def model_settings(data_dir: Path, **extra: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        enrichers=["colour", "phash", "ocr", "objects", "clip"],
        objects={"model": str(need_detector())},
        clip={"model": str(data_dir / "no-clip"), "local_files_only": True},
        device="cpu",
        batch_size=16,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    need_tesseract()
    if not DATA.exists():
        pytest.skip(f"shared data {DATA} is absent")
    tmp = tmp_path_factory.mktemp("models")
    flickr = sorted((DATA / "flickr8k-1k" / "images").glob("*.jpg"))[:120]
    receipts = [DATA / "sroie-100" / "img" / f"{r}.jpg" for r in RECEIPTS]
    from engine.ingest import ingest_paths

    engine = Engine.open(model_settings(tmp / "data"))
    report = ingest_paths(engine, [*receipts, *flickr, DATA / "samples"])
    assert not report.failed, report.failed
    yield engine
    engine.close()


def company(receipt: str) -> str:
    return str(json.loads((DATA / "sroie-100" / "key" / f"{receipt}.json").read_text())["company"])


def same_company(receipt: str) -> set[str]:
    """Receipts of the same business (e.g. two MR D.I.Y. branches): all relevant to its name."""

    def core(name: str) -> str:
        return re.sub(r"\(.*?\)|\W|SDN|BHD", "", name.upper())

    return {f"{r}.jpg" for r in RECEIPTS if core(company(r)) == core(company(receipt))}


@pytest.mark.parametrize("receipt", RECEIPTS[:8])
def test_company_name_finds_its_receipt_first_with_a_snippet(indexed: Engine, receipt: str) -> None:
    response = run_search(indexed, SearchRequest(text=company(receipt), k=3))
    names = [Path(h.document.path or "").name for h in response.hits]
    assert names[0] in same_company(receipt), (company(receipt), names)
    assert f"{receipt}.jpg" in names
    top = response.hits[0]
    assert top.ocr_snippet and "<mark>" in top.ocr_snippet
    assert "ocr_snippet" in top.to_dict()


def test_label_search_and_filter(indexed: Engine) -> None:
    dogs = run_search(indexed, SearchRequest(text="dog", filters=parse_filters(["label=dog"]), k=10))
    assert dogs.total >= 5
    assert all("dog" in {lb.name for lb in h.document.labels} for h in dogs.hits)
    puppies = run_search(indexed, SearchRequest(text="puppies", k=5))
    assert puppies.hits and all("dog" in {lb.name for lb in h.document.labels} for h in puppies.hits)
    crowd = run_search(indexed, SearchRequest(filters=parse_filters(["label_count.person>=2"]), k=1000))
    assert crowd.hits
    for hit in crowd.hits:
        assert next(lb.count for lb in hit.document.labels if lb.name == "person") >= 2
    facets = run_search(indexed, SearchRequest(facets=["label"])).facets["label"]
    assert facets["person"] >= facets.get("dog", 0) > 0


def test_a_photo_of_a_receipt_finds_that_receipt(indexed: Engine) -> None:
    original = DATA / "sroie-100" / "img" / "005.jpg"
    img = Image.open(original).convert("RGB")
    w, h = img.size
    out = io.BytesIO()
    img.crop((int(0.03 * w), int(0.03 * h), int(0.97 * w), int(0.9 * h))).save(out, format="JPEG", quality=70)
    response = run_search(indexed, SearchRequest(image=out.getvalue(), k=3))
    assert response.hits[0].id == content_id(original.read_bytes())
    assert "image_text" in response.legs and "detector" in response.legs
    assert response.hits[0].signals["rank.image_text"] == 1


def test_detector_vector_leg_finds_similar_photos(indexed: Engine) -> None:
    bus = content_id((DATA / "samples" / "bus.jpg").read_bytes())
    response = run_search(indexed, SearchRequest(like=bus, k=5))
    assert response.legs["detector"] > 0
    assert all("cosine.detector" in h.signals for h in response.hits if "rank.detector" in h.signals)


def test_reindex_stale_reruns_only_the_changed_enricher(indexed: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ColourEnricher, "version", "2")
    before = {d.id: d.ocr_text for d in indexed.store.get(indexed.store.filter_ids([])).values()}
    report = reindex_stale(indexed)
    assert report.replaced == len(before) and not report.failed
    docs = indexed.store.get(list(before)).values()
    assert all(d.enrichments["colour"] == "2" for d in docs)
    assert {d.id: d.ocr_text for d in docs} == before  # OCR was not re-run, its output kept
    assert reindex_stale(indexed).unchanged == len(before)


def test_doctor_tells_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tesseract()
    monkeypatch.setenv("IMGSEARCH_ENRICHERS", '["colour", "phash", "ocr", "objects", "clip"]')
    monkeypatch.setenv("IMGSEARCH_OBJECTS__MODEL", str(need_detector()))
    monkeypatch.setenv("IMGSEARCH_CLIP__MODEL", str(tmp_path / "no-clip"))
    monkeypatch.setenv("IMGSEARCH_CLIP__LOCAL_FILES_ONLY", "true")
    code = main(["doctor", "--data-dir", str(tmp_path / "d")])
    out = capsys.readouterr().out
    assert code == 3
    lines = {
        line.split()[1]: line.split()[0]
        for line in out.splitlines()
        if line
        and not line.startswith(" ")
        and len(line.split()) > 1
        and line.split()[1].startswith(("store", "enricher", "vectors"))
    }
    assert lines["enricher.ocr"] == "ready" and lines["enricher.objects"] == "ready"
    assert lines["enricher.clip"] == "missing" and lines["store"] == "ready"
    assert "fix: set IMGSEARCH_CLIP__MODEL" in out and "running without: enricher.clip" in out


def test_cli_finds_a_receipt_by_company_and_shows_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tesseract()
    monkeypatch.setenv("IMGSEARCH_ENRICHERS", '["colour", "phash", "ocr"]')
    folder = tmp_path / "receipts"
    folder.mkdir()
    for r in RECEIPTS[:6]:
        (folder / f"{r}.jpg").write_bytes((DATA / "sroie-100" / "img" / f"{r}.jpg").read_bytes())
    data = str(tmp_path / "d")
    assert main(["ingest", str(folder), "--data-dir", data, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", company("003"), "--data-dir", data, "--k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = next(line for line in out if line.lstrip().startswith("1."))
    assert first.endswith("003.jpg")
    text_line = out[out.index(first) + 2]
    assert text_line.strip().startswith("text:") and "[" in text_line and "]" in text_line
