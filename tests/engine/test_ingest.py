"""Ingest end to end: real images, bad files, idempotency, replacement, kill -9 and rerun."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.documents import content_id
from engine.engine import Engine
from engine.ingest import collect, ingest_paths
from engine.manifest import Manifest
from engine.settings import Settings
from engine.vectors import VectorIndex
from tests.conftest import ROOT, image_bytes, noise_image, shared_path
from tests.engine.test_images import png_bomb


def write_images(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"img_{i:03d}.png"
        path.write_bytes(image_bytes(noise_image(i)))
        paths.append(path)
    return paths


def assert_index_agrees(engine: Engine) -> None:
    for field, index in engine.indexes.items():
        assert index.doc_ids() == set(engine.store.vector_ids(field)), field


def test_real_images_are_indexed_with_metadata(engine: Engine) -> None:
    samples = shared_path("samples")
    report = ingest_paths(engine, [samples])
    assert report.added == 3 and not report.failed
    bus = engine.store.get([content_id((samples / "bus.jpg").read_bytes())])
    doc = next(iter(bus.values()))
    assert (doc.width, doc.height, doc.format, doc.orientation) == (810, 1080, "jpeg", "portrait")
    assert doc.bytes == (samples / "bus.jpg").stat().st_size
    assert doc.phash and len(doc.phash) == 16
    assert doc.vectors["colour"].shape == (128,)
    assert doc.enrichments == {"colour": "1", "phash": "1"}
    assert sum(c.share for c in doc.colours) > 0.9
    assert_index_agrees(engine)


def test_bad_files_are_reported_and_the_rest_indexed(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    good = write_images(folder, 4)
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(image_bytes(noise_image(99, (300, 300)), fmt="JPEG")[:-1500])
    (folder / "notes.jpg").write_text("this is a text file, not a JPEG\n" * 20)
    (folder / "bomb.png").write_bytes(png_bomb(20_000, 20_000))
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    report = ingest_paths(engine, [folder, tmp_path / "missing.png"])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert set(reasons) == {"zero.jpg", "truncated.jpg", "notes.jpg", "bomb.png", "missing.png"}
    assert "empty file" in reasons["zero.jpg"]
    assert "truncated or corrupt" in reasons["truncated.jpg"]
    assert "not a recognised image" in reasons["notes.jpg"]
    assert "pixel" in reasons["bomb.png"] or "too large" in reasons["bomb.png"]
    assert "no such file" in reasons["missing.png"]
    assert report.added == len(good)
    assert engine.store.count() == len(good)
    assert "5 failed" in report.summary() and "bomb.png" in report.summary()


def test_reingest_is_a_noop_and_changed_file_replaces(engine: Engine, tmp_path: Path) -> None:
    paths = write_images(tmp_path / "imgs", 5)
    first = ingest_paths(engine, [tmp_path / "imgs"])
    assert first.added == 5
    generation = engine.store.generation()
    again = ingest_paths(engine, [tmp_path / "imgs"])
    assert (again.added, again.unchanged, again.replaced) == (0, 5, 0)
    assert engine.store.generation() == generation  # nothing was written
    old_id = content_id(paths[0].read_bytes())
    paths[0].write_bytes(image_bytes(noise_image(500)))
    changed = ingest_paths(engine, [tmp_path / "imgs"])
    assert (changed.added, changed.replaced, changed.unchanged) == (0, 1, 4)
    assert engine.store.count() == 5
    assert engine.store.existing([old_id]) == set()
    assert engine.store.ids_for_path(str(paths[0].resolve())) == [content_id(paths[0].read_bytes())]
    assert_index_agrees(engine)
    assert old_id not in {i for i, _ in engine.hashes.search(0, max_distance=64, k=100)}


def test_same_bytes_twice_in_one_batch(engine: Engine, tmp_path: Path) -> None:
    write_images(tmp_path / "a", 2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    report = ingest_paths(engine, [tmp_path / "a", tmp_path / "b"])
    assert (report.added, report.unchanged) == (2, 2)
    assert engine.store.count() == 2


def test_collect_expands_folders_and_globs(tmp_path: Path) -> None:
    write_images(tmp_path / "x" / "deep", 2)
    write_images(tmp_path / "y", 1, start=5)
    paths, failures = collect([tmp_path / "x", str(tmp_path / "y" / "*.png"), str(tmp_path / "nope*.png")])
    assert [p.name for p in paths] == ["img_000.png", "img_001.png", "img_005.png"]
    assert [f.reason for f in failures] == ["glob matched no files"]


def test_manifest_fields_are_searchable(engine: Engine, tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", 2)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,title,caption,tags,license,source\n"
        "imgs/img_000.png,Sunset,over the harbour,boats;evening,CC-BY,me\n"
        "imgs/img_000.png,,with gulls,birds,,\n"
    )
    ingest_paths(engine, [tmp_path / "imgs"], manifest=Manifest.load(manifest))
    hits = engine.store.search_text("gulls harbour", [], 5)
    doc = engine.store.get([hits[0].id])[hits[0].id]
    assert doc.path and doc.path.endswith("img_000.png")
    assert (doc.title, doc.licence, doc.source) == ("Sunset", "CC-BY", "me")
    assert doc.caption == "over the harbour | with gulls" and doc.tags == ["boats", "evening", "birds"]


def test_index_is_rebuilt_or_caught_up_on_open(settings: Settings, tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", 6)
    with Engine.open(settings) as engine:
        ingest_paths(engine, [tmp_path / "imgs"])
    (settings.vector_dir / "colour.faiss").write_bytes(b"corrupt")
    with Engine.open(settings) as engine:
        assert engine.last_reconcile["colour"]["rebuilt"] == 6
        assert_index_agrees(engine)
    # A store that moved on without the index (a crash before the index was saved): caught up.
    snapshot = tmp_path / "vectors-before"
    shutil.copytree(settings.vector_dir, snapshot)
    write_images(tmp_path / "more", 3, start=50)
    with Engine.open(settings) as engine:
        ingest_paths(engine, [tmp_path / "more"])
        doomed = engine.store.browse([], 2)
    shutil.rmtree(settings.vector_dir)
    shutil.copytree(snapshot, settings.vector_dir)
    with Engine.open(settings) as engine:
        assert engine.last_reconcile["colour"] == {"rebuilt": 0, "added": 3, "removed": 0}
        assert_index_agrees(engine)
        shutil.rmtree(snapshot)
        shutil.copytree(settings.vector_dir, snapshot)
        engine.delete(doomed)
    # An index holding documents the store no longer has: trimmed.
    shutil.rmtree(settings.vector_dir)
    shutil.copytree(snapshot, settings.vector_dir)
    with Engine.open(settings) as engine:
        assert engine.last_reconcile["colour"] == {"rebuilt": 0, "added": 0, "removed": 2}
        assert engine.store.count() == 7
        assert_index_agrees(engine)


def test_engine_notices_writes_from_another_process(settings: Settings, tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", 3)
    with Engine.open(settings) as server, Engine.open(settings) as cli:
        ingest_paths(cli, [tmp_path / "imgs"])
        server.refresh()
        assert server.indexes["colour"].ntotal == 3
        assert len(server.hashes) == 3


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun(tmp_path: Path) -> None:
    source = shared_path("imagenette-val")
    files, _ = collect([source])
    data_dir = tmp_path / "data"
    env = {**os.environ, "IMGSEARCH_BATCH_SIZE": "16", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "engine.cli", "ingest", str(source), "--data-dir", str(data_dir), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = data_dir / "imgsearch.sqlite3"
    committed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    committed = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            except sqlite3.Error:
                committed = 0
            if committed >= 200:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < committed < len(files), "the kill must land mid-ingest"

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == len(files)
        assert conn.execute("SELECT COUNT(DISTINCT path) FROM documents").fetchone()[0] == len(files)
        assert conn.execute("SELECT COUNT(*) FROM vectors WHERE field = 'colour'").fetchone()[0] == len(files)
    with Engine.open(Settings(data_dir=data_dir)) as engine:
        assert engine.last_reconcile["colour"] == {"rebuilt": 0, "added": 0, "removed": 0}
        assert_index_agrees(engine)
        saved = VectorIndex("colour", 128, directory=data_dir / "vectors")
        assert saved.load() and saved.doc_ids() == set(engine.store.vector_ids("colour"))
        again = ingest_paths(engine, [source])
        assert again.unchanged == len(files) and again.added == 0
        hit = engine.store.get([content_id(files[0].read_bytes())])
        assert np.isfinite(next(iter(hit.values())).vectors["colour"]).all()
