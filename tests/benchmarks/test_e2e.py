"""Smoke test of the end-to-end HTTP benchmark: a tiny corpus, the real server, every query type."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from benchmarks import e2e
from benchmarks.charts import CHART_DIR
from tests.conftest import shared_path

pytestmark = pytest.mark.slow


def test_e2e_benchmark_measures_real_answers(tmp_path: Path) -> None:
    images = shared_path("imagenette-val")
    charts = importlib.util.find_spec("matplotlib") is not None
    before = set(CHART_DIR.glob("*.png")) if CHART_DIR.exists() else set()
    argv = [
        "--docs", "500", "--images", "40", "--vocab", "300", "--queries", "200",
        "--duration", "1.5", "--warmup", "0.3", "--clients", "1", "4",
        "--images-dir", str(images), "--cache-dir", str(tmp_path / "cache"),
        "--chart-dir", str(tmp_path / "charts"), "--no-markdown",
    ]  # fmt: skip
    results = e2e.main(argv if charts else [*argv, "--no-charts"])

    assert {(r.qtype, r.clients) for r in results.runs} == {(t, c) for t in e2e.QUERY_TYPES for c in (1, 4)}
    for run in results.runs:
        assert run.requests > 0, run.qtype
        assert run.failed == 0, (run.qtype, run.errors)
        assert run.statuses == {200: run.requests}
        assert len(run.engine_ms) == run.requests and min(run.engine_ms) > 0
        assert 0 < run.pct(50) <= run.pct(95) <= run.pct(99)
        assert run.throughput == pytest.approx(run.requests / 1.5)
        assert run.client_cpu_s > 0 and run.server_cpu_s > 0
        if run.qtype == "text":
            assert run.with_hits >= 0.8 * run.requests
            assert run.legs["text"] == run.with_hits
        elif run.qtype == "filtered":
            assert run.with_hits > 0
        else:  # facets browse a non-empty filtered set; every image query finds colour neighbours
            assert run.with_hits == run.requests
        if run.qtype == "image":
            assert run.legs["colour"] == run.requests
            assert run.legs["phash"] > 0  # the uploads' noisy copies are found as near-duplicates
    # Answers were checked one by one before the load: at least most of each type are real answers.
    assert all(good >= checked - 1 and checked == 5 for good, checked in results.checks.values()), results.checks
    assert results.corpus["vectors"]["colour"]["count"] == 500
    assert results.corpus["phash"] == 500
    if charts:
        assert (tmp_path / "charts" / "e2e_search.png").stat().st_size > 10_000
    after = set(CHART_DIR.glob("*.png")) if CHART_DIR.exists() else set()
    assert after == before  # nothing written into docs/
