"""Query orchestration: legs under the same filters, fusion, facets, signals, impressions.

Legs: `text` (BM25 from the store), one per vector field the query has a vector for
(cosine, from Faiss), and `phash` (near-duplicates by Hamming distance). A query with neither
text nor image browses the filtered set, newest first. Every hit carries each leg's score and
rank and the fused score; every search is recorded as an impression for click learning.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.documents import Document, content_id
from engine.errors import InvalidQuery
from engine.filters import Filter, filter_to_dict
from engine.highlight import snippet
from engine.images import decode_image
from engine.ingest import new_document, working_copy
from engine.store import Impression
from ranking.fusion import FusedHit, LegHit, pin_closest, rrf

if TYPE_CHECKING:
    from engine.engine import Engine

MAX_TEXT_CHARS = 1000


@dataclass(slots=True)
class SearchRequest:
    text: str = ""
    image: bytes | None = None
    like: str | None = None
    filters: list[Filter] = field(default_factory=list)
    facets: list[str] = field(default_factory=list)
    k: int = 10
    offset: int = 0
    record: bool = True

    def validate(self, *, max_k: int, max_offset: int) -> None:
        """Raise InvalidQuery with a sentence when the request cannot be answered."""
        if len(self.text) > MAX_TEXT_CHARS:
            raise InvalidQuery(f"query text is {len(self.text)} characters; the limit is {MAX_TEXT_CHARS}")
        if not 1 <= self.k <= max_k:
            raise InvalidQuery(f"k must be between 1 and {max_k}, got {self.k}")
        if not 0 <= self.offset <= max_offset:
            raise InvalidQuery(f"offset must be between 0 and {max_offset}, got {self.offset}")
        if self.image is not None and self.like is not None:
            raise InvalidQuery("give either an image upload or `like` (an indexed image id), not both")


@dataclass(slots=True)
class SearchHit:
    id: str
    score: float
    signals: dict[str, float]
    document: Document
    ocr_snippet: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {**self.document.summary(), "score": self.score, "signals": self.signals}
        if self.ocr_snippet:
            out["ocr_snippet"] = self.ocr_snippet
        return out


@dataclass(slots=True)
class SearchResponse:
    query_id: str
    total: int
    total_relation: str
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]]
    legs: dict[str, int]
    took_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "total": self.total,
            "total_relation": self.total_relation,
            "hits": [h.to_dict() for h in self.hits],
            "facets": self.facets,
            "legs": self.legs,
            "took_ms": round(self.took_ms, 2),
        }


def signals_of(hit: FusedHit) -> dict[str, float]:
    """Per-leg score and rank plus the fused score, with stable names (`bm25`, `cosine.colour`, ...)."""
    out: dict[str, float] = {}
    for leg, score in sorted(hit.scores.items()):
        if leg == "text":
            out["bm25"] = round(score, 6)
        elif leg == "image_text":
            out["bm25.image_text"] = round(score, 6)
        elif leg == "phash":
            out["hamming.phash"] = int(score)
        else:
            out[f"cosine.{leg}"] = round(score, 6)
        out[f"rank.{leg}"] = hit.ranks[leg]
    if hit.pinned:
        out["near_duplicate"] = 1
    out["fused"] = round(hit.score, 8)
    return out


@dataclass(slots=True)
class QueryImage:
    """What a query image contributes: its vectors, pHash, and the words read or seen in it."""

    vectors: dict[str, Any]
    phash: str | None
    words: str
    exclude: str | None


def image_words(doc: Document) -> str:
    """OCR text and label names of an image, as a keyword query (a receipt finds the same receipt)."""
    return " ".join([doc.ocr_text, *(lb.name for lb in doc.labels)]).strip()


def _query_image(engine: Engine, request: SearchRequest) -> QueryImage:
    """The query image (an indexed document, or an upload enriched like an ingested image)."""
    if request.like is not None:
        doc = engine.get(request.like)
        return QueryImage(doc.vectors, doc.phash, image_words(doc), doc.id)
    assert request.image is not None
    s = engine.settings
    decoded = decode_image(request.image, max_pixels=s.max_image_pixels, max_bytes=s.max_file_bytes)
    probe = new_document(request.image, decoded, path=None, entry=None)
    engine.enrich(working_copy(decoded, s.enrich_max_side), probe)
    return QueryImage(probe.vectors, probe.phash, image_words(probe), None)


def _text_vector(engine: Engine, text: str) -> np.ndarray | None:
    """The CLIP text embedding of a keyword query, when CLIP is loaded and images have CLIP vectors."""
    index = engine.indexes.get("clip")
    if index is None or index.ntotal == 0:
        return None
    clip = engine.enricher("clip")
    if clip is None or not hasattr(clip, "encode_text"):
        return None
    vectors: np.ndarray = clip.encode_text([text])
    return vectors[0]


def run_search(engine: Engine, request: SearchRequest) -> SearchResponse:
    """Answer a search request. Raises InvalidQuery, InvalidFilter, ImageError or NotFound on bad input."""
    started = time.perf_counter()
    s = engine.settings.search
    request.validate(max_k=s.max_k, max_offset=s.max_offset)
    engine.refresh()
    text = request.text.strip()
    has_image = request.image is not None or request.like is not None
    depth = max(s.candidate_k, request.offset + request.k)
    legs: dict[str, list[LegHit]] = {}
    exclude: str | None = None
    total_relation = "eq"

    text_vector = _text_vector(engine, text) if text else None
    allowed: set[str] | None = None
    if request.filters and (has_image or text_vector is not None):  # only vector legs need the id set
        allowed = set(engine.store.filter_ids(request.filters))
    if text:
        legs["text"] = [LegHit(h.id, h.score) for h in engine.store.search_text(text, request.filters, depth)]
        if text_vector is not None:
            by_text = engine.similar({"clip": text_vector}, None, k=depth, allowed=allowed)
            legs["clip"] = [LegHit(i, score) for i, score in by_text.get("clip", [])]
    if has_image:
        query = _query_image(engine, request)
        exclude = query.exclude
        for name, found in engine.similar(
            query.vectors, query.phash, k=depth, allowed=allowed, exclude=exclude
        ).items():
            legs[name if name not in legs else f"image.{name}"] = [LegHit(i, score) for i, score in found]
        if query.words:
            seen = engine.store.search_text(query.words, request.filters, depth + 1)
            legs["image_text"] = [LegHit(h.id, h.score) for h in seen if h.id != exclude][:depth]

    if legs:
        fused = rrf(legs, k=s.rrf_k, weights=s.leg_weights)
        if s.pin_max_distance >= 0 and "phash" in legs:
            fused = pin_closest(fused, "phash", s.pin_max_distance)
        page = fused[request.offset : request.offset + request.k]
        if has_image or "clip" in legs:
            total = len(fused)
            total_relation = "gte" if any(len(hits) >= depth for hits in legs.values()) else "eq"
        else:
            total = engine.store.count_text(text, request.filters)
        docs = engine.store.get([h.id for h in page])
        hits = [
            SearchHit(
                h.id, round(h.score, 8), signals_of(h), docs[h.id], snippet(docs[h.id].ocr_text, text) if text else None
            )
            for h in page
            if h.id in docs
        ]
    elif text or has_image:
        total, hits = 0, []
    else:
        ids = engine.store.browse(request.filters, request.k, request.offset)
        docs = engine.store.get(ids)
        total = engine.store.count(request.filters)
        hits = [SearchHit(i, 0.0, {}, docs[i]) for i in ids if i in docs]

    facets: dict[str, dict[str, int]] = {}
    if request.facets:
        # Keyword-only results are the keyword matches; any vector leg ranks the whole filtered set.
        facet_text = text if text and set(legs) <= {"text"} else None
        facets = engine.store.facets(request.filters, request.facets, text=facet_text)

    query_id = uuid.uuid4().hex
    response = SearchResponse(
        query_id=query_id,
        total=total,
        total_relation=total_relation,
        hits=hits,
        facets=facets,
        legs={name: len(found) for name, found in legs.items()},
        took_ms=(time.perf_counter() - started) * 1000,
    )
    if request.record:
        engine.store.record_impression(
            Impression(
                query_id=query_id,
                ts=datetime.now(),
                request={
                    "text": text,
                    "like": request.like,
                    "image": content_id(request.image) if request.image is not None else None,
                    "filters": [filter_to_dict(f) for f in request.filters],
                    "facets": request.facets,
                    "k": request.k,
                    "offset": request.offset,
                },
                shown=[
                    {"id": h.id, "position": request.offset + n, "signals": h.signals}
                    for n, h in enumerate(hits, start=1)
                ],
            )
        )
    return response
