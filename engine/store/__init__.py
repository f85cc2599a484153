"""Document stores behind one protocol: SQLite (embedded default) and Elasticsearch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.store.base import Click, DocumentStore, Impression, TextHit

if TYPE_CHECKING:
    from engine.settings import Settings

__all__ = ["Click", "DocumentStore", "Impression", "TextHit", "open_store"]


def open_store(settings: Settings) -> DocumentStore:
    """Open the backend `settings.backend` names."""
    if settings.backend == "sqlite":
        from engine.store.sqlite import SqliteStore

        return SqliteStore(
            settings.store_path,
            text_weights=settings.text_weights.model_dump(),
            colour_min_share=settings.search.colour_min_share,
        )
    from engine.store.elasticsearch import ElasticsearchStore, connect

    es = settings.elasticsearch
    return ElasticsearchStore(
        connect(es),
        prefix=es.index_prefix,
        text_weights=settings.text_weights.model_dump(),
        colour_min_share=settings.search.colour_min_share,
        max_retries=es.max_retries,
    )
