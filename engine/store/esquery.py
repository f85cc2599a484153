"""Pure Elasticsearch request builders for the images index: no I/O, no client, unit-tested on their own.

Filters reproduce `sqlquery.where_filters` exactly: a term filter is OR within its values and AND across
filters, `!=` excludes; a colour term needs a share >= `colour_min_share`; a keyed range
(`label_count.NAME`, `colour_share.NAME`) counts a missing label or colour as 0, so `<` and `<=` are the
`must_not` of the complementary nested query. User text never reaches a query parser: it is reduced to
`sqlquery.query_tokens` and sent as a `multi_match`.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.documents import ColourShare, Document, Label, OcrWord
from engine.filters import BoolFilter, Filter, RangeFilter, TermFilter
from engine.store.sqlite import colour_text, filename_words
from engine.store.sqlquery import query_tokens

# The repository's mappings/ (a checkout or editable install), else the copy a wheel installs under
# <prefix>/share/imgsearch/mappings (pyproject's data-files).
MAPPINGS_DIR = next(
    (
        d
        for d in (
            Path(__file__).resolve().parents[2] / "mappings",
            Path(sys.prefix) / "share" / "imgsearch" / "mappings",
        )
        if (d / "images-v1.json").exists()
    ),
    Path(__file__).resolve().parents[2] / "mappings",
)
IMAGES_MAPPING = "images-v1"
EVENTS_MAPPING = "events-v1"
#: `TEXT_FIELDS` name (the SQLite FTS column, the `TextWeights` key) -> Elasticsearch text field
TEXT_FIELD_MAP = {
    "title": "title",
    "caption": "caption",
    "tags": "tags",
    "filename": "filename",
    "colours": "colour_words",
    "labels": "label_words",
    "ocr": "ocr_text",
}
#: keyword field of each plain term filter / facet
KEYWORD_FIELD = {
    "format": "format",
    "licence": "licence",
    "orientation": "orientation",
    "source": "source",
    "tag": "tags.keyword",
}
_RANGE_FIELD = {"width": "width", "height": "height", "bytes": "bytes", "date": "taken_at"}
_COMPLEMENT = {"lt": "gte", "lte": "gt"}


def load_mapping(name: str) -> dict[str, Any]:
    """The `{"settings", "mappings"}` JSON of `mappings/NAME.json` (`.json` optional)."""
    file = MAPPINGS_DIR / (name if name.endswith(".json") else f"{name}.json")
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


# -- documents -------------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def encode_vector(vec: np.ndarray) -> str:
    """Base64 of the little-endian float16 bytes (the SQLite store keeps the same bytes)."""
    return base64.b64encode(np.asarray(vec, dtype=np.float32).astype("<f2").tobytes()).decode("ascii")


def decode_vector(text: str) -> np.ndarray:
    """Inverse of `encode_vector`, as float32."""
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)


def encode_vectors(vectors: Mapping[str, np.ndarray]) -> dict[str, str]:
    """`encode_vector` of each named vector (the `vectors` object of a source)."""
    return {name: encode_vector(vec) for name, vec in vectors.items()}


def decode_vectors(encoded: Mapping[str, str]) -> dict[str, np.ndarray]:
    """`decode_vector` of each named vector of a source's `vectors` object."""
    return {name: decode_vector(text) for name, text in encoded.items()}


def document_source(doc: Document, *, colour_min_share: float, now: datetime | None = None) -> dict[str, Any]:
    """The `_source` of a document: stored fields plus the derived search words (as the SQLite FTS row).

    `now` is the `ingested_at` written when the document has none (the SQLite store stamps the write time).
    """
    label_words = [*(" ".join([lb.name] * max(1, min(lb.count, 5))) for lb in doc.labels), *doc.label_terms]
    return {
        "id": doc.id,
        "path": doc.path,
        "filename": filename_words(doc.path),
        "width": doc.width,
        "height": doc.height,
        "bytes": doc.bytes,
        "format": doc.format,
        "orientation": doc.orientation,
        "licence": doc.licence,
        "source": doc.source,
        "taken_at": _iso(doc.taken_at),
        "ingested_at": _iso(doc.ingested_at or now),
        "title": doc.title,
        "caption": doc.caption,
        "tags": list(doc.tags),
        "phash": doc.phash,
        "has_text": doc.has_text,
        "ocr_text": doc.ocr_text,
        "ocr_words": [{"text": w.text, "confidence": w.confidence, "box": list(w.box)} for w in doc.ocr_words],
        "colours": [{"name": c.name, "share": c.share} for c in doc.colours],
        "colour_words": colour_text(doc, colour_min_share),
        "labels": [lb.to_json() for lb in doc.labels],
        "label_terms": list(doc.label_terms),
        "label_words": " ".join(label_words),
        "enrichments": dict(doc.enrichments),
        "vectors": encode_vectors(doc.vectors),
    }


def _date(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def document_from_source(src: Mapping[str, Any]) -> Document:
    """Inverse of `document_source` (derived search words are dropped; vectors come back as float32)."""
    return Document(
        id=src["id"],
        path=src.get("path"),
        width=int(src["width"]),
        height=int(src["height"]),
        format=src.get("format") or "",
        bytes=int(src["bytes"]),
        orientation=src.get("orientation") or "square",
        taken_at=_date(src.get("taken_at")),
        title=src.get("title") or "",
        caption=src.get("caption") or "",
        tags=list(src.get("tags") or []),
        licence=src.get("licence") or "",
        source=src.get("source") or "",
        colours=[ColourShare(c["name"], float(c["share"])) for c in src.get("colours") or []],
        phash=src.get("phash"),
        ocr_text=src.get("ocr_text") or "",
        ocr_words=[
            OcrWord(w["text"], float(w["confidence"]), (w["box"][0], w["box"][1], w["box"][2], w["box"][3]))
            for w in src.get("ocr_words") or []
        ],
        labels=[Label.from_json(lb) for lb in src.get("labels") or []],
        label_terms=list(src.get("label_terms") or []),
        vectors=decode_vectors(src.get("vectors") or {}),
        enrichments={str(k): str(v) for k, v in (src.get("enrichments") or {}).items()},
        ingested_at=_date(src.get("ingested_at")),
    )


# -- queries ---------------------------------------------------------------------------------------------
def _nested(path: str, clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nested": {"path": path, "query": {"bool": {"filter": clauses}}}}


def _term_clause(f: TermFilter, colour_min_share: float) -> dict[str, Any]:
    values = list(f.values)
    if f.field == "colour":
        return _nested(
            "colours",
            [{"terms": {"colours.name": values}}, {"range": {"colours.share": {"gte": colour_min_share}}}],
        )
    if f.field == "label":
        return _nested("labels", [{"terms": {"labels.name": values}}])
    return {"terms": {KEYWORD_FIELD[f.field]: values}}


def _keyed_probe(f: RangeFilter, op: str) -> dict[str, Any]:
    path, num = ("labels", "count") if f.field == "label_count" else ("colours", "share")
    return _nested(path, [{"term": {f"{path}.name": f.key}}, {"range": {f"{path}.{num}": {op: float(f.value)}}}])


def filter_clauses(
    filters: Sequence[Filter], *, colour_min_share: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`(filter, must_not)` clause lists of a `bool` query passing exactly what `where_filters` passes."""
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    for f in filters:
        if isinstance(f, TermFilter):
            (must_not if f.negate else must).append(_term_clause(f, colour_min_share))
        elif isinstance(f, RangeFilter) and f.key is not None:
            value = float(f.value)
            if f.op in ("gte", "gt"):
                if not ((f.op == "gte" and value <= 0) or (f.op == "gt" and value < 0)):
                    must.append(_keyed_probe(f, f.op))  # else: everything passes (missing counts as 0)
            elif (f.op == "lt" and value <= 0) or (f.op == "lte" and value < 0):
                must.append({"match_none": {}})
            else:
                must_not.append(_keyed_probe(f, _COMPLEMENT[f.op]))
        elif isinstance(f, RangeFilter):
            must.append({"range": {_RANGE_FIELD[f.field]: {f.op: f.value}}})
        elif isinstance(f, BoolFilter):
            must.append({"term": {"has_text": bool(f.value)}})
    return must, must_not


def text_query(text: str, weights: Mapping[str, float]) -> dict[str, Any] | None:
    """A `multi_match` of the query's plain words over the text fields, boosted like the FTS5 columns."""
    tokens = list(dict.fromkeys(query_tokens(text)))
    if not tokens:
        return None
    fields = [f"{es}^{float(weights.get(name, 1.0)):g}" for name, es in TEXT_FIELD_MAP.items()]
    return {"multi_match": {"query": " ".join(tokens), "fields": fields, "type": "most_fields", "operator": "or"}}


def build_query(
    *, text: str | None, filters: Sequence[Filter], colour_min_share: float, weights: Mapping[str, float]
) -> dict[str, Any]:
    """`bool` query: the text query (or `match_all`) as `must`, the filters as `filter`/`must_not`."""
    must, must_not = filter_clauses(filters, colour_min_share=colour_min_share)
    matched = text_query(text, weights) if text else None
    query: dict[str, Any] = {"must": [matched or {"match_all": {}}]}
    if must:
        query["filter"] = must
    if must_not:
        query["must_not"] = must_not
    return {"bool": query}


def facet_aggregations(fields: Iterable[str], *, colour_min_share: float, size: int = 50) -> dict[str, Any]:
    """One aggregation per facet field, named after it (see `facet_buckets`)."""
    aggs: dict[str, Any] = {}
    for name in fields:
        if name == "colour":
            values = {"terms": {"field": "colours.name", "size": size}, "aggs": {"docs": {"reverse_nested": {}}}}
            share = {"range": {"colours.share": {"gte": colour_min_share}}}
            aggs[name] = {
                "nested": {"path": "colours"},
                "aggs": {"filtered": {"filter": share, "aggs": {"values": values}}},
            }
        elif name == "label":
            values = {"terms": {"field": "labels.name", "size": size}, "aggs": {"docs": {"reverse_nested": {}}}}
            aggs[name] = {"nested": {"path": "labels"}, "aggs": {"values": values}}
        elif name == "has_text":
            aggs[name] = {"terms": {"field": "has_text", "size": 2}}
        else:
            aggs[name] = {"terms": {"field": KEYWORD_FIELD[name], "size": size}}
    return aggs


def search_body(
    *,
    text: str | None,
    filters: Sequence[Filter],
    k: int,
    colour_min_share: float,
    weights: Mapping[str, float],
    facets: Sequence[str] = (),
    facet_size: int = 50,
    search_after: Sequence[Any] | None = None,
    pit_id: str | None = None,
    keep_alive: str = "1m",
    track_total_hits: bool = True,
    offset: int = 0,
) -> dict[str, Any]:
    """`POST /INDEX/_search` body (`POST /_search` with `pit_id`): hits by score (text) or newest first.

    Ties break by `id`, so `search_after` (the last hit's `sort`) pages stably.
    """
    scored = bool(text) and text_query(text or "", weights) is not None
    first = {"_score": {"order": "desc"}} if scored else {"ingested_at": {"order": "desc"}}
    body: dict[str, Any] = {
        "query": build_query(text=text, filters=filters, colour_min_share=colour_min_share, weights=weights),
        "size": int(k),
        "sort": [first, {"id": {"order": "asc"}}],
        "_source": {"excludes": ["vectors"]},
        "track_total_hits": track_total_hits,
    }
    if facets:
        body["aggs"] = facet_aggregations(facets, colour_min_share=colour_min_share, size=facet_size)
    if search_after is not None:
        body["search_after"] = list(search_after)
    elif offset:
        body["from"] = int(offset)
    if pit_id is not None:
        body["pit"] = {"id": pit_id, "keep_alive": keep_alive}
    return body


def count_body(
    *,
    filters: Sequence[Filter],
    colour_min_share: float,
    text: str | None = None,
    weights: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """`POST /INDEX/_count` body: documents passing the filters (and matching `text` when given)."""
    query = build_query(text=text, filters=filters, colour_min_share=colour_min_share, weights=weights or {})
    return {"query": query}


def filter_ids_body(
    filters: Sequence[Filter],
    *,
    colour_min_share: float,
    size: int = 10_000,
    search_after: Sequence[Any] | None = None,
    pit_id: str | None = None,
    keep_alive: str = "1m",
) -> dict[str, Any]:
    """Ids only (each hit's `_id`), sorted by id for `search_after` paging through every match."""
    body: dict[str, Any] = {
        "query": build_query(text=None, filters=filters, colour_min_share=colour_min_share, weights={}),
        "size": int(size),
        "sort": [{"id": {"order": "asc"}}],
        "_source": False,
        "track_total_hits": False,
    }
    if search_after is not None:
        body["search_after"] = list(search_after)
    if pit_id is not None:
        body["pit"] = {"id": pit_id, "keep_alive": keep_alive}
    return body


# -- writes and index management -------------------------------------------------------------------------
def bulk_actions(
    docs: Sequence[Document], index: str, *, colour_min_share: float, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One `_bulk` operation per document: `{"index": {"_index", "_id": doc id}, "_source": source}`.

    One entry per operation, so entries line up with the reply's `items` (a 429 retries just its entries);
    `bulk_ndjson` writes the action line and then the source line.
    """
    return [
        {
            "index": {"_index": index, "_id": doc.id},
            "_source": document_source(doc, colour_min_share=colour_min_share, now=now),
        }
        for doc in docs
    ]


def bulk_delete_actions(ids: Sequence[str], index: str) -> list[dict[str, Any]]:
    """One `_bulk` `delete` operation per id (no source line follows a delete)."""
    return [{"delete": {"_index": index, "_id": doc_id}} for doc_id in ids]


def bulk_lines(actions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The `_bulk` lines of operations: each action's metadata, then its `_source` when it has one."""
    lines: list[dict[str, Any]] = []
    for action in actions:
        lines.append({k: v for k, v in action.items() if k != "_source"})
        if "_source" in action:
            lines.append(dict(action["_source"]))
    return lines


def bulk_ndjson(actions: Iterable[Mapping[str, Any]]) -> str:
    """The NDJSON text of `_bulk` operations, ending with the newline Elasticsearch requires."""
    return "".join(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n" for line in bulk_lines(actions))


def create_index_body(alias: str | None = None, mapping: str = IMAGES_MAPPING) -> dict[str, Any]:
    """`PUT /INDEX` body: settings and mappings from `mappings/`, plus `alias` when given."""
    body = load_mapping(mapping)
    if alias:
        body["aliases"] = {alias: {}}
    return body


def alias_swap_actions(alias: str, old_index: str | None, new_index: str) -> dict[str, Any]:
    """`POST /_aliases` body moving `alias` atomically from `old_index` (if any) to `new_index`."""
    actions: list[dict[str, Any]] = []
    if old_index:
        actions.append({"remove": {"index": old_index, "alias": alias}})
    actions.append({"add": {"index": new_index, "alias": alias}})
    return {"actions": actions}


def close_pit_body(pit_id: str) -> dict[str, Any]:
    """`DELETE /_pit` body."""
    return {"id": pit_id}


def facet_buckets(aggregations: Mapping[str, Any], fields: Iterable[str]) -> dict[str, dict[str, int]]:
    """`{field: {value: documents}}` from a response's `aggregations`, like `SqliteStore.facets`.

    Nested facets count documents (`reverse_nested`), not colour or label entries; empty values are dropped.
    """
    out: dict[str, dict[str, int]] = {}
    for name in fields:
        node = aggregations.get(name) or {}
        for inner in ("filtered", "values"):  # colour: nested > filtered > values; label: nested > values
            node = node.get(inner, node)
        counts: dict[str, int] = {}
        for b in node.get("buckets", []):
            key = str(b.get("key_as_string", b["key"]) if name == "has_text" else b["key"])
            if key:
                counts[key] = int(b["docs"]["doc_count"] if "docs" in b else b["doc_count"])
        out[name] = counts
    return out
