"""Search end to end on real images: text, colour, filtered, similar-image; filters hold on every leg;
facets equal direct counts; signals and impressions are recorded."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from engine.documents import Document, content_id
from engine.engine import Engine
from engine.errors import InvalidQuery, NotFound
from engine.filters import BoolFilter, Filter, RangeFilter, TermFilter, parse_facets, parse_filters
from engine.ingest import ingest_paths
from engine.manifest import Manifest
from engine.search import SearchRequest, run_search
from engine.settings import Settings
from tests.conftest import DATA, ES_SCHEMA, es_spec, image_bytes, noise_image

COLOURS = {"red": (220, 30, 30), "blue": (30, 70, 210), "green": (40, 170, 60), "yellow": (245, 225, 40)}


@pytest.fixture(scope="module", params=["cheap", "clip-missing", "elasticsearch"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Path]]:
    """The corpus, indexed twice: with the cheap enrichers, and with CLIP configured but its weights
    missing (degraded mode must pass the whole suite)."""
    if not DATA.exists():
        pytest.skip(f"shared data {DATA} is absent (set IMGSEARCH_TEST_SHARED to the shared/ folder)")
    tmp = tmp_path_factory.mktemp("search")
    shapes = tmp / "shapes"
    shapes.mkdir()
    for name, rgb in COLOURS.items():
        for orient, size in (("wide", (120, 60)), ("tall", (60, 120))):
            (shapes / f"{name}_{orient}.png").write_bytes(image_bytes(rgb, size))
    # a near-duplicate pair: a photo and a resized, recompressed copy of it
    bus = Image.open(DATA / "samples" / "bus.jpg").convert("RGB")
    out = io.BytesIO()
    bus.resize((405, 540)).save(out, format="JPEG", quality=60)
    (shapes / "bus_copy.jpg").write_bytes(out.getvalue())
    with open(DATA / "flickr8k-1k" / "captions.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    images = sorted({r["image"] for r in rows})[:150]
    manifest = tmp / "captions.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "caption"])
        for r in rows:
            if r["image"] in images:
                writer.writerow([str(DATA / "flickr8k-1k" / "images" / r["image"]), r["caption"]])
    imagenette = [
        p for wnid in ("n03888257", "n03417042") for p in sorted((DATA / "imagenette-val" / wnid).glob("*"))[:25]
    ]
    settings = Settings(data_dir=tmp / "data")
    if request.param == "clip-missing":
        settings = Settings(
            data_dir=tmp / "data",
            enrichers=["colour", "phash", "clip"],
            clip={"model": str(tmp / "no-clip-weights"), "local_files_only": True},
            device="cpu",
        )
    engine = _elasticsearch_engine(settings) if request.param == "elasticsearch" else Engine.open(settings)
    inputs = [shapes, DATA / "samples", *imagenette, *(DATA / "flickr8k-1k" / "images" / i for i in images)]
    report = ingest_paths(engine, inputs, manifest=Manifest.load(manifest))
    assert not report.failed
    if request.param == "clip-missing":
        assert "clip" in engine.unavailable and "clip" not in engine.indexes
    yield engine, tmp
    engine.close()
    if request.param == "elasticsearch":  # every request of the whole module met the ES 9.5 API spec
        recorder = es_spec("recorder")
        validator = es_spec("validate").SpecValidator.load(ES_SCHEMA)
        problems = recorder.validate_log(validator, recorder.RecordingNode.log)
        assert problems == [], problems[:5]


def _elasticsearch_engine(settings: Settings) -> Engine:
    """The engine on the Elasticsearch backend, over the in-memory fake cluster (requests validated)."""
    from tests.engine.store.es_fake import FakeCluster

    recorder = es_spec("recorder")
    from elasticsearch import Elasticsearch

    from engine.store.elasticsearch import ElasticsearchStore
    from enrichers import create

    recorder.RecordingNode.log = []
    recorder.RecordingNode.responder = FakeCluster(recorder.RecordingNode.log, strict_mappings=True)
    client = Elasticsearch("http://es.invalid:9200", node_class=recorder.RecordingNode)
    store = ElasticsearchStore(
        client,
        prefix="search",
        text_weights=settings.text_weights.model_dump(),
        colour_min_share=settings.search.colour_min_share,
    )
    engine = Engine(settings, store, [create("colour"), create("phash")])
    engine.reconcile()
    return engine


def exact_bm25(engine: Engine) -> bool:
    """SQLite's FTS5 ranking is asserted rank by rank; Elasticsearch scores fields separately
    (multi_match most_fields), so on it a ranking assertion asks for the hit near the top instead."""
    from engine.store.sqlite import SqliteStore

    return isinstance(engine.store, SqliteStore)


def passes(doc: Document, f: Filter, min_share: float) -> bool:
    """A direct Python evaluation of one filter on a document (the reference for the store)."""
    if isinstance(f, TermFilter):
        values = {
            "colour": {c.name for c in doc.colours if c.share >= min_share},
            "label": {lb.name for lb in doc.labels},
            "format": {doc.format},
            "licence": {doc.licence.lower()},
            "orientation": {doc.orientation},
            "tag": {t.lower() for t in doc.tags},
            "source": {doc.source.lower()},
        }[f.field]
        return bool(values & set(f.values)) != f.negate
    if isinstance(f, RangeFilter):
        if f.key is not None:
            table = (
                {lb.name: float(lb.count) for lb in doc.labels}
                if f.field == "label_count"
                else {c.name: c.share for c in doc.colours}
            )
            value: object = table.get(f.key, 0.0)
        else:
            value = {
                "width": doc.width,
                "height": doc.height,
                "bytes": doc.bytes,
                "date": doc.taken_at.isoformat() if doc.taken_at else None,
            }[f.field]
        if value is None:
            return False
        ops = {
            "gte": lambda a, b: a >= b,
            "gt": lambda a, b: a > b,
            "lte": lambda a, b: a <= b,
            "lt": lambda a, b: a < b,
        }
        return bool(ops[f.op](value, f.value))
    assert isinstance(f, BoolFilter)
    return doc.has_text == f.value


def all_docs(engine: Engine) -> list[Document]:
    return list(engine.store.get(engine.store.filter_ids([])).values())


def test_text_query_finds_caption_and_file_name(corpus: tuple[Engine, Path]) -> None:
    engine, _ = corpus
    first = run_search(engine, SearchRequest(text="bus"))
    top = 1 if exact_bm25(engine) else 5
    assert {"bus.jpg", "bus_copy.jpg"} & {Path(h.document.path or "").name for h in first.hits[:top]}
    dogs = run_search(engine, SearchRequest(text="dog running", k=10))
    assert dogs.total > 10
    assert all("dog" in h.document.caption.lower() for h in dogs.hits[:5])
    hit = dogs.hits[0]
    assert set(hit.signals) == {"bm25", "rank.text", "fused"} and hit.signals["rank.text"] == 1
    assert hit.score == hit.signals["fused"] > 0


def test_colour_query_and_filter(corpus: tuple[Engine, Path]) -> None:
    engine, _ = corpus
    red = run_search(engine, SearchRequest(text="red", k=2 if exact_bm25(engine) else 5))
    assert {"red_wide.png", "red_tall.png"} <= {Path(h.document.path or "").name for h in red.hits}
    blue_wide = run_search(
        engine, SearchRequest(filters=parse_filters(["colour=blue", "orientation=landscape"]), k=100)
    )
    names = {Path(h.document.path or "").name for h in blue_wide.hits}
    assert "blue_wide.png" in names and "blue_tall.png" not in names
    assert blue_wide.total == len(blue_wide.hits)


def test_similar_image_finds_near_duplicate_and_class_mates(corpus: tuple[Engine, Path]) -> None:
    engine, _ = corpus
    bus_id = content_id((DATA / "samples" / "bus.jpg").read_bytes())
    similar = run_search(engine, SearchRequest(like=bus_id, k=5))
    assert bus_id not in [h.id for h in similar.hits]  # "more like this" leaves the query out
    top = similar.hits[0]
    assert Path(top.document.path or "").name == "bus_copy.jpg"
    assert top.signals["hamming.phash"] <= 6 and top.signals["rank.phash"] == 1
    assert top.signals["cosine.colour"] > 0.9
    # near-duplicates are pinned first, flagged, and scores stay in rank order
    assert top.signals["near_duplicate"] == 1
    pin = engine.settings.search.pin_max_distance
    assert all((h.signals.get("hamming.phash", 99) <= pin) == ("near_duplicate" in h.signals) for h in similar.hits)
    assert [h.score for h in similar.hits] == sorted((h.score for h in similar.hits), reverse=True)
    upload = run_search(engine, SearchRequest(image=(DATA / "samples" / "bus.jpg").read_bytes(), k=3))
    assert upload.hits[0].id == bus_id and upload.hits[0].signals["hamming.phash"] == 0
    red = run_search(engine, SearchRequest(image=image_bytes(COLOURS["red"], (90, 90)), k=2))
    assert {Path(h.document.path or "").name for h in red.hits} == {"red_wide.png", "red_tall.png"}


FILTER_CASES = [
    ["colour=blue"],
    ["colour=red,green"],
    ["colour!=grey"],
    ["orientation=portrait"],
    ["format=png"],
    ["width>=300"],
    ["height<200", "colour=white"],
    ["colour_share.blue>=0.3"],
    ["bytes>50000"],
    ["has_text=false"],
    ["source!=x", "width<=500"],
]


@pytest.mark.parametrize("exprs", FILTER_CASES, ids=[",".join(c) for c in FILTER_CASES])
def test_filters_hold_on_every_leg(corpus: tuple[Engine, Path], exprs: list[str]) -> None:
    engine, _ = corpus
    filters = parse_filters(exprs)
    min_share = engine.settings.search.colour_min_share
    docs = all_docs(engine)
    expected = {d.id for d in docs if all(passes(d, f, min_share) for f in filters)}
    bus = (DATA / "samples" / "bus.jpg").read_bytes()
    for request in (
        SearchRequest(filters=filters, k=1000),
        SearchRequest(text="a dog in the grass blue red", filters=filters, k=1000),
        SearchRequest(image=bus, filters=filters, k=1000),
        SearchRequest(text="man", image=image_bytes(noise_image(3)), filters=filters, k=1000),
    ):
        response = run_search(engine, request)
        got = {h.id for h in response.hits}
        assert got <= expected, f"filter violated by {got - expected}"
        if request.image is not None and not request.text:
            assert got == expected  # vector legs rank every allowed image
    browse = run_search(engine, SearchRequest(filters=filters, k=1000))
    assert {h.id for h in browse.hits} == expected and browse.total == len(expected)


@pytest.mark.parametrize("exprs", [[], ["colour=blue"], ["orientation=landscape", "width>=200"]])
def test_facet_counts_equal_direct_counts(corpus: tuple[Engine, Path], exprs: list[str]) -> None:
    engine, _ = corpus
    filters = parse_filters(exprs)
    min_share = engine.settings.search.colour_min_share
    docs = [d for d in all_docs(engine) if all(passes(d, f, min_share) for f in filters)]
    response = run_search(
        engine, SearchRequest(filters=filters, facets=parse_facets(["colour", "orientation", "format", "has_text"]))
    )
    colour: dict[str, int] = {}
    for d in docs:
        for c in d.colours:
            if c.share >= min_share:
                colour[c.name] = colour.get(c.name, 0) + 1
    assert response.facets["colour"] == colour
    assert response.facets["orientation"] == _count(d.orientation for d in docs)
    assert response.facets["format"] == _count(d.format for d in docs)
    assert response.facets["has_text"] == _count("true" if d.has_text else "false" for d in docs)
    text = run_search(engine, SearchRequest(text="dog", filters=filters, facets=["orientation"]))
    matching = {h.id for h in run_search(engine, SearchRequest(text="dog", filters=filters, k=1000)).hits}
    assert sum(text.facets["orientation"].values()) == len(matching) == text.total


def _count(values: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:  # type: ignore[attr-defined]
        out[v] = out.get(v, 0) + 1
    return out


def test_pagination_is_stable(corpus: tuple[Engine, Path]) -> None:
    engine, _ = corpus
    for request in (SearchRequest(text="man woman"), SearchRequest(like=all_docs(engine)[0].id), SearchRequest()):
        request.k = 20
        whole = [h.id for h in run_search(engine, request).hits]
        pages: list[str] = []
        for offset in (0, 7, 14):
            request.k, request.offset = 7, offset
            pages += [h.id for h in run_search(engine, request).hits]
        assert pages[:20] == whole


def test_every_search_records_an_impression(corpus: tuple[Engine, Path]) -> None:
    engine, _ = corpus
    response = run_search(engine, SearchRequest(text="dog", filters=parse_filters(["colour=green"]), k=3, offset=2))
    impression = engine.store.get_impression(response.query_id)
    assert impression is not None
    assert impression.request["text"] == "dog" and impression.request["offset"] == 2
    assert impression.request["filters"] == [{"field": "colour", "values": ["green"], "negate": False}]
    assert [s["id"] for s in impression.shown] == [h.id for h in response.hits]
    assert [s["position"] for s in impression.shown] == [3, 4, 5][: len(response.hits)]
    assert impression.shown[0]["signals"] == response.hits[0].signals


def test_bad_requests(corpus: tuple[Engine, Path]) -> None:
    engine, _ = corpus
    with pytest.raises(InvalidQuery, match="k must be between 1 and 1000"):
        run_search(engine, SearchRequest(text="x", k=0))
    with pytest.raises(InvalidQuery, match="offset"):
        run_search(engine, SearchRequest(text="x", offset=-1))
    with pytest.raises(InvalidQuery, match="not both"):
        run_search(engine, SearchRequest(image=b"x", like="y"))
    with pytest.raises(NotFound, match="no image with id"):
        run_search(engine, SearchRequest(like="0" * 32))
    assert run_search(engine, SearchRequest(text="zzzqqqxxx")).total == 0
    assert run_search(engine, SearchRequest(text="!!! ???")).hits == []
