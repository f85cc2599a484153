"""The engine: a store, its vector indexes and the enrichers, kept in agreement.

`Engine.open(settings)` opens the store, loads each Faiss index and reconciles it with the
store (the source of truth): a missing or corrupt index is rebuilt, one that lags is caught
up, one with extra entries is trimmed. Writes from another process (a CLI ingest while the
server runs) are noticed through the store's generation counter and caught up before the
next search.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from engine.documents import DecodedImage, Document
from engine.errors import ConfigError, NotFound
from engine.settings import Settings
from engine.store import DocumentStore, open_store
from engine.vectors import HashIndex, VectorIndex, gpu_count
from enrichers import BaseEnricher, EnricherUnavailable, EnrichmentResult, create

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings, store: DocumentStore, enrichers: Sequence[BaseEnricher]) -> None:
        self.settings = settings
        self.store = store
        self.enrichers = list(enrichers)
        self.indexes: dict[str, VectorIndex] = {}
        self.hashes = HashIndex()
        self._lock = threading.RLock()
        self._generation = -1
        self.last_reconcile: dict[str, dict[str, int]] = {}
        self.unavailable: dict[str, EnricherUnavailable] = {}
        self.enrich_seconds: dict[str, float] = {}  # cumulative wall time per enricher (ingest reports it)

    @classmethod
    def open(cls, settings: Settings) -> Engine:
        """Open the store, build the enrichers and reconcile every index with the store."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        from engine.embedder import ClipEmbedder

        try:
            enrichers = [
                create(name, {"clip": ClipEmbedder}, **settings.enricher_options(name)) for name in settings.enrichers
            ]
        except ValueError as exc:
            raise ConfigError(f"{exc} (setting IMGSEARCH_ENRICHERS)") from exc
        engine = cls(settings, open_store(settings), enrichers)
        engine.reconcile()
        return engine

    def close(self) -> None:
        self.save()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- indexes -----------------------------------------------------------------------------
    def vector_dims(self) -> dict[str, int]:
        dims = dict(self.store.vector_fields())
        for enricher in self.enrichers:
            dims.update(enricher.vector_fields)
        return dims

    def _index(self, field: str, dim: int) -> VectorIndex:
        index = self.indexes.get(field)
        if index is None or index.dim != dim:
            v = self.settings.vectors
            index = VectorIndex(
                field,
                dim,
                directory=self.settings.vector_dir,
                exact_threshold=v.exact_threshold,
                factory=v.factory,
                nprobe=v.nprobe,
                hnsw_ef_search=v.hnsw_ef_search,
                exact_filter_max=v.exact_filter_max,
                use_gpu=v.use_gpu,
                search_threads=v.search_threads,
            )
            self.indexes[field] = index
        return index

    def reconcile(self) -> dict[str, dict[str, int]]:
        """Bring every vector index and the pHash index into agreement with the store; returns what changed."""
        with self._lock:
            generation = self.store.generation()
            report: dict[str, dict[str, int]] = {}
            for field, dim in self.vector_dims().items():
                index = self._index(field, dim)
                # From disk on first open; afterwards the in-memory index is the one to repair.
                loaded = index.load() if self._generation < 0 else True
                stored = set(self.store.vector_ids(field))
                if not loaded:
                    index.reset()
                    for ids, vectors in self.store.iter_vectors(field):
                        index.add(ids, vectors)
                    report[field] = {"rebuilt": index.ntotal, "added": 0, "removed": 0}
                else:
                    present = index.doc_ids()
                    extra, missing = present - stored, sorted(stored - present)
                    index.remove(extra)
                    for start in range(0, len(missing), 10_000):
                        chunk = missing[start : start + 10_000]
                        vecs = self.store.get_vectors(field, chunk)
                        index.add(list(vecs), _stack(list(vecs.values()), dim))
                    report[field] = {"rebuilt": 0, "added": len(missing), "removed": len(extra)}
                if any(report[field].values()):
                    log.info("vector index %s reconciled with the store: %s", field, report[field])
                    index.save(generation)
            self.hashes = HashIndex()
            self.hashes.add(self.store.iter_phashes())
            self._generation = generation
            self.last_reconcile = report
            return report

    def refresh(self) -> None:
        """Catch up with writes made by another process since we last looked."""
        if self.store.generation() != self._generation:
            self.reconcile()

    def save(self) -> None:
        with self._lock:
            for index in self.indexes.values():
                index.save(self._generation)

    # -- writes ------------------------------------------------------------------------------
    def active_enrichers(self) -> list[BaseEnricher]:
        return [e for e in self.enrichers if e.name not in self.unavailable]

    def enricher(self, name: str) -> BaseEnricher | None:
        """The named enricher if it is configured and loads; None otherwise (reported once)."""
        for enricher in self.active_enrichers():
            if enricher.name == name:
                try:
                    enricher.load()
                except EnricherUnavailable as exc:
                    self._disable(exc)
                    return None
                return enricher
        return None

    def _disable(self, exc: EnricherUnavailable) -> None:
        if exc.name not in self.unavailable:
            self.unavailable[exc.name] = exc
            log.warning("%s enricher unavailable: %s; running without it. Fix: %s", exc.name, exc.reason, exc.fix)

    def enrich(self, image: DecodedImage, doc: Document) -> None:
        """Run every available enricher on one image (raises what an enricher raises)."""
        failures = self.enrich_batch([image], [doc])
        if failures:
            raise RuntimeError(failures[0])

    def enrich_batch(
        self, images: Sequence[DecodedImage], docs: Sequence[Document], *, only: set[str] | None = None
    ) -> dict[int, str]:
        """Run every available enricher over a batch, writing into `docs`; returns {index: reason} of failures.

        An enricher that cannot load is disabled (reported once) and the batch goes on without it. An
        enricher that fails on the batch is retried image by image so one bad image fails alone.
        """
        failures: dict[int, str] = {}
        for enricher in self.active_enrichers():
            if only is not None and enricher.name not in only:
                continue
            live = [i for i in range(len(images)) if i not in failures]
            if not live:
                break
            results: list[EnrichmentResult | None]
            started = time.perf_counter()
            try:
                results = list(enricher.enrich_batch([images[i] for i in live]))
            except EnricherUnavailable as exc:
                self._disable(exc)
                continue
            except Exception:
                results = []
                for i in live:
                    try:
                        results.append(enricher.enrich(images[i]))
                    except EnricherUnavailable as exc:
                        self._disable(exc)
                        break
                    except Exception as exc:  # this image breaks this enricher: the image fails alone
                        log.exception("%s enricher failed", enricher.name)
                        failures[i] = f"{enricher.name} enricher failed: {type(exc).__name__}: {exc}"
                        results.append(None)
                if enricher.name in self.unavailable:
                    continue
            elapsed = time.perf_counter() - started
            self.enrich_seconds[enricher.name] = self.enrich_seconds.get(enricher.name, 0.0) + elapsed
            for i, result in zip(live, results, strict=True):
                if result is not None and i not in failures:
                    result.apply(docs[i])
                    docs[i].enrichments[enricher.name] = enricher.version
        return failures

    def components(self, *, load: bool = False) -> list[dict[str, str]]:
        """Each component's state (ready, missing, not loaded) with what to do about it.

        With `load`, every model is loaded first, so the answer is the truth rather than a promise.
        """
        stats = self.store.stats()
        detail = f"{stats['backend']}, {stats['documents']} documents"
        status, fix = "ready", ""
        if "health" in stats:  # a cluster: its version and health matter
            detail = (
                f"elasticsearch {stats['version']} ({stats['cluster']}, {stats['health']}), "
                f"{stats['documents']} documents"
            )
            if stats["health"] == "red":
                status, fix = "degraded", "cluster health is red: check GET _cluster/health and the node logs"
        out = [{"name": "store", "status": status, "detail": detail, "fix": fix}]
        for enricher in self.enrichers:
            if load and enricher.name not in self.unavailable:
                self.enricher(enricher.name)
            exc = self.unavailable.get(enricher.name)
            if exc is not None:
                out.append(
                    {"name": f"enricher.{enricher.name}", "status": "missing", "detail": exc.reason, "fix": exc.fix}
                )
            else:
                loaded = getattr(enricher, "_loaded", False)
                out.append(
                    {
                        "name": f"enricher.{enricher.name}",
                        "status": "ready" if loaded else "not loaded",
                        "detail": f"version {enricher.version}",
                        "fix": "",
                    }
                )
        for name, index in sorted(self.indexes.items()):
            info = index.describe()
            out.append(
                {
                    "name": f"vectors.{name}",
                    "status": "ready",
                    "detail": f"{info['index']}, {info['count']} vectors",
                    "fix": "",
                }
            )
        return out

    def add_documents(self, docs: Sequence[Document], *, replaces: Sequence[str] = ()) -> None:
        """Store documents (one transaction), then index their vectors; delete what they replace."""
        if not docs and not replaces:
            return
        with self._lock:
            self.refresh()
            if docs:
                self.store.upsert(docs)
                self._generation += 1
            by_field: dict[str, tuple[list[str], list[Any]]] = {}
            for doc in docs:
                for field, vec in doc.vectors.items():
                    ids, vecs = by_field.setdefault(field, ([], []))
                    ids.append(doc.id)
                    vecs.append(vec)
            for field, (ids, vecs) in by_field.items():
                self._index(field, int(vecs[0].shape[0])).add(ids, _stack(vecs, int(vecs[0].shape[0])))
            self.hashes.add((d.id, d.phash) for d in docs if d.phash)
            if replaces:
                self._delete_locked(replaces)

    def delete(self, ids: Sequence[str]) -> int:
        with self._lock:
            self.refresh()
            return self._delete_locked(ids)

    def _delete_locked(self, ids: Sequence[str]) -> int:
        removed = self.store.delete(ids)
        if removed:
            self._generation += 1
        for index in self.indexes.values():
            index.remove(ids)
        self.hashes.remove(ids)
        return removed

    # -- reads -------------------------------------------------------------------------------
    def similar(
        self,
        vectors: dict[str, Any],
        phash: str | None,
        *,
        k: int,
        allowed: set[str] | None,
        exclude: str | None = None,
    ) -> dict[str, list[tuple[str, float]]]:
        """Per-leg neighbours of a query image: one leg per vector field it has, plus `phash`.

        Each leg is best first, at most `k` long, limited to `allowed` when given, without `exclude`.
        """
        legs: dict[str, list[tuple[str, float]]] = {}
        extra = 1 if exclude else 0
        with self._lock:
            for name, vec in sorted(vectors.items()):
                index = self.indexes.get(name)
                if index is None or index.dim != vec.shape[0] or index.ntotal == 0:
                    continue
                found = index.search(vec[None, :], k + extra, allowed=allowed)[0]
                legs[name] = [(i, score) for i, score in found if i != exclude][:k]
            if phash:
                near = self.hashes.search(
                    int(phash, 16), max_distance=self.settings.search.phash_max_distance, k=k + extra, allowed=allowed
                )
                legs["phash"] = [(i, float(d)) for i, d in near if i != exclude][:k]
        return legs

    def get(self, doc_id: str) -> Document:
        doc = self.store.get([doc_id]).get(doc_id)
        if doc is None:
            raise NotFound(f"no image with id {doc_id!r}; ids are the 32-hex content hashes search returns")
        return doc

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "store": self.store.stats(),
                "vectors": {name: index.describe() for name, index in sorted(self.indexes.items())},
                "phash": len(self.hashes),
                "enrichers": {e.name: e.version for e in self.enrichers},
                "gpus": gpu_count(),
                "data_dir": str(self.settings.data_dir),
            }


def _stack(vectors: list[Any], dim: int) -> Any:
    import numpy as np

    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
