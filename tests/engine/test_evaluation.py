"""Quality suites on small slices of the shared data: report shape, metric ranges and sane values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.errors import ImgSearchError
from engine.evaluation import SUITES, normalise_company, run_suite
from engine.settings import Settings
from tests.conftest import DATA, need_detector, need_tesseract, shared_path

CHEAP = ["colour", "phash"]


def _settings(tmp_path: Path, enrichers: list[str], **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "index", enrichers=enrichers, workers=2, batch_size=16, **extra)


def _check_shape(report: dict[str, Any], suite: str) -> None:
    assert set(report) == {"suite", "queries", "metrics", "index", "legs", "seconds"}
    assert report["suite"] == suite
    assert report["queries"] > 0
    assert set(report["index"]) == {"documents", "enrichers", "unavailable", "vectors"}
    assert report["index"]["documents"] > 0
    assert report["legs"] == sorted(report["legs"])
    json.dumps(report)  # JSON-ready

    def numbers(value: Any) -> list[float]:
        if isinstance(value, dict):
            return [n for v in value.values() for n in numbers(v)]
        return [float(value)]

    metrics = {k: v for k, v in report["metrics"].items() if k not in ("count_mae", "images")}
    assert all(0.0 <= n <= 1.0 for n in numbers(metrics)), report["metrics"]


def test_imagenette_similar_beats_chance_with_colour(tmp_path: Path) -> None:
    shared_path("imagenette-val")
    report = run_suite("imagenette", settings=_settings(tmp_path, CHEAP), data_root=DATA, limit=30)
    _check_shape(report, "imagenette")
    assert report["queries"] == 30
    assert report["index"]["documents"] >= 100  # at least 10 per class
    assert report["index"]["enrichers"] == CHEAP and report["index"]["unavailable"] == []
    assert "colour" in report["index"]["vectors"]
    assert report["metrics"]["P@10"] > 0.1  # chance is 0.1
    assert {"colour", "phash"} <= set(report["legs"])


def test_near_duplicates_found_by_phash(tmp_path: Path) -> None:
    shared_path("imagenette-val")
    report = run_suite("near-duplicates", settings=_settings(tmp_path, CHEAP), data_root=DATA, limit=20)
    _check_shape(report, "near-duplicates")
    assert report["queries"] == 20
    assert set(report["metrics"]["by_alteration"]) == {"crop90", "resize50", "jpeg30", "brighter30", "text"}
    assert report["metrics"]["R@1"] >= 0.8


def test_flickr8k_captions_are_not_indexed(tmp_path: Path) -> None:
    shared_path("flickr8k-1k")
    report = run_suite("flickr8k", settings=_settings(tmp_path, CHEAP), data_root=DATA, limit=20)
    _check_shape(report, "flickr8k")
    assert set(report["metrics"]) == {"R@1", "R@5", "R@10", "MRR"}
    assert report["legs"] == ["text"]
    # Without CLIP only filenames/colours could match a caption: the honest baseline is near zero.
    assert report["metrics"]["R@10"] < 0.5


def test_sroie_fields_find_their_receipt(tmp_path: Path) -> None:
    shared_path("sroie-100")
    need_tesseract()
    report = run_suite("sroie", settings=_settings(tmp_path, [*CHEAP, "ocr"]), data_root=DATA, limit=12)
    _check_shape(report, "sroie")
    assert set(report["metrics"]["by_type"]) == {"company", "total_date", "address"}
    assert report["metrics"]["R@1"] >= 0.6


def test_minicoco_label_filters_and_counts(tmp_path: Path) -> None:
    shared_path("minicoco-40")
    model = need_detector()
    settings = _settings(tmp_path, ["objects"], objects={"model": str(model)})
    report = run_suite("minicoco", settings=settings, data_root=DATA, limit=12)
    _check_shape(report, "minicoco")
    metrics = report["metrics"]
    assert set(metrics["by_label"]) == {"person", "car", "airplane"}
    assert set(metrics["count_mae"]) == {"person", "car", "airplane"}
    assert all(v >= 0 for v in metrics["count_mae"].values())
    assert metrics["precision"] >= 0.9
    assert report["queries"] == 3 and metrics["images"] == 12


def test_missing_clip_is_reported_unavailable(tmp_path: Path) -> None:
    shared_path("imagenette-val")
    settings = _settings(
        tmp_path, [*CHEAP, "clip"], clip={"model": str(tmp_path / "no-such-clip"), "local_files_only": True}
    )
    report = run_suite("imagenette", settings=settings, data_root=DATA, limit=10)
    assert report["index"]["unavailable"] == ["clip"]
    assert "clip" not in report["index"]["enrichers"] and "clip" not in report["legs"]


def test_unknown_suite_and_missing_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown suite 'nope'; choose from imagenette"):
        run_suite("nope", settings=_settings(tmp_path, CHEAP), data_root=DATA)
    with pytest.raises(ImgSearchError, match="imagenette-val"):
        run_suite("imagenette", settings=_settings(tmp_path, CHEAP), data_root=tmp_path / "absent")
    assert set(SUITES) == {"imagenette", "flickr8k", "sroie", "minicoco", "near-duplicates"}


def test_normalise_company() -> None:
    assert normalise_company("BOOK TA .K (TAMAN DAYA) SDN BHD") == normalise_company("Book Ta K Sdn. Bhd.")


def test_cli_eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared_path("imagenette-val")
    argv = ["eval", "near-duplicates", "--limit", "5", "--json", "--data-dir", str(tmp_path / "i")]
    assert main([*argv, "--data-root", str(DATA)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["suite"] == "near-duplicates" and report["queries"] == 5
    assert (
        main(["eval", "near-duplicates", "--limit", "5", "--data-root", str(DATA), "--data-dir", str(tmp_path / "j")])
        == 0
    )
    assert "R@1" in capsys.readouterr().out


def test_cli_eval_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent"
    assert main(["eval", "sroie", "--data-root", str(missing), "--data-dir", str(tmp_path / "i")]) == 1
    assert str(missing / "sroie-100") in capsys.readouterr().err
    assert main(["eval", "nope", "--data-dir", str(tmp_path / "i")]) == 1
    assert "unknown suite" in capsys.readouterr().err
