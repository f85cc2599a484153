"""A stateful, in-memory Elasticsearch 9 cluster for tests: a `Responder` for the es-spec `RecordingNode`.

It understands exactly the requests `ElasticsearchStore` sends (index/alias management, `_bulk`, `_mget`,
`_doc`, `_update` with the generation script, `_search`/`_count` with the `esquery` query DSL and facet
aggregations, points in time) and answers them in Elasticsearch's shape. Text matching is a light English
analyser (lower case, plural stripping), not Porter; scoring is BM25 per field summed over `most_fields`.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, Any]
Source = dict[str, Any]
SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
INFO = {
    "name": "fake", "cluster_name": "fake", "cluster_uuid": "fake", "tagline": "You Know, for Search",
    "version": {"number": "9.1.0", "build_flavor": "default", "lucene_version": "10.2.2",
                "minimum_wire_compatibility_version": "8.19.0", "minimum_index_compatibility_version": "8.0.0",
                "build_type": "docker", "build_hash": "x", "build_date": "2025-01-01", "build_snapshot": False},
}  # fmt: skip
#: keyword fields with a normalizer in mappings/images-v1.json
NORMALISED: dict[str, Callable[[str], str]] = {
    **dict.fromkeys(("format", "licence", "orientation", "source", "labels.name"), str.lower),
    "tags.keyword": lambda s: s.strip().lower(),
}
DATE_FIELDS = {"taken_at", "ingested_at", "ts"}
_RANGE_OPS = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
_WORD = re.compile(r"[^\W_]+")


def stem(word: str) -> str:
    """A light English stemmer: plural endings only (`dogs` -> `dog`, `ponies` -> `pony`, `boxes` -> `box`)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def analyse(value: Any) -> list[str]:
    """Tokens of a text field value (a string or a list of strings)."""
    texts = value if isinstance(value, list) else [value] if value else []
    return [stem(w.lower()) for text in texts for w in _WORD.findall(str(text))]


def field_values(src: Source, field: str) -> list[Any]:
    """The (normalised) values of `field` in a source; a nested object's fields are `path.name` keys."""
    value = src.get("tags") if field == "tags.keyword" else src.get(field)
    values = value if isinstance(value, list) else [] if value is None else [value]
    norm = NORMALISED.get(field)
    return [norm(v) for v in values] if norm else values


def _comparable(field: str, value: Any) -> Any:
    """Dates compare as datetimes (sources and bounds hold ISO strings)."""
    return datetime.fromisoformat(value) if field in DATE_FIELDS and isinstance(value, str) else value


def in_range(field: str, value: Any, spec: dict[str, Any]) -> bool:
    return all(_RANGE_OPS[op](_comparable(field, value), _comparable(field, b)) for op, b in spec.items())


class Index:
    """One index: sources by id plus a version counter per id."""

    def __init__(self, name: str, body: dict[str, Any], *, strict: bool = False) -> None:
        self.name = name
        self.strict = strict
        self.body = body
        self.docs: dict[str, Source] = {}
        self.versions: Counter[str] = Counter()
        self.seq = itertools.count()

    def put(self, doc_id: str, src: Source) -> dict[str, Any]:
        mappings = self.body.get("mappings", {})
        unmapped = sorted(set(src) - set(mappings.get("properties", src))) if self.strict else []
        if unmapped and mappings.get("dynamic") == "strict":
            reason = f"mapping set to strict, dynamic introduction of {unmapped} within [_doc] is not allowed"
            error = {"type": "strict_dynamic_mapping_exception", "reason": reason}
            return {"_index": self.name, "_id": doc_id, "status": 400, "error": error}
        created = doc_id not in self.docs
        self.docs[doc_id] = src
        self.versions[doc_id] += 1
        return self._result(doc_id, "created" if created else "updated", 201 if created else 200)

    def remove(self, doc_id: str) -> dict[str, Any]:
        if self.docs.pop(doc_id, None) is None:
            return self._result(doc_id, "not_found", 404)
        self.versions[doc_id] += 1
        return self._result(doc_id, "deleted", 200)

    def _result(self, doc_id: str, result: str, status: int) -> dict[str, Any]:
        return {"_index": self.name, "_id": doc_id, "_version": max(1, self.versions[doc_id]), "result": result,
                "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": next(self.seq),
                "_primary_term": 1, "status": status}  # fmt: skip


class Scorer:
    """BM25 statistics of the text fields over one set of documents."""

    def __init__(self, docs: Sequence[Source]) -> None:
        self.docs = docs
        self.stats: dict[str, tuple[Counter[str], float]] = {}

    def field(self, name: str) -> tuple[Counter[str], float]:
        if name not in self.stats:
            df: Counter[str] = Counter()
            total = 0
            for src in self.docs:
                tokens = analyse(src.get(name))
                df.update(set(tokens))
                total += len(tokens)
            self.stats[name] = (df, total / max(1, len(self.docs)))
        return self.stats[name]

    def multi_match(self, spec: dict[str, Any], src: Source) -> float | None:
        terms = analyse(spec["query"])
        score, matched = 0.0, False
        for entry in spec["fields"]:
            name, _, boost = entry.partition("^")
            tokens = analyse(src.get(name))
            tf = Counter(tokens)
            df, avg = self.field(name)
            for term in terms:
                if tf[term]:
                    matched = True
                    n = len(self.docs)
                    idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                    norm = tf[term] * 2.2 / (tf[term] + 1.2 * (0.25 + 0.75 * len(tokens) / max(avg, 1e-9)))
                    score += float(boost or 1) * idf * norm
        return score if matched else None

    def evaluate(self, query: dict[str, Any], src: Source) -> float | None:
        """The score of `src` under `query`, or None when it does not match."""
        ((kind, arg),) = query.items()
        if kind == "bool":
            score = 0.0
            for clause in arg.get("must", []):
                got = self.evaluate(clause, src)
                if got is None:
                    return None
                score += got
            if any(self.evaluate(q, src) is None for q in arg.get("filter", [])):
                return None
            if any(self.evaluate(q, src) is not None for q in arg.get("must_not", [])):
                return None
            should = [s for s in (self.evaluate(q, src) for q in arg.get("should", [])) if s is not None]
            if arg.get("should") and not should and not (arg.get("must") or arg.get("filter")):
                return None
            return score + sum(should)
        if kind in ("match_all", "match_none"):
            return 1.0 if kind == "match_all" else None
        if kind == "multi_match":
            return self.multi_match(arg, src)
        if kind == "nested":
            path = arg["path"]
            inner = [{f"{path}.{k}": v for k, v in obj.items()} for obj in src.get(path) or []]
            return 1.0 if any(self.evaluate(arg["query"], obj) is not None for obj in inner) else None
        if kind == "exists":
            return 1.0 if field_values(src, arg["field"]) else None
        ((field, spec),) = arg.items()
        values = field_values(src, field)
        if kind == "term":
            hit = (spec["value"] if isinstance(spec, dict) else spec) in values
        elif kind == "terms":
            hit = any(v in spec for v in values)
        elif kind == "range":
            hit = any(in_range(field, v, spec) for v in values)
        else:
            raise ValueError(f"the fake cluster does not know the {kind!r} query")
        return 1.0 if hit else None


def _sort_key(spec: Any) -> tuple[str, bool]:
    """`(field, descending)` of one sort entry (`"f"`, `{"f": "asc"}` or `{"f": {"order": "desc"}}`)."""
    if isinstance(spec, str):
        return spec, spec == "_score"
    ((field, order),) = spec.items()
    order = order.get("order", "desc" if field == "_score" else "asc") if isinstance(order, dict) else order
    return field, order == "desc"


def _ordered(hits: list[dict[str, Any]], sort: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Hits sorted by their `sort` values (missing values last, as Elasticsearch does)."""
    for i, (field, desc) in reversed(list(enumerate(sort))):
        present = [h for h in hits if h["sort"][i] is not None]
        present.sort(key=lambda h: _comparable(field, h["sort"][i]), reverse=desc)
        hits = present + [h for h in hits if h["sort"][i] is None]
    return hits


def _after(hit: dict[str, Any], after: list[Any], sort: list[tuple[str, bool]]) -> bool:
    for value, bound, (field, desc) in zip(hit["sort"], after, sort, strict=True):
        if value != bound:
            if value is None or bound is None:
                return bound is not None
            a, b = _comparable(field, value), _comparable(field, bound)
            return a < b if desc else a > b
    return False


def _source_filter(src: Source, spec: Any) -> Source | None:
    if spec is False:
        return None
    if isinstance(spec, list):
        return {k: v for k, v in src.items() if k in spec}
    if isinstance(spec, dict):
        keep = {k: v for k, v in src.items() if k not in spec.get("excludes", [])}
        return {k: v for k, v in keep.items() if k in spec["includes"]} if "includes" in spec else keep
    return src


def _error(status: int, kind: str, reason: str) -> Reply:
    return status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
                    "status": status}  # fmt: skip


class FakeCluster:
    """The responder: `(method, path, body) -> (status, payload)`.

    `log` (the `RecordingNode.log` list) lets it read query parameters such as `_source=false`, which the
    recorder does not pass to responders: they come from the last recorded request when its path matches.
    `strict_mappings=True` rejects top-level source fields a `dynamic: strict` mapping lacks, as Elasticsearch does.
    """

    def __init__(self, log: list[Any] | None = None, *, strict_mappings: bool = False) -> None:
        self.log = log
        self.strict_mappings = strict_mappings
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, str] = {}
        self.pits: dict[str, tuple[str, list[tuple[str, Source]]]] = {}
        self.ids = itertools.count(1)

    def __call__(self, method: str, path: str, body: bytes | None) -> Reply:
        parts = [p for p in path.split("/") if p]
        params = self._params(path)
        data: Any = json.loads(body) if body and parts[-1:] != ["_bulk"] else None
        if not parts:
            return 200, INFO
        if parts[0] == "_alias" and method == "HEAD":
            return (200 if parts[1] in self.aliases else 404), None
        if parts == ["_bulk"]:
            return self._bulk((body or b"").decode())
        if parts == ["_pit"] and method == "DELETE":
            freed = self.pits.pop(data["id"], None) is not None
            return 200, {"succeeded": True, "num_freed": int(freed)}
        if parts == ["_search"]:
            return self._search(data or {})
        if len(parts) == 1 and method == "HEAD":
            return (200 if parts[0] in self.indices or parts[0] in self.aliases else 404), None
        if len(parts) == 1 and method == "PUT":
            return self._create(parts[0], data or {})
        index = self.resolve(parts[0])
        if index is None:
            return _error(404, "index_not_found_exception", f"no such index [{parts[0]}]")
        op = parts[1]
        if op == "_mget":
            return 200, {"docs": [self._get(index, i, params.get("_source") != "false") for i in data["ids"]]}
        if op == "_doc":
            doc_id = parts[2] if len(parts) > 2 else f"auto-{next(self.ids)}"
            return self._status(index.put(doc_id, data))
        if op == "_update":
            return self._update(index, parts[2], data)
        if op == "_count":
            docs = list(index.docs.values())
            query = (data or {}).get("query", {"match_all": {}})
            scorer = Scorer(docs)
            return 200, {"count": sum(scorer.evaluate(query, s) is not None for s in docs), "_shards": SHARDS}
        if op == "_search":
            return self._search(data or {}, index)
        if op == "_pit" and method == "POST":
            pit = f"pit-{next(self.ids)}"
            self.pits[pit] = (index.name, copy.deepcopy(list(index.docs.items())))
            return 200, {"id": pit, "_shards": SHARDS}
        return _error(400, "unsupported_by_fake", f"{method} {path}")

    # -- plumbing ----------------------------------------------------------------------------------
    def _params(self, path: str) -> dict[str, str]:
        last = self.log[-1] if self.log else None
        if last is None or urlsplit(last.target).path != path:
            return {}
        return {k: v[-1] for k, v in parse_qs(urlsplit(last.target).query).items()}

    def resolve(self, name: str) -> Index | None:
        return self.indices.get(self.aliases.get(name, name))

    @staticmethod
    def _status(result: dict[str, Any]) -> Reply:
        """A single-document write's reply from its bulk-style item result."""
        status, error = result.pop("status"), result.get("error")
        return _error(status, error["type"], error["reason"]) if error else (status, result)

    def _create(self, name: str, body: dict[str, Any]) -> Reply:
        if name in self.indices or name in self.aliases:
            return _error(400, "resource_already_exists_exception", f"index [{name}] already exists")
        self.indices[name] = Index(name, body, strict=self.strict_mappings)
        self.aliases.update(dict.fromkeys(body.get("aliases", {}), name))
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    # -- documents ---------------------------------------------------------------------------------
    def _bulk(self, text: str) -> Reply:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        items: list[dict[str, Any]] = []
        while lines:
            ((op, meta),) = lines.pop(0).items()
            index = self.resolve(meta["_index"])
            if index is None:
                error = {"type": "index_not_found_exception", "reason": "no such index"}
                items.append({op: {"_index": meta["_index"], "_id": meta.get("_id"), "status": 404, "error": error}})
            elif op == "delete":
                items.append({op: index.remove(meta["_id"])})
            elif op == "index":
                items.append({op: index.put(meta.get("_id") or f"auto-{next(self.ids)}", lines.pop(0))})
            else:
                raise ValueError(f"the fake cluster does not know the bulk {op!r} action")
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    @staticmethod
    def _get(index: Index, doc_id: str, with_source: bool) -> dict[str, Any]:
        src = index.docs.get(doc_id)
        if src is None:
            return {"_index": index.name, "_id": doc_id, "found": False}
        found = {"_index": index.name, "_id": doc_id, "_version": index.versions[doc_id], "_seq_no": 0,
                 "_primary_term": 1, "found": True}  # fmt: skip
        return {**found, "_source": copy.deepcopy(src)} if with_source else found

    def _update(self, index: Index, doc_id: str, body: dict[str, Any]) -> Reply:
        current = index.docs.get(doc_id)
        if current is None:
            return self._status(index.put(doc_id, copy.deepcopy(body["upsert"])))
        script = body["script"]["source"].strip().rstrip(";")
        match = re.fullmatch(r"ctx\._source\.(\w+) \+= 1", script)
        if match is None:
            return _error(400, "illegal_argument_exception", f"the fake cannot run the script {script!r}")
        updated = dict(current, **{match[1]: current.get(match[1], 0) + 1})
        return self._status(index.put(doc_id, updated))

    # -- search ------------------------------------------------------------------------------------
    def _search(self, body: dict[str, Any], index: Index | None = None) -> Reply:
        pit = body.get("pit")
        if pit is not None:
            if pit["id"] not in self.pits:
                return _error(404, "search_context_missing_exception", "no such point in time")
            name, docs = self.pits[pit["id"]]
        elif index is not None:
            name, docs = index.name, list(index.docs.items())
        else:
            return _error(400, "unsupported_by_fake", "a search needs an index or a point in time")
        scorer = Scorer([src for _, src in docs])
        query = body.get("query", {"match_all": {}})
        sort = [_sort_key(s) for s in body.get("sort", ["_score"])]
        hits: list[dict[str, Any]] = []
        for doc_id, src in docs:
            score = scorer.evaluate(query, src)
            if score is not None:
                values = [score if f == "_score" else (field_values(src, f) or [None])[0] for f, _ in sort]
                hits.append({"_index": name, "_id": doc_id, "_score": score, "src": src, "sort": values})
        total = len(hits)
        hits = _ordered(hits, sort)
        if "search_after" in body:
            hits = [h for h in hits if _after(h, body["search_after"], sort)]
        start = int(body.get("from", 0))
        page = hits[start : start + int(body.get("size", 10))]
        for hit in page:
            shown = _source_filter(hit.pop("src"), body.get("_source", True))
            if shown is not None:
                hit["_source"] = copy.deepcopy(shown)
            if "sort" not in body:
                del hit["sort"]
        reply: dict[str, Any] = {
            "took": 1,
            "timed_out": False,
            "_shards": SHARDS,
            "hits": {"max_score": max((h["_score"] for h in page), default=None), "hits": page},
        }
        if body.get("track_total_hits", True) is not False:
            reply["hits"]["total"] = {"value": total, "relation": "eq"}
        if pit is not None:
            reply["pit_id"] = pit["id"]
        if body.get("aggs"):
            matched = [src for _, src in docs if scorer.evaluate(query, src) is not None]
            reply["aggregations"] = {k: self._aggregate(spec, matched, scorer) for k, spec in body["aggs"].items()}
        return 200, reply

    def _aggregate(self, spec: dict[str, Any], docs: list[Source], scorer: Scorer, parents: Any = None) -> Any:
        """One aggregation over `docs` (nested objects carry their parent in `parents`, for reverse_nested)."""
        sub = spec.get("aggs", {})
        if "nested" in spec:
            path = spec["nested"]["path"]
            inner = [({f"{path}.{k}": v for k, v in o.items()}, src) for src in docs for o in src.get(path) or []]
            objs, owners = [o for o, _ in inner], [p for _, p in inner]
            return {"doc_count": len(objs), **{k: self._aggregate(s, objs, scorer, owners) for k, s in sub.items()}}
        if "filter" in spec:
            pairs = zip(docs, parents or docs, strict=True)
            kept = [(d, p) for d, p in pairs if scorer.evaluate(spec["filter"], d) is not None]
            objs, owners = [d for d, _ in kept], [p for _, p in kept]
            return {"doc_count": len(objs), **{k: self._aggregate(s, objs, scorer, owners) for k, s in sub.items()}}
        if "reverse_nested" in spec:
            return {"doc_count": len({id(p) for p in parents or docs})}
        if "terms" in spec:
            field = spec["terms"]["field"]
            groups: dict[Any, list[tuple[Source, Any]]] = {}
            for d, p in zip(docs, parents or docs, strict=True):
                for value in dict.fromkeys(field_values(d, field)):
                    groups.setdefault(value, []).append((d, p))
            ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))[: spec["terms"].get("size", 10)]
            buckets = []
            for key, members in ranked:
                bucket: dict[str, Any] = {"key": int(key) if isinstance(key, bool) else key, "doc_count": len(members)}
                if isinstance(key, bool):
                    bucket["key_as_string"] = str(key).lower()
                objs, owners = [d for d, _ in members], [p for _, p in members]
                bucket.update({k: self._aggregate(s, objs, scorer, owners) for k, s in sub.items()})
                buckets.append(bucket)
            return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": buckets}
        raise ValueError(f"the fake cluster does not know the aggregation {sorted(spec)}")
