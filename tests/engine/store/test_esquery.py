"""The pure Elasticsearch builders: exact bodies, the 9.5 request contract, and filter semantics equal to SQLite.

Bodies are checked against the Elasticsearch specification bundle in `../shared/es-spec` (skipped, with the
reason, when absent). Filter semantics are checked by evaluating the generated query DSL on the documents'
`_source` with a tiny interpreter and comparing with what the SQLite store returns for the same filters.
"""

from __future__ import annotations

import importlib.util
import json
import operator
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.documents import Box, ColourShare, Document, Label, OcrWord
from engine.filters import parse_filters
from engine.settings import TextWeights
from engine.store import esquery
from engine.store.sqlite import SqliteStore

SPEC_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "es-spec"
INDEX = "imgsearch-images"
MIN_SHARE = 0.05
WEIGHTS = TextWeights().model_dump()


@pytest.fixture(scope="module")
def validator() -> Any:
    """The spec validator, loaded once per module (a couple of seconds)."""
    script = SPEC_DIR / "validate.py"
    bundle = SPEC_DIR / "es-9.5-stack-strict.schema.json"
    if not script.exists() or not bundle.exists():
        pytest.skip(f"Elasticsearch request spec absent: {SPEC_DIR} (needs validate.py and the schema bundle)")
    spec = importlib.util.spec_from_file_location("es_spec_validate", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.SpecValidator.load(str(bundle))


def sb(text: str | None = None, filters: Any = (), **kw: Any) -> dict[str, Any]:
    return esquery.search_body(
        text=text, filters=parse_filters(list(filters)), k=kw.pop("k", 10), colour_min_share=MIN_SHARE,
        weights=WEIGHTS, **kw,
    )  # fmt: skip


def make_doc(doc_id: str, **kw: Any) -> Document:
    base: dict[str, Any] = {"path": f"/img/{doc_id}.jpg", "width": 800, "height": 600, "format": "jpeg", "bytes": 1000}
    base.update(kw)
    return Document(id=doc_id, **base)


# -- mapping ----------------------------------------------------------------------------------------------
def test_images_mapping_shape() -> None:
    body = esquery.load_mapping("images-v1")
    props = body["mappings"]["properties"]
    assert body["mappings"]["dynamic"] == "strict"
    assert props["colours"]["type"] == "nested" and props["labels"]["type"] == "nested"
    assert props["colours"]["properties"]["share"]["type"] == "float"
    assert props["labels"]["properties"]["count"]["type"] == "integer"
    assert props["vectors"] == {"type": "object", "enabled": False}
    assert props["ocr_words"] == {"type": "object", "enabled": False}
    assert props["has_text"]["type"] == "boolean" and props["taken_at"]["type"] == "date"
    assert props["tags"]["fields"]["keyword"]["type"] == "keyword"
    for es_field in esquery.TEXT_FIELD_MAP.values():
        assert props[es_field] == {"type": "text", "analyzer": "imgsearch_text"} or props[es_field]["analyzer"] == (
            "imgsearch_text"
        )
    analyzer = body["settings"]["analysis"]["analyzer"]["imgsearch_text"]
    assert "english_porter" in analyzer["filter"]
    assert esquery.load_mapping("images-v1.json") == body


def test_every_source_field_is_mapped() -> None:
    """`dynamic: strict` rejects unmapped fields: every key a source has must be in the mapping."""
    props = esquery.load_mapping("images-v1")["mappings"]["properties"]
    src = esquery.document_source(rich_doc(), colour_min_share=MIN_SHARE)
    assert set(src) == set(props)
    assert set(src["labels"][0]) == set(props["labels"]["properties"])
    assert set(src["colours"][0]) == set(props["colours"]["properties"])


def test_create_index_bodies_are_valid(validator: Any) -> None:
    body = esquery.create_index_body(alias=INDEX)
    assert body["aliases"] == {INDEX: {}}
    assert body["mappings"] == esquery.load_mapping("images-v1")["mappings"]
    assert validator.validate_request("PUT", f"/{INDEX}-v1", body) == []
    assert "aliases" not in esquery.create_index_body()
    events = esquery.create_index_body(mapping="events-v1")
    assert events["mappings"]["properties"]["request"] == {"type": "object", "enabled": False}
    assert validator.validate_request("PUT", "/imgsearch-events", events) == []


def test_validator_catches_a_bad_mapping(validator: Any) -> None:
    body = esquery.create_index_body()
    body["mappings"]["properties"]["width"] = {"type": "integer", "analyzer": "imgsearch_text"}
    assert validator.validate_request("PUT", f"/{INDEX}-v1", body) != []


# -- documents --------------------------------------------------------------------------------------------
def rich_doc() -> Document:
    rng = np.random.default_rng(0)
    return make_doc(
        "a" * 32,
        path="C:\\photos\\GoldenRetriever_02.JPG",
        format="JPEG",
        orientation="landscape",
        taken_at=datetime(2021, 5, 31, 12, 30, 5),
        ingested_at=datetime(2024, 1, 2, 3, 4, 5),
        title="A dog",
        caption="A dog on the beach",
        tags=["Beach", "pets"],
        licence="CC-BY",
        source="flickr",
        colours=[ColourShare("red", 0.42), ColourShare("blue", 0.03)],
        phash="f0f0f0f0f0f0f0f0",
        ocr_text="SALE 50%",
        ocr_words=[OcrWord("SALE", 0.9, (0.1, 0.2, 0.3, 0.4))],
        labels=[Label("Dog", 2, 0.88, 0.25, [Box(0.1, 0.1, 0.5, 0.5, 0.9), Box(0.5, 0.5, 0.9, 0.9, 0.8)])],
        label_terms=["puppy", "canine"],
        vectors={"clip": rng.standard_normal(8).astype(np.float32), "dino": np.ones(4, dtype=np.float32)},
        enrichments={"colour": "1", "objects": "yolo11n"},
    )


def test_document_source_fields() -> None:
    src = esquery.document_source(rich_doc(), colour_min_share=MIN_SHARE)
    assert src["filename"] == "Golden Retriever 02"
    assert src["colour_words"] == "red red red red"  # blue is below the minimum share
    assert src["label_words"] == "Dog Dog puppy canine"
    assert src["has_text"] is True
    assert src["taken_at"] == "2021-05-31T12:30:05"
    assert src["labels"][0]["boxes"][1] == [0.5, 0.5, 0.9, 0.9, 0.8]
    assert set(src["vectors"]) == {"clip", "dino"} and isinstance(src["vectors"]["clip"], str)
    assert len(esquery.decode_vectors(src["vectors"])["clip"]) == 8
    json.dumps(src)  # JSON-ready


def test_document_round_trip() -> None:
    doc = rich_doc()
    src = json.loads(json.dumps(esquery.document_source(doc, colour_min_share=MIN_SHARE)))
    back = esquery.document_from_source(src)
    for name in ("id", "path", "width", "height", "format", "bytes", "orientation", "taken_at", "ingested_at",
                 "title", "caption", "tags", "licence", "source", "colours", "phash", "ocr_text", "ocr_words",
                 "labels", "label_terms", "enrichments"):  # fmt: skip
        assert getattr(back, name) == getattr(doc, name), name
    assert set(back.vectors) == set(doc.vectors)
    for name, vec in doc.vectors.items():
        assert back.vectors[name].dtype == np.float32
        np.testing.assert_allclose(back.vectors[name], vec, rtol=1e-3, atol=1e-3)


def test_missing_ingested_at_takes_now() -> None:
    doc = make_doc("b" * 32)
    assert esquery.document_source(doc, colour_min_share=MIN_SHARE)["ingested_at"] is None
    now = datetime(2025, 1, 1)
    src = esquery.document_source(doc, colour_min_share=MIN_SHARE, now=now)
    assert src["ingested_at"] == "2025-01-01T00:00:00"
    back = esquery.document_from_source(src)
    assert back.taken_at is None and back.ingested_at == now and back.vectors == {} and back.labels == []


# -- text -------------------------------------------------------------------------------------------------
def test_text_query_weights_and_tokens() -> None:
    q = esquery.text_query("Red CAR, red!", WEIGHTS)
    assert q == {
        "multi_match": {
            "query": "red car",
            "fields": ["title^3", "caption^2", "tags^2.5", "filename^1", "colour_words^1", "label_words^1.5",
                       "ocr_text^1"],
            "type": "most_fields",
            "operator": "or",
        }
    }  # fmt: skip
    assert esquery.text_query("  ...  ", WEIGHTS) is None
    assert esquery.text_query("", WEIGHTS) is None
    custom = esquery.text_query("x1", {"title": 0.5})
    assert custom is not None and custom["multi_match"]["fields"][:2] == ["title^0.5", "caption^1"]


HOSTILE = ['title:secret', 'a OR b', '"unbalanced', 'x*', '-minus +plus', 'a AND NOT b', '(((', 'foo~2 bar^10',
           'field:[1 TO 5]', '/re.*x/', '\\escape', 'naïve café', '*']  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_user_text_is_never_query_syntax(text: str, validator: Any) -> None:
    body = sb(text, ["colour=red"])
    dumped = json.dumps(body)
    assert "query_string" not in dumped and "simple_query_string" not in dumped
    q = esquery.text_query(text, WEIGHTS)
    if q is None:
        assert body["query"]["bool"]["must"] == [{"match_all": {}}]
        assert body["sort"][0] == {"ingested_at": {"order": "desc"}}
    else:
        words = q["multi_match"]["query"].split(" ")
        assert all(w.isalnum() and w == w.lower() for w in words), words
        assert body["query"]["bool"]["must"] == [q]
    assert validator.validate_request("POST", f"/{INDEX}/_search", body) == []


def test_hostile_tokens_are_plain_words() -> None:
    assert esquery.text_query("title:secret AND x*", WEIGHTS)["multi_match"]["query"] == "title secret and"  # type: ignore[index]
    assert esquery.text_query("MR D.I.Y.", WEIGHTS)["multi_match"]["query"] == "mr diy"  # type: ignore[index]


# -- filters ----------------------------------------------------------------------------------------------
def fc(*exprs: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return esquery.filter_clauses(parse_filters(list(exprs)), colour_min_share=MIN_SHARE)


def test_term_filters() -> None:
    assert fc("format=jpeg,png") == ([{"terms": {"format": ["jpeg", "png"]}}], [])
    assert fc("tag!=beach") == ([], [{"terms": {"tags.keyword": ["beach"]}}])
    assert fc("colour=red,blue") == (
        [{"nested": {"path": "colours", "query": {"bool": {"filter": [
            {"terms": {"colours.name": ["red", "blue"]}}, {"range": {"colours.share": {"gte": MIN_SHARE}}}]}}}}],
        [],
    )  # fmt: skip
    assert fc("label!=dog") == (
        [],
        [{"nested": {"path": "labels", "query": {"bool": {"filter": [{"terms": {"labels.name": ["dog"]}}]}}}}],
    )


def keyed(path: str, key: str, num: str, op: str, value: float) -> dict[str, Any]:
    return {"nested": {"path": path, "query": {"bool": {"filter": [
        {"term": {f"{path}.name": key}}, {"range": {f"{path}.{num}": {op: value}}}]}}}}  # fmt: skip


def test_keyed_ranges_all_ops() -> None:
    assert fc("label_count.person>=2") == ([keyed("labels", "person", "count", "gte", 2.0)], [])
    assert fc("label_count.person>2") == ([keyed("labels", "person", "count", "gt", 2.0)], [])
    # missing counts as 0: "< v" is "not (>= v)", "<= v" is "not (> v)"
    assert fc("label_count.person<2") == ([], [keyed("labels", "person", "count", "gte", 2.0)])
    assert fc("label_count.person<=2") == ([], [keyed("labels", "person", "count", "gt", 2.0)])
    assert fc("colour_share.red>=0.3") == ([keyed("colours", "red", "share", "gte", 0.3)], [])
    assert fc("colour_share.red<0.3") == ([], [keyed("colours", "red", "share", "gte", 0.3)])


def test_keyed_range_edges() -> None:
    assert fc("label_count.cat>=0") == ([], [])  # everything passes
    assert fc("label_count.cat>-1") == ([], [])
    assert fc("label_count.cat>0") == ([keyed("labels", "cat", "count", "gt", 0.0)], [])
    assert fc("label_count.cat<0") == ([{"match_none": {}}], [])  # nothing passes
    assert fc("label_count.cat<=-1") == ([{"match_none": {}}], [])
    assert fc("label_count.cat<=0") == ([], [keyed("labels", "cat", "count", "gt", 0.0)])


def test_numeric_date_bool_filters() -> None:
    must, must_not = fc("width>=800", "bytes<5000", "date>=2020-01-01", "has_text=false")
    assert must == [
        {"range": {"width": {"gte": 800.0}}},
        {"range": {"bytes": {"lt": 5000.0}}},
        {"range": {"taken_at": {"gte": "2020-01-01T00:00:00"}}},
        {"term": {"has_text": False}},
    ]
    assert must_not == []


FILTER_CASES = [
    [],
    ["colour=red"],
    ["colour!=red"],
    ["colour=blue"],
    ["colour=red,green", "label=dog"],
    ["label=dog,cat"],
    ["label!=dog"],
    ["format=png"],
    ["format!=jpeg", "orientation=landscape"],
    ["tag=beach"],
    ["tag!=beach,pets"],
    ["licence=cc-by"],
    ["source=flickr"],
    ["label_count.dog>=2"],
    ["label_count.dog>2"],
    ["label_count.dog<2"],
    ["label_count.dog<=2"],
    ["label_count.dog<=0"],
    ["label_count.dog>=0"],
    ["label_count.dog<0"],
    ["label_count.dog>0.5"],
    ["colour_share.red>=0.3"],
    ["colour_share.red<0.3"],
    ["colour_share.red<=0.42"],
    ["colour_share.blue>0", "colour!=blue"],
    ["width>=800", "height<700"],
    ["bytes>1000"],
    ["bytes<=1000"],
    ["date>=2021-01-01"],
    ["date<2021-05-31T12:30:05"],
    ["date<=2021-05-31T12:30:05"],
    ["has_text=true"],
    ["has_text=false", "colour=red"],
    ["label=dog", "label_count.dog<3", "colour_share.red>0.1", "has_text=true", "width>100"],
]


@pytest.mark.parametrize("exprs", FILTER_CASES, ids=lambda e: " & ".join(e) or "none")
def test_filter_bodies_are_valid(exprs: list[str], validator: Any) -> None:
    body = sb(None, exprs)
    must, must_not = fc(*exprs)
    assert body["query"]["bool"].get("filter", []) == must
    assert body["query"]["bool"].get("must_not", []) == must_not
    assert validator.validate_request("POST", f"/{INDEX}/_search", body) == []
    count = esquery.count_body(filters=parse_filters(exprs), colour_min_share=MIN_SHARE)
    assert count == {"query": body["query"]}
    assert validator.validate_request("POST", f"/{INDEX}/_count", count) == []


# A tiny interpreter of the query DSL the builders emit, over `_source` documents.
_NORMALISED = {"format", "licence", "orientation", "source", "labels.name"}


def _values(src: dict[str, Any], field: str) -> list[Any]:
    if field == "tags.keyword":
        return [t.strip().lower() for t in src["tags"]]
    value = src.get(field)
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [v.lower() for v in values] if field in _NORMALISED else values


def _in_range(value: Any, spec: dict[str, Any]) -> bool:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
        spec = {op: datetime.fromisoformat(v) for op, v in spec.items()}
    ops = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
    return all(ops[op](value, v) for op, v in spec.items())


def matches(query: dict[str, Any], src: dict[str, Any]) -> bool:
    ((kind, arg),) = query.items()
    if kind == "bool":
        return all(matches(q, src) for q in arg.get("must", []) + arg.get("filter", [])) and not any(
            matches(q, src) for q in arg.get("must_not", [])
        )
    if kind in ("match_all", "match_none"):
        return kind == "match_all"
    if kind == "nested":
        path = arg["path"]
        return any(matches(arg["query"], {f"{path}.{k}": v for k, v in obj.items()}) for obj in src.get(path, []))
    ((field, spec),) = arg.items()
    values = _values(src, field)
    if kind == "terms":
        return any(v in spec for v in values)
    if kind == "term":
        return spec in values
    if kind == "range":
        return any(_in_range(v, spec) for v in values)
    raise AssertionError(f"unexpected query {kind}")


def corpus() -> list[Document]:
    return [
        rich_doc(),
        make_doc("01" * 16, format="png", colours=[ColourShare("red", 0.04), ColourShare("green", 0.5)]),
        make_doc(
            "02" * 16,
            width=1200,
            height=800,
            bytes=5000,
            orientation="landscape",
            taken_at=datetime(2021, 5, 31, 12, 30, 5),
            labels=[Label("dog", 3, 0.9), Label("cat", 1, 0.5)],
            colours=[ColourShare("red", 0.3)],
            tags=[" Beach "],
        ),
        make_doc("03" * 16, width=50, height=50, labels=[Label("dog", 1, 0.7)], ocr_text="hello", licence="CC-BY"),
        make_doc("04" * 16, taken_at=datetime(2019, 1, 1), colours=[ColourShare("blue", 0.9)], tags=["pets"]),
        make_doc("05" * 16, bytes=999, labels=[Label("person", 2, 0.9)], source="upload", format="gif"),
    ]


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = SqliteStore(tmp_path_factory.mktemp("esquery") / "s.db", colour_min_share=MIN_SHARE)
    store.upsert(corpus())
    yield store
    store.close()


@pytest.mark.parametrize("exprs", FILTER_CASES, ids=lambda e: " & ".join(e) or "none")
def test_filters_select_what_sqlite_selects(exprs: list[str], sqlite_store: SqliteStore) -> None:
    filters = parse_filters(exprs)
    query = esquery.count_body(filters=filters, colour_min_share=MIN_SHARE)["query"]
    sources = [esquery.document_source(d, colour_min_share=MIN_SHARE) for d in corpus()]
    es_ids = {s["id"] for s in sources if matches(query, s)}
    assert es_ids == set(sqlite_store.filter_ids(filters))


def test_interpreter_is_not_vacuous(sqlite_store: SqliteStore) -> None:
    counts = {len(sqlite_store.filter_ids(parse_filters(e))) for e in FILTER_CASES}
    assert len(counts) >= 4 and 0 in counts and len(corpus()) in counts


# -- search bodies ----------------------------------------------------------------------------------------
def test_text_search_body(validator: Any) -> None:
    body = sb("red dog", ["colour=red", "label!=cat"], k=25)
    assert body["size"] == 25
    assert body["sort"] == [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}]
    assert body["_source"] == {"excludes": ["vectors"]}
    assert body["track_total_hits"] is True
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == "red dog"
    assert "aggs" not in body and "pit" not in body and "search_after" not in body
    assert validator.validate_request("POST", f"/{INDEX}/_search", body) == []


def test_browse_body(validator: Any) -> None:
    body = sb(None, ["format=jpeg"], k=5, offset=10, track_total_hits=False)
    assert body["query"]["bool"]["must"] == [{"match_all": {}}]
    assert body["sort"] == [{"ingested_at": {"order": "desc"}}, {"id": {"order": "asc"}}]
    assert body["from"] == 10 and body["track_total_hits"] is False
    assert validator.validate_request("POST", f"/{INDEX}/_search", body) == []


def test_facet_aggregations(validator: Any) -> None:
    fields = ["colour", "label", "format", "licence", "orientation", "tag", "source", "has_text"]
    body = sb("dog", ["width>=100"], k=0, facets=fields, facet_size=20)
    aggs = body["aggs"]
    assert list(aggs) == fields
    assert aggs["colour"]["nested"] == {"path": "colours"}
    assert aggs["colour"]["aggs"]["filtered"]["filter"] == {"range": {"colours.share": {"gte": MIN_SHARE}}}
    assert aggs["colour"]["aggs"]["filtered"]["aggs"]["values"]["terms"] == {"field": "colours.name", "size": 20}
    assert aggs["label"]["aggs"]["values"]["aggs"] == {"docs": {"reverse_nested": {}}}
    assert aggs["tag"] == {"terms": {"field": "tags.keyword", "size": 20}}
    assert aggs["has_text"] == {"terms": {"field": "has_text", "size": 2}}
    assert validator.validate_request("POST", f"/{INDEX}/_search", body) == []


def test_facet_buckets_parses_a_response() -> None:
    aggregations = {
        "colour": {"doc_count": 9, "filtered": {"doc_count": 7, "values": {
            "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
            "buckets": [{"key": "red", "doc_count": 4, "docs": {"doc_count": 3}},
                        {"key": "blue", "doc_count": 3, "docs": {"doc_count": 3}}]}}},
        "label": {"doc_count": 5, "values": {"buckets": [{"key": "dog", "doc_count": 5, "docs": {"doc_count": 2}}]}},
        "format": {"buckets": [{"key": "jpeg", "doc_count": 6}, {"key": "png", "doc_count": 1}]},
        "tag": {"buckets": [{"key": "", "doc_count": 2}, {"key": "beach", "doc_count": 2}]},
        "has_text": {"buckets": [{"key": 0, "key_as_string": "false", "doc_count": 5},
                                 {"key": 1, "key_as_string": "true", "doc_count": 2}]},
    }  # fmt: skip
    fields = ["colour", "label", "format", "tag", "has_text", "licence"]
    assert esquery.facet_buckets(aggregations, fields) == {
        "colour": {"red": 3, "blue": 3},
        "label": {"dog": 2},
        "format": {"jpeg": 6, "png": 1},
        "tag": {"beach": 2},
        "has_text": {"false": 5, "true": 2},
        "licence": {},
    }


def test_pagination_with_pit_and_search_after(validator: Any) -> None:
    assert validator.validate_request("POST", f"/{INDEX}/_pit?keep_alive=1m", None) == []
    body = sb("dog", ["label=dog"], k=50, pit_id="PIT123", search_after=[1.5, "a" * 32], offset=100)
    assert body["pit"] == {"id": "PIT123", "keep_alive": "1m"}
    assert body["search_after"] == [1.5, "a" * 32]
    assert "from" not in body  # search_after replaces offsets
    assert validator.validate_request("POST", "/_search", body) == []
    assert validator.validate_request("DELETE", "/_pit", esquery.close_pit_body("PIT123")) == []


def test_filter_ids_body(validator: Any) -> None:
    filters = parse_filters(["colour=red", "label_count.dog<2"])
    body = esquery.filter_ids_body(filters, colour_min_share=MIN_SHARE, size=500)
    assert body["_source"] is False and body["size"] == 500
    assert body["sort"] == [{"id": {"order": "asc"}}]
    assert body["query"]["bool"]["filter"][0]["nested"]["path"] == "colours"
    assert body["query"]["bool"]["must_not"] == [keyed("labels", "dog", "count", "gte", 2.0)]
    assert validator.validate_request("POST", f"/{INDEX}/_search", body) == []
    paged = esquery.filter_ids_body(filters, colour_min_share=MIN_SHARE, search_after=["a" * 32], pit_id="P")
    assert paged["search_after"] == ["a" * 32] and paged["pit"] == {"id": "P", "keep_alive": "1m"}
    assert validator.validate_request("POST", "/_search", paged) == []


def test_count_with_text(validator: Any) -> None:
    body = esquery.count_body(filters=parse_filters(["has_text=true"]), colour_min_share=MIN_SHARE, text="sale",
                              weights=WEIGHTS)  # fmt: skip
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == "sale"
    assert body["query"]["bool"]["filter"] == [{"term": {"has_text": True}}]
    assert validator.validate_request("POST", f"/{INDEX}/_count", body) == []


# -- writes and aliases -----------------------------------------------------------------------------------
def test_bulk_index_and_delete(validator: Any) -> None:
    docs = [rich_doc(), make_doc("01" * 16)]
    actions = esquery.bulk_actions(docs, f"{INDEX}-v1", colour_min_share=MIN_SHARE)
    assert len(actions) == 2
    assert actions[0]["index"] == {"_index": f"{INDEX}-v1", "_id": "a" * 32}
    assert actions[0]["_source"] == esquery.document_source(docs[0], colour_min_share=MIN_SHARE)
    assert actions[1]["_source"]["id"] == "01" * 16
    deletes = esquery.bulk_delete_actions(["x1", "x2"], INDEX)
    assert deletes == [{"delete": {"_index": INDEX, "_id": "x1"}}, {"delete": {"_index": INDEX, "_id": "x2"}}]
    lines = esquery.bulk_lines([*actions, *deletes])
    assert lines[0] == {"index": {"_index": f"{INDEX}-v1", "_id": "a" * 32}} and lines[1]["id"] == "a" * 32
    assert [next(iter(line)) for line in lines[4:]] == ["delete", "delete"]
    ndjson = esquery.bulk_ndjson([*actions, *deletes])
    assert ndjson.endswith("\n") and len(ndjson.splitlines()) == 6
    assert [json.loads(line) for line in ndjson.splitlines()] == lines
    assert json.loads(ndjson.splitlines()[1])["colour_words"] == "red red red red"
    assert validator.validate_request("POST", "/_bulk", ndjson) == []
    assert validator.validate_request("POST", "/_bulk", esquery.bulk_ndjson([{"upsert": {"_id": "x"}}])) != []


def test_alias_swap(validator: Any) -> None:
    body = esquery.alias_swap_actions(INDEX, f"{INDEX}-v1", f"{INDEX}-v2")
    assert body == {
        "actions": [
            {"remove": {"index": f"{INDEX}-v1", "alias": INDEX}},
            {"add": {"index": f"{INDEX}-v2", "alias": INDEX}},
        ]
    }
    assert validator.validate_request("POST", "/_aliases", body) == []
    first = esquery.alias_swap_actions(INDEX, None, f"{INDEX}-v1")
    assert first == {"actions": [{"add": {"index": f"{INDEX}-v1", "alias": INDEX}}]}
    assert validator.validate_request("POST", "/_aliases", first) == []
