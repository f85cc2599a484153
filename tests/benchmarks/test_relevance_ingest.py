"""Smoke runs of the relevance and shared-set ingest benchmarks (tiny sizes; the full runs are manual)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import need_detector, need_tesseract, shared_path


def test_relevance_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import relevance

    root = shared_path("imagenette-val").parent
    argv = ["--suites", "imagenette", "near-duplicates", "--configs", "cheap", "--limit", "10"]
    relevance.main([*argv, "--data-root", str(root), "--chart-dir", str(tmp_path), "--no-markdown"])
    results = json.loads((tmp_path / "relevance.json").read_text())["cheap"]
    assert results["near-duplicates"]["metrics"]["R@1"] == 1.0  # pHash finds every altered copy
    imagenette = results["imagenette"]
    assert imagenette["queries"] == 10 and imagenette["index"]["enrichers"] == ["colour", "phash"]
    assert imagenette["metrics"]["P@10"] > imagenette["metrics"]["chance_P@10"]
    assert (tmp_path / "relevance.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "| imagenette" in out and "P@10 **" in out


def test_ingest_sets_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import ingest_sets

    need_tesseract()
    need_detector()
    root = shared_path("minicoco-40").parent
    argv = ["--sets", "minicoco-40", "sroie-100", "--limit", "3", "--enrichers", "colour", "ocr", "objects"]
    ingest_sets.main([*argv, "--data-root", str(root), "--chart-dir", str(tmp_path), "--no-markdown"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| minicoco-40", "| sroie-100"))]
    assert len(rows) == 2
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == "3" and cells[2] == "0"  # three images, none failed
        assert "ocr" in cells[-1] and "objects" in cells[-1] and "colour" in cells[-1]
    assert (tmp_path / "ingest_sets.png").exists()
