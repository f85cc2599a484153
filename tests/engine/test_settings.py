from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from engine.settings import Settings, settings_reference
from tests.conftest import ROOT


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str | None]]:
    out = []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out += _fields(info.annotation, f"{prefix}{name}.")
        out.append((f"{prefix}{name}", info.description))
    return out


def test_every_setting_is_described() -> None:
    missing = [name for name, description in _fields(Settings) if not description]
    assert not missing, f"settings without a description: {missing}"


def test_settings_doc_is_current() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text()
    assert doc == settings_reference(), "docs/settings.md is stale: run `python -m engine.settings > docs/settings.md`"
    for name, _ in _fields(Settings):
        if "." not in name and name in ("text_weights", "vectors", "search", "api"):
            continue
        assert f"IMGSEARCH_{name.upper().replace('.', '__')}" in doc


def test_environment_and_nesting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMGSEARCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IMGSEARCH_SEARCH__RRF_K", "10")
    monkeypatch.setenv("IMGSEARCH_ENRICHERS", '["colour"]')
    settings = Settings()
    assert settings.data_dir == tmp_path and settings.search.rrf_k == 10 and settings.enrichers == ["colour"]
    assert settings.store_path == tmp_path / "imgsearch.sqlite3"


def test_unknown_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(backend="mongodb")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]
