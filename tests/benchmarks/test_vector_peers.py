"""Smoke test of the vector-leg peer benchmark (engine Faiss indexes, exact, Milvus Lite) at a tiny size.

No report is written and the chart goes to a temporary directory, never to docs/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import charts, vector_peers

N, QUERIES = 3000, 20


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[vector_peers.SizeResult, Path]:
    pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install -e '.[bench]'")
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed: pip install -e '.[bench]'")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install -e '.[bench]'")
    chart_dir = tmp_path_factory.mktemp("charts")
    argv = ["--sizes", str(N), "--queries", str(QUERIES), "--no-markdown", "--chart-dir", str(chart_dir)]
    argv += ["--nprobes", "4", "64", "--efs", "16", "128", "--milvus-min-queries", str(QUERIES)]
    (result,) = vector_peers.main(argv)
    return result, chart_dir


def by_series(result: vector_peers.SizeResult) -> dict[str, list[vector_peers.Point]]:
    return vector_peers.series_of(result.points)


def test_every_system_and_index_is_measured(run: tuple[vector_peers.SizeResult, Path]) -> None:
    result, _ = run
    series = by_series(result)
    engine = [s for s in series if s.startswith("engine ")]
    milvus = [s for s in series if s.startswith("Milvus Lite ")]
    assert len(engine) == 3 and any("IVF" in s for s in engine) and any("HNSW32" in s for s in engine)
    assert len(milvus) == 3 and {"IVF_FLAT", "HNSW", "FLAT"} <= {s.split()[2] for s in milvus}
    assert result.milvus_queries == QUERIES
    for p in result.points:
        assert p.queries == QUERIES
        assert 0 < p.p50 <= p.p95 and p.qps > 0


def test_recall_is_real(run: tuple[vector_peers.SizeResult, Path]) -> None:
    result, _ = run
    series = by_series(result)
    (exact,) = series["engine exact (Flat)"]
    assert exact.recall == 1.0
    (flat,) = next(pts for s, pts in series.items() if s.startswith("Milvus Lite FLAT"))
    assert flat.recall >= 0.99  # brute force; only a float tie could swap the 10th neighbour
    hnsw = next(pts for s, pts in series.items() if s.startswith("Milvus Lite HNSW"))
    ivf = next(pts for s, pts in series.items() if s.startswith("Milvus Lite IVF_FLAT"))
    assert max(p.recall for p in hnsw) > 0.9
    # nprobe is honoured: more lists probed, higher recall
    low, high = sorted(ivf, key=lambda p: p.value)
    assert high.recall > 0.9 and high.recall > low.recall


def test_section_has_the_tables_and_chart(run: tuple[vector_peers.SizeResult, Path]) -> None:
    result, chart_dir = run
    assert "QPS vs engine's best" in result.section and "| 0.95 " in result.section
    assert "fastest setting reaching it" in result.section and "peak growth MiB" in result.section
    png = chart_dir / f"vector_peers_{N}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in result.section
    # the build parameters reach Milvus Lite's Faiss indexes (pymilvus 3 would otherwise drop them)
    notes = {b.index: b.note for b in result.builds if b.system == vector_peers.MILVUS}
    assert "nlist 219" in notes["IVF_FLAT"] and "M 32, efConstruction 40" in notes["HNSW"]
    assert not (charts.ROOT / "docs" / "benchmarks" / f"vector_peers_{N}.png").exists()
    assert f"**{N:,}**" in vector_peers.summary([result])


def test_ten_million_note() -> None:
    note = vector_peers.big_note([100_000, 1_000_000])
    assert note is not None and "19.1 GiB" in note and "not run" in note
    assert vector_peers.big_note([10_000_000]) is None
