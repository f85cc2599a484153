"""Explicit registry of built-in enrichers."""

from __future__ import annotations

from typing import Any

from enrichers.base import BaseEnricher
from enrichers.colour import ColourEnricher
from enrichers.phash import PHashEnricher

BUILTIN: dict[str, type[BaseEnricher]] = {
    ColourEnricher.name: ColourEnricher,
    PHashEnricher.name: PHashEnricher,
}


def available() -> list[str]:
    return sorted(BUILTIN)


def create(name: str, **options: Any) -> BaseEnricher:
    """Instantiate the enricher registered as `name`; raises ValueError for an unknown name."""
    try:
        cls = BUILTIN[name]
    except KeyError:
        raise ValueError(f"unknown enricher {name!r}; choose from {', '.join(available())}") from None
    return cls(**options)
