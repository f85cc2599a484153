"""Enrichers describe an image in words and numbers. Each sits behind the `Enricher` protocol."""

from enrichers.base import BaseEnricher, Enricher, EnricherUnavailable, EnrichmentResult
from enrichers.registry import BUILTIN, available, create

__all__ = ["BUILTIN", "BaseEnricher", "Enricher", "EnricherUnavailable", "EnrichmentResult", "available", "create"]
