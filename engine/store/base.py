"""The `DocumentStore` protocol every backend implements, and the records it exchanges."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from engine.documents import Document
from engine.filters import Filter

TEXT_FIELDS = ("title", "caption", "tags", "filename", "colours", "labels", "ocr")


@dataclass(frozen=True, slots=True)
class TextHit:
    id: str
    score: float


@dataclass(slots=True)
class Impression:
    """One search as shown to a user: what clicks are later joined against."""

    query_id: str
    ts: datetime
    request: dict[str, Any]
    shown: list[dict[str, Any]] = field(default_factory=list)  # {"id", "position", "signals"}


@dataclass(slots=True)
class Click:
    query_id: str
    doc_id: str
    position: int
    ts: datetime


@runtime_checkable
class DocumentStore(Protocol):
    """Source of truth for documents, their vectors, and impressions/clicks.

    Text search returns BM25 scores (higher is better, ties broken by id). Every method that
    takes filters applies all of them (AND across filters, OR within one term filter).
    """

    def upsert(self, docs: Sequence[Document]) -> None: ...

    def delete(self, ids: Sequence[str]) -> int: ...

    def get(self, ids: Sequence[str]) -> dict[str, Document]: ...

    def existing(self, ids: Sequence[str]) -> set[str]: ...

    def ids_for_path(self, path: str) -> list[str]: ...

    def count(self, filters: Sequence[Filter] = ()) -> int: ...

    def search_text(self, query: str, filters: Sequence[Filter], k: int) -> list[TextHit]: ...

    def count_text(self, query: str, filters: Sequence[Filter]) -> int: ...

    def browse(self, filters: Sequence[Filter], k: int, offset: int = 0) -> list[str]: ...

    def facets(
        self, filters: Sequence[Filter], fields: Sequence[str], *, text: str | None = None, size: int = 50
    ) -> dict[str, dict[str, int]]: ...

    def filter_ids(self, filters: Sequence[Filter]) -> list[str]: ...

    def vector_fields(self) -> dict[str, int]: ...

    def vector_ids(self, field: str) -> list[str]: ...

    def get_vectors(self, field: str, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def iter_vectors(self, field: str, *, batch_size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]: ...

    def iter_phashes(self) -> Iterator[tuple[str, str]]: ...

    def generation(self) -> int: ...

    def record_impression(self, impression: Impression) -> None: ...

    def get_impression(self, query_id: str) -> Impression | None: ...

    def record_click(self, click: Click) -> None: ...

    def impressions(self, *, limit: int | None = None) -> list[Impression]: ...

    def clicks(self, *, limit: int | None = None) -> list[Click]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
