"""Export/import: a SQLite index moves to a fresh engine (any backend) without re-running the models."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main
from engine.documents import Box, Document, Label, OcrWord
from engine.engine import Engine
from engine.errors import BadRequest
from engine.ingest import ingest_paths
from engine.manifest import Manifest
from engine.migrate import export_documents, import_documents
from engine.search import SearchRequest, run_search
from engine.settings import Settings
from engine.store.base import Click
from tests.conftest import image_bytes, noise_image

HAND_MADE = "f" * 32  # a document with what the cheap enrichers do not produce: labels, boxes, OCR words


def hand_made() -> Document:
    rng = np.random.default_rng(7)
    return Document(
        id=HAND_MADE,
        path="/photos/street.jpg",
        width=640,
        height=480,
        format="jpeg",
        bytes=12345,
        orientation="landscape",
        taken_at=datetime(2021, 5, 4, 12, 30, 1),
        title="Street scene",
        caption="a bus and people",
        tags=["city", "bus"],
        licence="CC-BY",
        source="me",
        ocr_text="STOP here",
        ocr_words=[OcrWord("STOP", 91.5, (0.1, 0.2, 0.3, 0.4)), OcrWord("here", 70.25, (0.4, 0.2, 0.5, 0.4))],
        labels=[Label("person", 2, 0.875, 0.125, [Box(0.1, 0.1, 0.2, 0.5, 0.9), Box(0.5, 0.1, 0.6, 0.5, 0.85)])],
        label_terms=["people", "human"],
        vectors={"colour": rng.random(128).astype(np.float32)},
        enrichments={"colour": "1", "detector": "3"},
        ingested_at=datetime(2024, 1, 2, 3, 4, 5),
        phash="0f0f0f0f0f0f0f0f",
    )


@pytest.fixture
def source(engine: Engine, tmp_path: Path) -> Engine:
    """Engine A: real generated images with a manifest title, a hand-made document, an impression, a click."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        (folder / f"img_{i}.png").write_bytes(image_bytes(noise_image(i)))
    (folder / "red.png").write_bytes(image_bytes((250, 10, 10)))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,title,caption,tags\nimgs/red.png,Sunset,over the harbour,boats;evening\n")
    report = ingest_paths(engine, [folder], manifest=Manifest.load(manifest))
    assert report.added == 7 and not report.failed
    engine.add_documents([hand_made()])
    response = run_search(engine, SearchRequest(text="sunset"))
    engine.store.record_click(Click(response.query_id, response.hits[0].id, 1, datetime(2025, 1, 1, 9, 0, 0)))
    return engine


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Engine]:
    """Engine B: a fresh, empty SQLite engine in another data dir."""
    eng = Engine.open(Settings(data_dir=tmp_path / "B", workers=2, batch_size=16))
    try:
        yield eng
    finally:
        eng.close()


def export_text(engine: Engine) -> str:
    out = io.StringIO()
    export_documents(engine.store, out)
    return out.getvalue()


def all_docs(engine: Engine) -> dict[str, Document]:
    return engine.store.get(engine.store.filter_ids([]))


def fields_of(doc: Document) -> dict[str, Any]:
    return {f.name: getattr(doc, f.name) for f in fields(Document) if f.name != "vectors"}


def hits(engine: Engine, request: SearchRequest) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in run_search(engine, request).hits]


def test_round_trip_keeps_every_field_index_search_and_events(source: Engine, target: Engine) -> None:
    text = export_text(source)
    header = json.loads(text.splitlines()[0])
    assert header["imgsearch_export"] == 1 and header["documents"] == 8 and header["exported_at"]

    report = import_documents(target, io.StringIO(text), batch_size=3)
    assert (report.documents, report.impressions, report.clicks, report.failed) == (8, 1, 1, [])

    a, b = all_docs(source), all_docs(target)
    assert set(a) == set(b) and len(a) == 8
    for doc_id, doc in a.items():
        assert fields_of(b[doc_id]) == fields_of(doc), doc_id
        assert set(b[doc_id].vectors) == set(doc.vectors)
        for name, vec in doc.vectors.items():
            np.testing.assert_allclose(b[doc_id].vectors[name], vec, atol=1e-3)
    assert b[HAND_MADE].labels[0].boxes[1] == Box(0.5, 0.1, 0.6, 0.5, 0.85)
    assert any(d.title == "Sunset" for d in b.values())

    assert target.indexes["colour"].doc_ids() == source.indexes["colour"].doc_ids() == set(a)
    assert len(target.hashes) == len(source.hashes)
    for request in (
        SearchRequest(text="sunset harbour", record=False),
        SearchRequest(text="people", record=False),
        SearchRequest(text="red", record=False),
        SearchRequest(like=next(i for i, d in a.items() if d.title == "Sunset"), record=False),
        SearchRequest(like=HAND_MADE, record=False),
    ):
        assert hits(target, request) == hits(source, request), request
        assert hits(source, request), request

    assert [(i.query_id, i.ts, i.request, i.shown) for i in target.store.impressions()] == [
        (i.query_id, i.ts, i.request, i.shown) for i in source.store.impressions()
    ]
    assert target.store.clicks() == source.store.clicks()


def test_corrupt_lines_are_reported_by_number_and_the_rest_imported(source: Engine, target: Engine) -> None:
    lines = export_text(source).splitlines()
    lines[2] = lines[2][:40]  # a truncated document line
    lines[4] = json.dumps({"document": {"id": "not-a-hash"}})
    lines.insert(6, json.dumps({"mystery": 1}))
    report = import_documents(target, io.StringIO("\n".join(lines) + "\n"))
    failed = dict(report.failed)
    assert sorted(failed) == [3, 5, 7]
    assert "JSON" in failed[3] and "32 lowercase hex" in failed[5] and "mystery" in failed[7]
    assert report.documents == 6 and target.store.count() == 6
    assert report.impressions == 1 and report.clicks == 1
    assert "line 3:" in report.summary()


def test_truncated_file_is_reported(source: Engine, target: Engine) -> None:
    lines = export_text(source).splitlines()[:4]
    report = import_documents(target, io.StringIO("\n".join(lines)))
    assert report.documents == 3
    assert report.failed and "truncated" in report.failed[-1][1] and report.failed[-1][0] == 5


def test_missing_or_unknown_header_is_refused(source: Engine, target: Engine) -> None:
    lines = export_text(source).splitlines()
    with pytest.raises(BadRequest, match=r"line 1: not an imgsearch export.*header"):
        import_documents(target, io.StringIO("\n".join(lines[1:])))
    future = json.dumps({"imgsearch_export": 2, "documents": 0})
    with pytest.raises(BadRequest, match="version 2 is not supported"):
        import_documents(target, io.StringIO(future + "\n"))
    with pytest.raises(BadRequest, match="empty file"):
        import_documents(target, io.StringIO(""))
    assert target.store.count() == 0


def test_importing_twice_is_idempotent(source: Engine, target: Engine) -> None:
    text = export_text(source)
    import_documents(target, io.StringIO(text))
    before = {i: fields_of(d) for i, d in all_docs(target).items()}
    again = import_documents(target, io.StringIO(text))
    assert again.documents == 8 and again.duplicate_clicks == 1 and again.clicks == 0 and not again.failed
    assert {i: fields_of(d) for i, d in all_docs(target).items()} == before
    assert target.indexes["colour"].ntotal == 8
    assert len(target.store.clicks()) == 1 and len(target.store.impressions()) == 1


def test_cli_round_trip(source: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_a, data_b, file = source.settings.data_dir, tmp_path / "cli-B", tmp_path / "index.jsonl"
    source.save()
    assert main(["export", str(file), "--data-dir", str(data_a), "--no-progress"]) == EXIT_OK
    assert "exported 8 document(s)" in capsys.readouterr().err
    assert main(["import", str(file), "--data-dir", str(data_b), "--no-progress"]) == EXIT_OK
    assert "imported 8 of 8 document(s), 1 impression(s), 1 click(s)" in capsys.readouterr().out
    with Engine.open(Settings(data_dir=data_b)) as b:
        assert set(b.store.filter_ids([])) == set(source.store.filter_ids([]))
        assert b.indexes["colour"].doc_ids() == source.indexes["colour"].doc_ids()

    assert main(["export", "-", "--data-dir", str(data_a)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out.splitlines()[0])["documents"] == 8

    broken = tmp_path / "broken.jsonl"
    broken.write_text(file.read_text().replace('{"document"', "{oops", 1))
    assert main(["import", str(broken), "--data-dir", str(data_b), "--no-progress"]) == EXIT_PARTIAL
    assert "line 2:" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "absent.jsonl"), "--data-dir", str(data_b)]) == EXIT_ERROR
    assert "cannot read" in capsys.readouterr().err


def test_import_into_elasticsearch(source: Engine, tmp_path: Path) -> None:
    """The same file into an Elasticsearch-backed engine (the stateful fake cluster behind the es-spec recorder)."""
    from tests.conftest import es_spec

    recorder = es_spec("recorder")
    from elasticsearch import Elasticsearch

    from engine.store.elasticsearch import ElasticsearchStore
    from tests.engine.store.es_fake import FakeCluster

    recorder.RecordingNode.log = []
    recorder.RecordingNode.responder = FakeCluster(recorder.RecordingNode.log, strict_mappings=True)
    client = Elasticsearch("http://es.invalid:9200", node_class=recorder.RecordingNode, max_retries=0)
    settings = Settings(data_dir=tmp_path / "ES", backend="elasticsearch")
    store = ElasticsearchStore(client, prefix="t", colour_min_share=settings.search.colour_min_share)
    es_engine = Engine(settings, store, [])
    es_engine.reconcile()
    try:
        report = import_documents(es_engine, io.StringIO(export_text(source)), batch_size=3)
        assert (report.documents, report.impressions, report.clicks, report.failed) == (8, 1, 1, [])
        a, b = all_docs(source), all_docs(es_engine)
        assert set(a) == set(b)
        for doc_id, doc in a.items():
            assert fields_of(b[doc_id]) == fields_of(doc), doc_id
            np.testing.assert_allclose(b[doc_id].vectors["colour"], doc.vectors["colour"], atol=1e-3)
        assert es_engine.indexes["colour"].doc_ids() == set(a)
        like = SearchRequest(like=HAND_MADE, record=False)
        assert [i for i, _ in hits(es_engine, like)] == [i for i, _ in hits(source, like)]
        assert {i for i, _ in hits(es_engine, SearchRequest(text="sunset", record=False))} <= set(a)
        assert len(es_engine.store.clicks()) == 1
    finally:
        es_engine.close()
        client.close()
