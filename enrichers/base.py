"""The `Enricher` protocol and a base class that loads its model lazily, once, under a lock."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

from engine.documents import DecodedImage, Document


class EnricherUnavailable(RuntimeError):
    """An enricher cannot run here (missing binary, package or weights); says what to do."""

    def __init__(self, name: str, reason: str, fix: str) -> None:
        super().__init__(f"{name}: {reason}; fix: {fix}")
        self.name, self.reason, self.fix = name, reason, fix


@runtime_checkable
class EnrichmentResult(Protocol):
    """What an enricher returns: it knows how to write itself into a document."""

    def apply(self, doc: Document) -> None: ...


@runtime_checkable
class Enricher(Protocol):
    name: str
    version: str
    #: vector fields this enricher writes, with their dimension
    vector_fields: dict[str, int]

    def load(self) -> None: ...

    def enrich(self, image: DecodedImage) -> EnrichmentResult: ...

    def enrich_batch(self, images: Sequence[DecodedImage]) -> Sequence[EnrichmentResult]: ...


class BaseEnricher(ABC):
    """Lazy, thread-safe loading; `enrich_batch` defaults to one `enrich` per image."""

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "0"
    #: vector fields known before loading; model enrichers learn theirs in `_load`
    default_vector_fields: ClassVar[dict[str, int]] = {}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self.vector_fields: dict[str, int] = dict(self.default_vector_fields)

    def load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:  # noqa: B027 - optional hook: most cheap enrichers load nothing
        """Load models or binaries. The default has nothing to load."""

    def enrich(self, image: DecodedImage) -> EnrichmentResult:
        self.load()
        return self._enrich(image)

    @abstractmethod
    def _enrich(self, image: DecodedImage) -> EnrichmentResult:
        """Describe one image (the model is loaded)."""

    def enrich_batch(self, images: Sequence[DecodedImage]) -> Sequence[EnrichmentResult]:
        return [self.enrich(image) for image in images]
