"""Elasticsearch 9.x document store: the same `DocumentStore` behaviour as SQLite, on a cluster.

Request bodies come from the pure builders in `engine.store.esquery`; this module only sends them
and maps replies and failures. Documents live in `<prefix>-images` (an alias over a versioned
index, so a mapping change can reindex and swap atomically); impressions, clicks and the write
generation live in `<prefix>-events`. Bulk writes retry the items a busy cluster rejects with 429
(the client's `helpers.bulk` does not with `raise_on_error=True`) and report every item that
still fails. Connection problems and time-outs become `StoreUnavailable` with the root cause.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from engine.documents import Document
from engine.errors import ConfigError, StoreError, StoreUnavailable
from engine.filters import Filter
from engine.store import esquery
from engine.store.base import Click, Impression, TextHit

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE = 5_000
SUPPORTED_MAJOR = 9


def connect(settings: Any) -> Any:
    """An `Elasticsearch` client from `ElasticsearchSettings` (URL list, API key or basic auth, CA)."""
    try:
        from elasticsearch import Elasticsearch
    except ImportError as exc:
        raise ConfigError("the elasticsearch backend needs `pip install 'elasticsearch>=9,<10'`") from exc
    options: dict[str, Any] = {
        "request_timeout": settings.request_timeout_s,
        "max_retries": settings.max_retries,
        "retry_on_timeout": True,
    }
    if settings.api_key:
        options["api_key"] = settings.api_key
    elif settings.username:
        options["basic_auth"] = (settings.username, settings.password or "")
    if settings.ca_certs:
        options["ca_certs"] = str(settings.ca_certs)
    hosts = [u.strip() for u in settings.url.split(",") if u.strip()]
    return Elasticsearch(hosts, **options)


class ElasticsearchStore:
    """`DocumentStore` on an Elasticsearch 9.x cluster (vectors stay in Faiss; the store keeps copies)."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "imgsearch",
        text_weights: dict[str, float] | None = None,
        colour_min_share: float = 0.05,
        max_retries: int = 3,
        check_version: bool = True,
    ) -> None:
        self.client = client
        self.alias = f"{prefix}-images"
        self.events = f"{prefix}-events"
        self.weights = dict(text_weights or {})
        self.colour_min_share = colour_min_share
        self.max_retries = max_retries
        self.version = self._call(lambda: self.client.info())["version"]["number"] if check_version else ""
        if check_version and int(str(self.version).split(".")[0]) != SUPPORTED_MAJOR:
            raise ConfigError(
                f"Elasticsearch {self.version} is not supported: imgsearch needs a {SUPPORTED_MAJOR}.x cluster"
            )
        self._ensure_indices()

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        """Run one client call, turning transport failures into the engine's errors (root cause kept)."""
        from elasticsearch import ApiError, ConnectionError, ConnectionTimeout, TransportError

        try:
            return fn()
        except ConnectionTimeout as exc:
            raise StoreUnavailable(f"Elasticsearch timed out: {exc}; raise elasticsearch.request_timeout_s?") from exc
        except ConnectionError as exc:
            raise StoreUnavailable(f"cannot reach Elasticsearch: {exc}; is the cluster up (imgsearch doctor)?") from exc
        except ApiError as exc:
            raise StoreError(f"Elasticsearch refused the request ({exc.meta.status}): {_reason(exc.body)}") from exc
        except TransportError as exc:
            raise StoreUnavailable(f"Elasticsearch transport error: {exc}") from exc

    def _ensure_indices(self) -> None:
        if not self._call(lambda: self.client.indices.exists_alias(name=self.alias)):
            body = esquery.create_index_body()
            body["aliases"] = {self.alias: {}}
            index = f"{self.alias}-v1"
            self._call(lambda: self.client.indices.create(index=index, **body))
        if not self._call(lambda: self.client.indices.exists(index=self.events)):
            mapping = esquery.load_mapping("events-v1")
            self._call(lambda: self.client.indices.create(index=self.events, **mapping))

    def _bulk(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send bulk actions, retrying 429-rejected items with backoff; returns the final item results."""
        pending = actions
        results: list[dict[str, Any]] = []
        for attempt in range(self.max_retries + 1):
            operations = esquery.bulk_lines(pending)
            reply = self._call(functools.partial(self.client.bulk, operations=operations, refresh="wait_for"))
            retry: list[dict[str, Any]] = []
            for action, item in zip(pending, reply["items"], strict=True):
                outcome = next(iter(item.values()))
                if outcome.get("status") == 429 and attempt < self.max_retries:
                    retry.append(action)
                else:
                    results.append(outcome)
            if not retry:
                break
            log.warning("Elasticsearch rejected %d bulk items (429); retrying", len(retry))
            time.sleep(min(2.0, 0.1 * 2**attempt))
            pending = retry
        failed = [r for r in results if r.get("status", 200) >= 300 and not _missing_delete(r)]
        if failed:
            details = "; ".join(f"{r.get('_id')}: {_reason(r.get('error'))}" for r in failed[:10])
            raise StoreError(f"{len(failed)} document(s) were not written to Elasticsearch: {details}")
        return results

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self._call(lambda: self.client.search(index=self.alias, **body))
        return reply

    def _scan(
        self, body: dict[str, Any], *, index: str | None = None, sort: list[dict[str, str]] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every hit of `body`, through a point in time and search_after (no 10k result window)."""
        target = index or self.alias
        order = sort or [{"id": "asc"}]
        pit = self._call(lambda: self.client.open_point_in_time(index=target, keep_alive="1m"))["id"]
        try:
            after = None
            while True:
                page = dict(body, size=PAGE, pit={"id": pit, "keep_alive": "1m"}, sort=order)
                if after is not None:
                    page["search_after"] = after
                reply = self._call(functools.partial(self.client.search, **page))
                pit = reply.get("pit_id", pit)
                hits = reply["hits"]["hits"]
                yield from hits
                if len(hits) < PAGE:
                    return
                after = hits[-1]["sort"]
        finally:
            try:
                self.client.close_point_in_time(id=pit)
            except Exception:  # closing is best effort: the PIT expires by itself
                log.debug("could not close point in time", exc_info=True)

    def current_index(self) -> str | None:
        """The concrete index the alias points at (None before the first create)."""
        reply = self._call(lambda: self.client.indices.get_alias(name=self.alias))
        names = sorted(reply)
        return names[-1] if names else None

    def rebuild_index(self) -> str:
        """Copy every document into a new versioned index with the current mapping, swap the alias
        atomically, then drop the old index. Searches keep working throughout (they follow the alias).

        Returns the new index name. Raises StoreError naming the failures when the copy is incomplete.
        """
        old = self.current_index()
        version = int(old.rsplit("-v", 1)[-1]) + 1 if old and "-v" in old else 1
        new = f"{self.alias}-v{version}"
        self._call(lambda: self.client.indices.create(index=new, **esquery.create_index_body()))
        if old:
            reply = self._call(
                lambda: self.client.reindex(
                    source={"index": old}, dest={"index": new}, wait_for_completion=True, refresh=True
                )
            )
            if reply.get("failures"):
                raise StoreError(
                    f"reindex into {new} failed for {len(reply['failures'])} document(s): "
                    f"{_reason(reply['failures'][0])}; the alias still points at {old}"
                )
        self._call(lambda: self.client.indices.update_aliases(**esquery.alias_swap_actions(self.alias, old, new)))
        if old:
            self._call(lambda: self.client.indices.delete(index=old))
        return new

    # -- documents ---------------------------------------------------------------------------
    def upsert(self, docs: Sequence[Document]) -> None:
        if docs:
            actions = esquery.bulk_actions(docs, self.alias, colour_min_share=self.colour_min_share, now=datetime.now())
            self._bulk(actions)
            self._bump_generation()

    def delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        results = self._bulk(esquery.bulk_delete_actions(ids, self.alias))
        removed = sum(1 for r in results if r.get("result") == "deleted")
        if removed:
            self._bump_generation()
        return removed

    def get(self, ids: Sequence[str]) -> dict[str, Document]:
        if not ids:
            return {}
        reply = self._call(lambda: self.client.mget(index=self.alias, ids=list(dict.fromkeys(ids))))
        return {d["_id"]: esquery.document_from_source(d["_source"]) for d in reply["docs"] if d.get("found")}

    def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        reply = self._call(lambda: self.client.mget(index=self.alias, ids=list(ids), source=False))
        return {d["_id"] for d in reply["docs"] if d.get("found")}

    def ids_for_path(self, path: str) -> list[str]:
        body = {"query": {"term": {"path": path}}, "_source": ["id"], "size": 100, "sort": [{"id": "asc"}]}
        return [h["_id"] for h in self._search(body)["hits"]["hits"]]

    # -- search ------------------------------------------------------------------------------
    def count(self, filters: Sequence[Filter] = ()) -> int:
        body = esquery.count_body(
            text=None, filters=filters, colour_min_share=self.colour_min_share, weights=self.weights
        )
        return int(self._call(lambda: self.client.count(index=self.alias, **body))["count"])

    def search_text(self, query: str, filters: Sequence[Filter], k: int) -> list[TextHit]:
        if esquery.text_query(query, self.weights) is None or k <= 0:
            return []
        body = esquery.search_body(
            text=query, filters=filters, k=k, colour_min_share=self.colour_min_share, weights=self.weights
        )
        return [TextHit(h["_id"], float(h["_score"] or 0.0)) for h in self._search(body)["hits"]["hits"]]

    def count_text(self, query: str, filters: Sequence[Filter]) -> int:
        if esquery.text_query(query, self.weights) is None:
            return 0
        body = esquery.count_body(
            text=query, filters=filters, colour_min_share=self.colour_min_share, weights=self.weights
        )
        return int(self._call(lambda: self.client.count(index=self.alias, **body))["count"])

    def browse(self, filters: Sequence[Filter], k: int, offset: int = 0) -> list[str]:
        body = esquery.search_body(
            text=None, filters=filters, k=k, colour_min_share=self.colour_min_share, weights=self.weights
        )
        body["from"] = offset
        return [h["_id"] for h in self._search(body)["hits"]["hits"]]

    def facets(
        self, filters: Sequence[Filter], fields: Sequence[str], *, text: str | None = None, size: int = 50
    ) -> dict[str, dict[str, int]]:
        body = esquery.search_body(
            text=text, filters=filters, k=0, colour_min_share=self.colour_min_share, weights=self.weights, facets=fields
        )
        return esquery.facet_buckets(self._search(body).get("aggregations", {}), fields)

    def filter_ids(self, filters: Sequence[Filter]) -> list[str]:
        body = esquery.filter_ids_body(filters=filters, colour_min_share=self.colour_min_share)
        return [h["_id"] for h in self._scan(body)]

    # -- vectors -----------------------------------------------------------------------------
    def _vector_sources(self) -> Iterator[dict[str, Any]]:
        yield from (h["_source"] for h in self._scan({"_source": ["id", "vectors", "phash"]}))

    def vector_fields(self) -> dict[str, int]:
        dims: dict[str, int] = {}
        for src in self._vector_sources():
            for name, vec in esquery.decode_vectors(src.get("vectors") or {}).items():
                dims.setdefault(name, int(vec.shape[0]))
        return dims

    def vector_ids(self, field: str) -> list[str]:
        return [src["id"] for src in self._vector_sources() if field in (src.get("vectors") or {})]

    def get_vectors(self, field: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return {i: d.vectors[field] for i, d in self.get(ids).items() if field in d.vectors}

    def iter_vectors(self, field: str, *, batch_size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]:
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        for src in self._vector_sources():
            vec = esquery.decode_vectors(src.get("vectors") or {}).get(field)
            if vec is not None:
                ids.append(src["id"])
                vectors.append(vec)
            if len(ids) >= batch_size:
                yield ids, np.stack(vectors)
                ids, vectors = [], []
        if ids:
            yield ids, np.stack(vectors)

    def iter_phashes(self) -> Iterator[tuple[str, str]]:
        for src in self._vector_sources():
            if src.get("phash"):
                yield src["id"], src["phash"]

    # -- generation, impressions and clicks ---------------------------------------------------
    def _bump_generation(self) -> None:
        script = {"source": "ctx._source.generation += 1", "lang": "painless"}
        self._call(
            lambda: self.client.update(
                index=self.events,
                id="generation",
                script=script,
                upsert={"kind": "generation", "generation": 1},
                refresh="wait_for",
            )
        )

    def generation(self) -> int:
        reply = self._call(lambda: self.client.mget(index=self.events, ids=["generation"]))
        doc = reply["docs"][0]
        return int(doc["_source"]["generation"]) if doc.get("found") else 0

    def record_impression(self, impression: Impression) -> None:
        doc = {
            "kind": "impression",
            "query_id": impression.query_id,
            "ts": impression.ts.isoformat(),
            "request": impression.request,
            "shown": impression.shown,
        }
        self._call(
            lambda: self.client.index(
                index=self.events, id=f"imp-{impression.query_id}", document=doc, refresh="wait_for"
            )
        )

    def get_impression(self, query_id: str) -> Impression | None:
        reply = self._call(lambda: self.client.mget(index=self.events, ids=[f"imp-{query_id}"]))
        found = [d["_source"] for d in reply["docs"] if d.get("found")]
        return _impression(found[0]) if found else None

    def record_click(self, click: Click) -> None:
        doc = {
            "kind": "click",
            "query_id": click.query_id,
            "doc_id": click.doc_id,
            "position": click.position,
            "ts": click.ts.isoformat(),
        }
        self._call(lambda: self.client.index(index=self.events, document=doc, refresh="wait_for"))

    def _events(self, kind: str, limit: int | None) -> list[dict[str, Any]]:
        query = {"term": {"kind": kind}}
        if limit is not None:
            body = {"query": query, "size": limit, "sort": [{"ts": "asc"}]}
            reply = self._call(lambda: self.client.search(index=self.events, **body))
            return [h["_source"] for h in reply["hits"]["hits"]]
        # all of them, past the 10k result window
        return [h["_source"] for h in self._scan({"query": query}, index=self.events, sort=[{"ts": "asc"}])]

    def _count_events(self, kind: str) -> int:
        return int(self._call(lambda: self.client.count(index=self.events, query={"term": {"kind": kind}}))["count"])

    def impressions(self, *, limit: int | None = None) -> list[Impression]:
        return [_impression(src) for src in self._events("impression", limit)]

    def clicks(self, *, limit: int | None = None) -> list[Click]:
        return [
            Click(s["query_id"], s["doc_id"], int(s["position"]), datetime.fromisoformat(s["ts"]))
            for s in self._events("click", limit)
        ]

    def stats(self) -> dict[str, Any]:
        health = self._call(lambda: self.client.cluster.health())
        return {
            "backend": "elasticsearch",
            "version": self.version,
            "health": health.get("status", "unknown"),
            "cluster": health.get("cluster_name", ""),
            "index": self.alias,
            "documents": self.count(),
            "vectors": {},
            "impressions": self._count_events("impression"),
            "clicks": self._count_events("click"),
        }

    def close(self) -> None:
        self.client.close()


def _impression(src: dict[str, Any]) -> Impression:
    return Impression(
        src["query_id"], datetime.fromisoformat(src["ts"]), src.get("request") or {}, src.get("shown") or []
    )


def _missing_delete(result: dict[str, Any]) -> bool:
    return result.get("status") == 404 and result.get("result") == "not_found"


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict):
            caused = inner.get("caused_by", {})
            reason = inner.get("reason") or inner.get("type") or str(inner)
            return f"{reason}" + (
                f" (caused by: {caused.get('reason')})" if isinstance(caused, dict) and caused else ""
            )
        return str(inner)
    return str(error)
