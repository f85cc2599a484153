"""Explicit registry of built-in enrichers."""

from __future__ import annotations

from typing import Any

from enrichers.base import BaseEnricher
from enrichers.colour import ColourEnricher
from enrichers.objects import ObjectsEnricher
from enrichers.ocr import OcrEnricher
from enrichers.phash import PHashEnricher

# Heavy models (ultralytics, Tesseract) load lazily, on first use: listing them here is cheap.
BUILTIN: dict[str, type[BaseEnricher]] = {
    ColourEnricher.name: ColourEnricher,
    PHashEnricher.name: PHashEnricher,
    OcrEnricher.name: OcrEnricher,
    ObjectsEnricher.name: ObjectsEnricher,
}


def available() -> list[str]:
    return sorted(BUILTIN)


def create(name: str, extra: dict[str, type[BaseEnricher]] | None = None, **options: Any) -> BaseEnricher:
    """Instantiate the enricher registered as `name` (or in `extra`); raises ValueError for an unknown name."""
    registry = {**BUILTIN, **(extra or {})}
    try:
        cls = registry[name]
    except KeyError:
        raise ValueError(f"unknown enricher {name!r}; choose from {', '.join(sorted(registry))}") from None
    return cls(**options)
