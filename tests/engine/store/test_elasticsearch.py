"""The Elasticsearch backend against its request contract (no cluster can run here).

Every request the store sends goes through the shared es-spec `RecordingNode` and is validated
against Elasticsearch 9.5's API schema; scripted replies drive the failure paths (429 on bulk
items, a partial bulk failure, a time-out, a 5xx, a mapping conflict, a wrong major version).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from engine.documents import ColourShare, Document, Label
from engine.errors import ConfigError, StoreError, StoreUnavailable
from engine.filters import parse_filters
from engine.store import Click, Impression
from tests.conftest import ES_SCHEMA, es_spec


@pytest.fixture(scope="module")
def recorder() -> Any:
    return es_spec("recorder")


@pytest.fixture(scope="module")
def validator() -> Any:
    return es_spec("validate").SpecValidator.load(ES_SCHEMA)


class Scripted:
    """The recorder's canned replies, with overrides per (method, last path segment)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.overrides: list[tuple[str, str, Any]] = []  # (method, suffix, reply or callable)

    def __call__(self, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        for i, (m, suffix, reply) in enumerate(self.overrides):
            if m == method and path.rstrip("/").endswith(suffix):
                if not callable(reply):
                    del self.overrides[i]  # one-shot
                    return reply  # type: ignore[no-any-return]
                result = reply(method, path, body)
                if result is not None:
                    return result  # type: ignore[no-any-return]
        if path.endswith("_mget"):  # the canned responder has no mget: every id is "not found"
            ids = json.loads(body or b"{}").get("ids", [])
            return 200, {"docs": [{"_index": "t-images-v1", "_id": i, "found": False} for i in ids]}
        return self.base(method, path, body)  # type: ignore[no-any-return]


@pytest.fixture
def es(recorder: Any) -> Iterator[tuple[Any, Scripted]]:
    from elasticsearch import Elasticsearch

    script = Scripted(recorder.Responder())
    recorder.RecordingNode.log = []
    recorder.RecordingNode.responder = script
    client = Elasticsearch("http://es.invalid:9200", node_class=recorder.RecordingNode, max_retries=0)
    yield client, script
    client.close()


def store(client: Any, **kw: Any) -> Any:
    from engine.store.elasticsearch import ElasticsearchStore

    return ElasticsearchStore(client, prefix="t", text_weights={"title": 3.0}, **kw)


def doc(**kw: Any) -> Document:
    base: dict[str, Any] = {
        "id": secrets.token_hex(16),
        "path": "/img/a.jpg",
        "width": 10,
        "height": 5,
        "format": "jpeg",
        "bytes": 100,
        "caption": "a red car",
        "colours": [ColourShare("red", 0.7)],
        "labels": [Label("car", 1, 0.9)],
        "vectors": {"colour": np.ones(8, dtype=np.float32) / 8**0.5},
    }
    base.update(kw)
    return Document(**base)


def assert_valid(recorder: Any, validator: Any) -> None:
    problems = recorder.validate_log(validator, recorder.RecordingNode.log)
    assert problems == [], problems


def test_every_request_shape_is_valid(es: tuple[Any, Scripted], recorder: Any, validator: Any) -> None:
    client, _ = es
    s = store(client)
    docs = [doc(), doc(path="/img/b.jpg", ocr_text="TOTAL 9.00")]
    s.upsert(docs)
    s.get([d.id for d in docs])
    s.existing([docs[0].id])
    s.ids_for_path("/img/a.jpg")
    filters = parse_filters(["colour=red", "label_count.person<2", "width>=5", "has_text=false", "format!=png"])
    s.search_text('red car "title:x" *', filters, 10)
    s.count_text("red", filters)
    s.count(filters)
    s.browse(filters, 5, 10)
    s.facets(filters, ["colour", "label", "format", "has_text"], text="car")
    s.filter_ids(filters)
    list(s.iter_vectors("colour"))
    list(s.iter_phashes())
    s.generation()
    s.delete([docs[0].id])
    s.record_impression(Impression("q1", datetime(2026, 1, 1), {"text": "x"}, [{"id": docs[1].id, "position": 1}]))
    s.get_impression("q1")
    s.record_click(Click("q1", docs[1].id, 1, datetime(2026, 1, 1)))
    s.impressions()
    s.clicks()
    methods = {(r.method, r.path.rsplit("/", 1)[-1]) for r in recorder.RecordingNode.log}
    for expected in (
        ("PUT", "_bulk"),
        ("POST", "_search"),
        ("POST", "_count"),
        ("POST", "_mget"),
        ("POST", "_pit"),
        ("DELETE", "_pit"),
    ):
        assert expected in methods, expected
    assert_valid(recorder, validator)
    searches = [r.json_body() for r in recorder.RecordingNode.log if r.path.endswith("_search") and r.body]
    assert all("query_string" not in json.dumps(b) for b in searches)


def test_creates_versioned_index_behind_an_alias(es: tuple[Any, Scripted], recorder: Any, validator: Any) -> None:
    client, _ = es
    store(client)
    creates = [r for r in recorder.RecordingNode.log if r.method == "PUT"]
    assert [r.path for r in creates] == ["/t-images-v1", "/t-events"]
    body = creates[0].json_body()
    assert body["aliases"] == {"t-images": {}}
    assert body["mappings"]["dynamic"] == "strict"
    assert_valid(recorder, validator)


def test_429_items_are_retried_and_only_they(es: tuple[Any, Scripted], recorder: Any) -> None:
    client, script = es
    s = store(client)
    docs = [doc(), doc(), doc()]
    rejected = docs[1].id

    def first_bulk(method: str, path: str, body: bytes | None) -> tuple[int, Any] | None:
        script.overrides.pop(0)  # answer only the first bulk this way
        lines = [json.loads(x) for x in (body or b"").decode().splitlines() if x.strip()]
        items = []
        for line in lines[::2]:
            meta = line["index"]
            status = 429 if meta["_id"] == rejected else 201
            item: dict[str, Any] = {"_index": "t-images-v1", "_id": meta["_id"], "status": status}
            if status == 429:
                item["error"] = {"type": "es_rejected_execution_exception", "reason": "queue full"}
            else:
                item.update({"result": "created", "_version": 1})
            items.append({"index": item})
        return 200, {"took": 1, "errors": True, "items": items}

    script.overrides.append(("PUT", "_bulk", first_bulk))
    s.upsert(docs)
    bulks = [r for r in recorder.RecordingNode.log if r.path.endswith("_bulk")]
    assert len(bulks) == 2
    retried = [json.loads(x) for x in bulks[1].body.decode().splitlines() if x.strip()][::2]
    assert [line["index"]["_id"] for line in retried] == [rejected]


def test_partial_bulk_failure_names_each_document(es: tuple[Any, Scripted]) -> None:
    client, script = es
    s = store(client)
    bad = doc()

    def failing(method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        lines = [json.loads(x) for x in (body or b"").decode().splitlines() if x.strip()]
        items = [
            {
                "index": {
                    "_index": "t-images-v1",
                    "_id": line["index"]["_id"],
                    "status": 400,
                    "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [width]"},
                }
                if line["index"]["_id"] == bad.id
                else {"_index": "t-images-v1", "_id": line["index"]["_id"], "status": 201, "result": "created"}
            }
            for line in lines[::2]
        ]
        return 200, {"took": 1, "errors": True, "items": items}

    script.overrides.append(("PUT", "_bulk", failing))
    with pytest.raises(StoreError) as info:
        s.upsert([doc(), bad])
    assert bad.id in info.value.message and "failed to parse field [width]" in info.value.message


def test_timeout_and_5xx_and_mapping_conflict(es: tuple[Any, Scripted], recorder: Any) -> None:
    from elastic_transport import ConnectionTimeout

    client, script = es
    s = store(client)

    def timeout(method: str, path: str, body: bytes | None) -> None:
        raise ConnectionTimeout("read timed out after 30s")

    script.overrides.append(("POST", "_count", timeout))
    with pytest.raises(StoreUnavailable, match="timed out"):
        s.count()
    script.overrides.clear()
    script.overrides.append(
        (
            "POST",
            "_search",
            (
                503,
                {
                    "error": {"type": "cluster_block_exception", "reason": "blocked by: [SERVICE_UNAVAILABLE]"},
                    "status": 503,
                },
            ),
        )
    )
    with pytest.raises(StoreError, match="SERVICE_UNAVAILABLE"):
        s.search_text("car", [], 5)
    script.overrides.clear()
    script.overrides.append(("HEAD", "_alias/t2-images", (404, None)))
    script.overrides.append(
        (
            "PUT",
            "t2-images-v1",
            (
                400,
                {
                    "error": {
                        "type": "illegal_argument_exception",
                        "reason": "mapper [width] cannot be changed from type [long] to [text]",
                    },
                    "status": 400,
                },
            ),
        )
    )
    from engine.store.elasticsearch import ElasticsearchStore

    with pytest.raises(StoreError, match="cannot be changed from type"):
        ElasticsearchStore(client, prefix="t2")


def test_refuses_a_cluster_that_is_not_9(es: tuple[Any, Scripted], recorder: Any) -> None:
    client, script = es
    info = recorder.Responder()("GET", "/", None)[1]
    info["version"]["number"] = "8.17.0"
    script.overrides.append(("GET", "", (200, info)))
    with pytest.raises(ConfigError, match=r"8\.17\.0 is not supported: imgsearch needs a 9\.x cluster"):
        store(client)


def test_backend_setting_selects_elasticsearch_and_names_the_root_cause(tmp_path: Any) -> None:
    if importlib.util.find_spec("elasticsearch") is None:
        pytest.skip("the elasticsearch client is not installed (pip install 'elasticsearch>=9,<10')")
    from engine.engine import Engine
    from engine.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        backend="elasticsearch",
        elasticsearch={"url": "http://127.0.0.1:9", "max_retries": 0, "request_timeout_s": 2},
    )
    with pytest.raises(StoreUnavailable, match="cannot reach Elasticsearch") as info:
        Engine.open(settings)
    assert "is the cluster up" in info.value.message


def test_rebuild_index_swaps_the_alias_atomically(es: tuple[Any, Scripted], recorder: Any, validator: Any) -> None:
    client, script = es
    s = store(client)
    recorder.RecordingNode.log.clear()
    script.overrides.append(("GET", "_alias/t-images", (200, {"t-images-v1": {"aliases": {"t-images": {}}}})))
    script.overrides.append(("POST", "_reindex", (200, {"took": 5, "total": 3, "created": 3, "failures": []})))
    assert s.rebuild_index() == "t-images-v2"
    calls = [(r.method, r.path) for r in recorder.RecordingNode.log]
    assert calls == [
        ("GET", "/_alias/t-images"),
        ("PUT", "/t-images-v2"),
        ("POST", "/_reindex"),
        ("POST", "/_aliases"),
        ("DELETE", "/t-images-v1"),
    ]
    swap = recorder.RecordingNode.log[3].json_body()
    assert swap == {
        "actions": [
            {"remove": {"index": "t-images-v1", "alias": "t-images"}},
            {"add": {"index": "t-images-v2", "alias": "t-images"}},
        ]
    }
    assert_valid(recorder, validator)


def test_failed_reindex_keeps_the_old_index(es: tuple[Any, Scripted], recorder: Any) -> None:
    client, script = es
    s = store(client)
    recorder.RecordingNode.log.clear()
    script.overrides.append(("GET", "_alias/t-images", (200, {"t-images-v3": {"aliases": {"t-images": {}}}})))
    failure = {
        "index": "t-images-v4",
        "id": "x",
        "cause": {"type": "mapper_parsing_exception", "reason": "bad"},
        "status": 400,
    }
    script.overrides.append(("POST", "_reindex", (200, {"took": 5, "total": 1, "failures": [failure]})))
    with pytest.raises(StoreError, match="the alias still points at t-images-v3"):
        s.rebuild_index()
    assert not any(r.path == "/_aliases" for r in recorder.RecordingNode.log)


def test_stats_report_cluster_health(es: tuple[Any, Scripted]) -> None:
    client, script = es
    s = store(client)
    script.overrides.append(
        ("GET", "_cluster/health", (200, {"cluster_name": "prod", "status": "yellow", "number_of_nodes": 1}))
    )
    stats = s.stats()
    assert (stats["backend"], stats["health"], stats["cluster"]) == ("elasticsearch", "yellow", "prod")
