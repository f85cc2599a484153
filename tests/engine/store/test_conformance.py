"""One behaviour suite for every DocumentStore backend.

Elasticsearch runs against the in-memory `es_fake.FakeCluster` through the es-spec `RecordingNode` (no
sockets); after each of its tests every request the store sent is validated against the 9.5 API spec.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.documents import ColourShare, Document, Label
from engine.filters import parse_filters
from engine.store import Click, DocumentStore, Impression
from engine.store.sqlite import SqliteStore
from tests.conftest import ES_SCHEMA, es_spec
from tests.engine.store.es_fake import FakeCluster


def elasticsearch_store(tmp: Path) -> DocumentStore:
    """An `ElasticsearchStore` on a fresh fake cluster, with a fresh `RecordingNode.log`."""
    recorder = es_spec("recorder")
    from elasticsearch import Elasticsearch

    from engine.store.elasticsearch import ElasticsearchStore

    recorder.RecordingNode.log = []
    recorder.RecordingNode.responder = FakeCluster(recorder.RecordingNode.log, strict_mappings=True)
    client = Elasticsearch("http://es.invalid:9200", node_class=recorder.RecordingNode)
    return ElasticsearchStore(client, prefix="t", text_weights={}, colour_min_share=0.05)


def live_elasticsearch_store(tmp: Path) -> DocumentStore:
    """An `ElasticsearchStore` on a real cluster (IMGSEARCH_TEST_ES_URL), in indices of its own."""
    url = os.environ.get("IMGSEARCH_TEST_ES_URL")
    if not url:
        pytest.skip("IMGSEARCH_TEST_ES_URL is not set: no live Elasticsearch cluster to run the suite against")
    from engine.settings import ElasticsearchSettings
    from engine.store.elasticsearch import ElasticsearchStore, connect

    client = connect(ElasticsearchSettings(url=url))
    prefix = f"imgsearch-test-{secrets.token_hex(4)}"
    store = ElasticsearchStore(client, prefix=prefix, text_weights={}, colour_min_share=0.05)
    close = store.close

    def close_and_drop() -> None:  # leave the cluster as we found it
        client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        close()

    store.close = close_and_drop  # type: ignore[method-assign]
    return store


BACKENDS: dict[str, Callable[[Path], DocumentStore]] = {
    "sqlite": lambda tmp: SqliteStore(tmp / "s.sqlite3", text_weights={}, colour_min_share=0.05),
    "elasticsearch": elasticsearch_store,
    "elasticsearch-live": live_elasticsearch_store,
}


@pytest.fixture(scope="session")
def es_validator() -> Any:
    """The Elasticsearch 9.5 request validator, loaded once (a couple of seconds)."""
    return es_spec("validate").SpecValidator.load(ES_SCHEMA)


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    validator = request.getfixturevalue("es_validator") if request.param == "elasticsearch" else None
    s = BACKENDS[request.param](tmp_path)
    yield s
    s.close()
    if validator is not None:  # every request the Elasticsearch store sent meets the 9.5 API spec
        recorder = es_spec("recorder")
        problems = recorder.validate_log(validator, recorder.RecordingNode.log)
        assert problems == [], problems


def doc(caption: str = "", **kw: object) -> Document:
    base: dict[str, object] = dict(
        id=secrets.token_hex(16),
        path=f"/img/{secrets.token_hex(4)}.jpg",
        width=100,
        height=50,
        format="jpeg",
        bytes=1000,
        orientation="landscape",
        caption=caption,
    )
    base.update(kw)
    return Document(**base)  # type: ignore[arg-type]


def corpus() -> list[Document]:
    return [
        doc(
            "a red car on a street",
            colours=[ColourShare("red", 0.6), ColourShare("grey", 0.4)],
            labels=[Label("car", 1, 0.9), Label("person", 2, 0.8)],
            width=800,
            licence="CC-BY",
            taken_at=datetime(2020, 5, 1),
            vectors={"colour": np.eye(4, dtype=np.float32)[0]},
        ),
        doc(
            "a blue boat on the sea",
            colours=[ColourShare("blue", 0.9), ColourShare("red", 0.02)],
            labels=[Label("boat", 1, 0.7)],
            width=300,
            orientation="portrait",
            tags=["sea", "Holiday"],
            taken_at=datetime(2022, 1, 1),
            vectors={"colour": np.eye(4, dtype=np.float32)[1]},
        ),
        doc(
            "three people and a dog",
            colours=[ColourShare("green", 0.5), ColourShare("red", 0.2)],
            labels=[Label("person", 3, 0.95), Label("dog", 1, 0.6)],
            ocr_text="HELLO WORLD",
            format="png",
        ),
        doc("an empty grey room", colours=[ColourShare("grey", 1.0)], licence="cc-by"),
    ]


def test_upsert_get_count_delete(store: DocumentStore) -> None:
    docs = corpus()
    store.upsert(docs)
    assert store.count() == 4
    got = store.get([docs[0].id, "0" * 32])
    assert set(got) == {docs[0].id}
    d = got[docs[0].id]
    assert d.caption == docs[0].caption and d.width == 800 and d.taken_at == datetime(2020, 5, 1)
    assert [(lb.name, lb.count) for lb in d.labels] == [("car", 1), ("person", 2)]
    assert d.colours[0] == ColourShare("red", 0.6)
    assert np.allclose(d.vectors["colour"], [1, 0, 0, 0])
    assert d.ingested_at is not None  # stamped on write, so browsing can go newest first
    assert store.existing([docs[1].id, "f" * 32]) == {docs[1].id}
    assert store.ids_for_path(docs[2].path or "") == [docs[2].id]
    assert store.delete([docs[0].id, "0" * 32]) == 1
    assert store.count() == 3
    assert store.search_text("car", [], 10) == []
    assert store.vector_ids("colour") == [docs[1].id]


def test_upsert_replaces_same_id(store: DocumentStore) -> None:
    d = corpus()[0]
    store.upsert([d])
    d.caption = "now a yellow bicycle"
    d.labels = []
    store.upsert([d])
    assert store.count() == 1
    assert store.search_text("car", [], 5) == []
    assert [h.id for h in store.search_text("bicycle", [], 5)] == [d.id]
    assert store.facets([], ["label"]) == {"label": {}}


def test_text_search_filters_and_order(store: DocumentStore) -> None:
    docs = corpus()
    store.upsert(docs)
    assert store.search_text("red car", [], 10)[0].id == docs[0].id
    assert [h.id for h in store.search_text("people", [], 10)] == [docs[2].id]  # stemmed: people/person labels
    assert [h.id for h in store.search_text("dogs", [], 10)] == [docs[2].id]
    assert [h.id for h in store.search_text("hello", [], 10)] == [docs[2].id]  # OCR text is searchable
    assert [h.id for h in store.search_text("holiday", [], 10)] == [docs[1].id]  # tags
    assert store.search_text("red", parse_filters(["orientation=portrait"]), 10) == []
    assert store.count_text("red", []) == 2  # the boat's 2% red is under colour_min_share
    assert store.search_text("", [], 10) == [] and store.count_text("!!!", []) == 0


@pytest.mark.parametrize(
    ("exprs", "expected"),
    [
        (["colour=red"], {0, 2}),
        (["colour=red,blue"], {0, 1, 2}),
        (["colour!=red"], {1, 3}),
        (["label=person"], {0, 2}),
        (["label=person", "label=dog"], {2}),
        (["label_count.person>=2"], {0, 2}),
        (["label_count.person>2"], {2}),
        (["label_count.person<2"], {1, 3}),
        (["label_count.person<=2"], {0, 1, 3}),
        (["colour_share.red>=0.5"], {0}),
        (["width>=300", "width<800"], {1}),
        (["date>=2021-01-01"], {1}),
        (["date<2021-01-01"], {0}),
        (["has_text=true"], {2}),
        (["has_text=false"], {0, 1, 3}),
        (["licence=cc-by"], {0, 3}),
        (["tag=holiday"], {1}),
        (["format=png"], {2}),
        (["orientation=portrait"], {1}),
        ([], {0, 1, 2, 3}),
    ],
)
def test_filters(store: DocumentStore, exprs: list[str], expected: set[int]) -> None:
    docs = corpus()
    store.upsert(docs)
    filters = parse_filters(exprs)
    want = {docs[i].id for i in expected}
    assert set(store.filter_ids(filters)) == want
    assert store.count(filters) == len(want)
    assert set(store.browse(filters, 10)) == want


def test_facets_equal_direct_counts(store: DocumentStore) -> None:
    docs = corpus()
    store.upsert(docs)
    facets = store.facets([], ["colour", "label", "format", "licence", "orientation", "tag", "has_text"])
    assert facets["colour"] == {"grey": 2, "red": 2, "blue": 1, "green": 1}
    assert facets["label"] == {"person": 2, "boat": 1, "car": 1, "dog": 1}
    assert facets["format"] == {"jpeg": 3, "png": 1}
    assert facets["licence"] == {"cc-by": 2}
    assert facets["has_text"] == {"false": 3, "true": 1}
    narrowed = store.facets(parse_filters(["label=person"]), ["colour"])
    assert narrowed["colour"] == {"red": 2, "grey": 1, "green": 1}
    with_text = store.facets([], ["label"], text="car")
    assert with_text["label"] == {"car": 1, "person": 1}


def test_browse_pages(store: DocumentStore) -> None:
    store.upsert(corpus())
    first, second = store.browse([], 2, 0), store.browse([], 2, 2)
    assert len(first) == 2 and len(second) == 2 and not set(first) & set(second)


def test_vectors_round_trip(store: DocumentStore) -> None:
    docs = corpus()
    store.upsert(docs)
    assert store.vector_fields() == {"colour": 4}
    batches = list(store.iter_vectors("colour", batch_size=1))
    assert len(batches) == 2 and all(v.shape == (1, 4) for _, v in batches)
    got = store.get_vectors("colour", [docs[1].id, docs[2].id])
    assert list(got) == [docs[1].id] and np.allclose(got[docs[1].id], [0, 1, 0, 0])


def test_generation_counts_writes(store: DocumentStore) -> None:
    g0 = store.generation()
    docs = corpus()
    store.upsert(docs)
    store.delete([docs[0].id])
    assert store.generation() == g0 + 2


def test_impressions_and_clicks(store: DocumentStore) -> None:
    imp = Impression("q1", datetime(2026, 1, 1), {"text": "red"}, [{"id": "a", "position": 1, "signals": {}}])
    store.record_impression(imp)
    assert store.get_impression("q1") == imp
    assert store.get_impression("nope") is None
    store.record_click(Click("q1", "a", 1, datetime(2026, 1, 1, 0, 0, 5)))
    assert store.clicks() == [Click("q1", "a", 1, datetime(2026, 1, 1, 0, 0, 5))]
    assert [i.query_id for i in store.impressions()] == ["q1"]
