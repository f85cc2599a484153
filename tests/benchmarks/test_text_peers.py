"""Smoke test of the store-vs-bm25s BM25 benchmark at a tiny size (no report, no chart in docs/, no cache)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import charts, text_peers
from benchmarks.text_search import vocabulary


@pytest.fixture(scope="module")
def results() -> list[text_peers.SizeResult]:
    try:
        import bm25s  # noqa: F401
    except ImportError:
        pytest.skip("bm25s is not installed: pip install -e '.[bench]'")
    argv = ["--sizes", "2000", "--queries", "20", "--warmup", "5", "--no-markdown", "--no-charts", "--no-cache"]
    return text_peers.main(argv)


def test_both_systems_answer_and_agree(results: list[text_peers.SizeResult]) -> None:
    (r,) = results
    assert r.n == 2000
    for mix in text_peers.MIXES:
        for system in text_peers.SYSTEMS:
            stats = r.measured.latency[(mix, system)]
            assert stats.n == 20
            assert 0 < stats.p50 <= stats.p95 <= stats.p99
        assert r.measured.no_match[mix] < 20  # some queries find documents
        # Same BM25 function with equal field weights: the top 10 must agree (ties counted).
        assert r.measured.overlap_equal[mix] >= 0.95
        assert math.isfinite(r.measured.overlap_engine[mix])
    # Selective words have few matches, so both systems return (nearly) all of them whatever the weights.
    assert r.measured.overlap_engine["uniform"] >= 0.7
    assert r.store.insert_s > 0 and r.peer.build_s > 0 and r.store.disk_mib > 0


def test_rows_and_summary(results: list[text_peers.SizeResult]) -> None:
    rows = text_peers.latency_rows(results)
    assert len(rows) == len(text_peers.MIXES) * len(text_peers.SYSTEMS)
    assert {row[2] for row in rows} == set(text_peers.SYSTEMS)
    lines = text_peers.summary(results, 10)
    assert any("store p50 / p95" in line for line in lines)
    assert any("Agreement" in line for line in lines)


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("bm25s", reason="bm25s is not installed: pip install -e '.[bench]'")
    text_peers.main(["--sizes", "500", "--queries", "5", "--warmup", "1", "--no-markdown", "--no-charts", "--no-cache"])
    out = capsys.readouterr().out
    assert "queries (median matches)" in out and "p99 ms" in out and "overlap@10 vs engine" in out
    assert "| 500 " in out and "| bm25s " in out and "| store (FTS5) " in out


def test_chart_is_written(
    results: list[text_peers.SizeResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install -e '.[bench]'")
    monkeypatch.setattr(charts, "CHART_DIR", tmp_path)
    text_peers.plot(results)
    png = tmp_path / f"{text_peers.CHART}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_porter_stems_match_the_store_tokenizer() -> None:
    stems = text_peers.porter_stems(["Running", "cats", "red", "0001234"])
    assert stems == {"running": "run", "cats": "cat", "red": "red", "0001234": "0001234"}
    vocab = vocabulary(500, np.random.default_rng(3))
    assert set(text_peers.porter_stems(vocab)) == {w.lower() for w in vocab}
