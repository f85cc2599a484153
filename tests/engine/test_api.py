"""HTTP API tests: every route through Starlette's TestClient (lifespan included), on generated images.

The corpus is built in the test (solid colours and smooth noise), so no shared data is needed. Error
paths are one parametrised table (`ERRORS`): adding a route or an error is one line there.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.routing import Route

from engine import __version__
from engine.api import create_app
from engine.documents import content_id
from engine.engine import Engine
from engine.openapi import openapi_spec
from engine.settings import Settings
from tests.conftest import image_bytes, noise_image

with warnings.catch_warnings():
    # Starlette 1.x warns at import when the test client runs on `httpx` rather than `httpx2`; the
    # project's test extra installs httpx, so this one import-time notice is expected.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`", category=UserWarning)
    from starlette.testclient import TestClient

# (name, rgb, size, format): three red, two blue, one green solid; orientation and format vary on purpose.
SOLIDS: list[tuple[str, tuple[int, int, int], tuple[int, int], str]] = [
    ("red-1", (255, 0, 0), (64, 48), "PNG"),
    ("red-2", (220, 10, 10), (80, 60), "PNG"),
    ("red-3", (255, 0, 0), (40, 60), "PNG"),
    ("blue-1", (0, 0, 255), (64, 48), "PNG"),
    ("blue-2", (10, 10, 200), (50, 50), "PNG"),
    ("green-1", (0, 200, 0), (64, 48), "JPEG"),
]
# Smooth noise with no red share >= 5% (so `colour=red` and the text `red` select exactly the red solids).
NOISE_SEEDS = (1, 3, 4, 5)
JPEG_MAGIC = b"\xff\xd8"
ERROR_SCHEMA = openapi_spec()["components"]["schemas"]["Error"]
SEARCH_SCHEMA = openapi_spec()["components"]["schemas"]["SearchResponse"]


@dataclass
class Corpus:
    data: dict[str, bytes]  # name -> file bytes
    ids: dict[str, str]  # name -> document id

    def named(self, prefix: str) -> set[str]:
        return {doc_id for name, doc_id in self.ids.items() if name.startswith(prefix)}

    @property
    def all_ids(self) -> set[str]:
        return set(self.ids.values())


def corpus_files() -> dict[str, bytes]:
    files = {name: image_bytes(rgb, size=size, fmt=fmt) for name, rgb, size, fmt in SOLIDS}
    files.update({f"noise-{seed}": image_bytes(noise_image(seed)) for seed in NOISE_SEEDS})
    return files


def multipart(files: dict[str, bytes], field: str = "file") -> list[tuple[str, tuple[str, bytes, str]]]:
    def suffix(data: bytes) -> str:
        return "jpg" if data.startswith(JPEG_MAGIC) else "png"

    return [(field, (f"{name}.{suffix(data)}", data, "application/octet-stream")) for name, data in files.items()]


def assert_error(response: Any, status: int, kind: str, *needles: str) -> dict[str, Any]:
    """The one error shape, with the right status, type and a message naming the problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    jsonschema.validate(body, ERROR_SCHEMA)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "status"}
    assert body["error"]["status"] == status
    assert body["error"]["type"] == kind
    for needle in needles:
        assert needle in body["error"]["message"], body["error"]["message"]
    return body


def search_ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    jsonschema.validate(body, SEARCH_SCHEMA)
    return body


def hit_ids(body: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in body["hits"]]


def n_documents(client: TestClient) -> int:
    return int(client.get("/stats").json()["store"]["documents"])


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


@pytest.fixture
def corpus(client: TestClient) -> Corpus:
    files = corpus_files()
    response = client.post("/images", files=multipart(files))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["added"] == len(files) and body["failed"] == []
    ids = dict(zip(files, body["ids"], strict=True))
    assert ids == {name: content_id(data) for name, data in files.items()}
    return Corpus(data=files, ids=ids)


# -- uploads ---------------------------------------------------------------------------------------------


def test_upload_several_files_returns_201_and_content_ids(client: TestClient, settings: Settings) -> None:
    files = {"a": image_bytes((255, 0, 0)), "b": image_bytes(noise_image(7)), "c": image_bytes((0, 0, 255))}
    response = client.post("/images", files=multipart(files))
    assert response.status_code == 201
    body = response.json()
    assert body["ids"] == [content_id(files[k]) for k in ("a", "b", "c")]
    assert (body["seen"], body["added"], body["replaced"], body["unchanged"]) == (3, 3, 0, 0)
    assert body["failed"] == []
    assert n_documents(client) == 3
    # The originals are kept (thumbnails need them), named by content id.
    kept = sorted(p.name for p in settings.upload_dir.iterdir())
    assert kept == sorted(f"{content_id(d)}.png" for d in files.values())


def test_reupload_of_same_bytes_is_200_unchanged(client: TestClient, corpus: Corpus) -> None:
    response = client.post("/images", files=multipart({"again": corpus.data["red-1"]}))
    assert response.status_code == 200
    body = response.json()
    assert body["ids"] == [corpus.ids["red-1"]]
    assert (body["added"], body["unchanged"], body["failed"]) == (0, 1, [])
    assert n_documents(client) == len(corpus.ids)


def test_batch_with_one_bad_file_indexes_the_good_one(client: TestClient, settings: Settings) -> None:
    good = image_bytes(noise_image(11))
    files = [("file", ("notes.jpg", b"this is a text file, not a JPEG\n", "image/jpeg")),
             ("file", ("good.png", good, "image/png"))]
    response = client.post("/images", files=files)
    assert response.status_code == 201
    body = response.json()
    assert body["ids"] == [content_id(good)]
    assert (body["seen"], body["added"]) == (2, 1)
    assert len(body["failed"]) == 1
    assert body["failed"][0]["file"] == "notes.jpg"
    assert "not a recognised image format" in body["failed"][0]["reason"]
    assert client.get(f"/images/{content_id(good)}").status_code == 200
    assert n_documents(client) == 1
    # The bad upload's bytes are not kept.
    assert [p.name for p in settings.upload_dir.iterdir()] == [f"{content_id(good)}.png"]


def test_text_file_named_jpg_is_refused_and_nothing_is_kept(client: TestClient, settings: Settings) -> None:
    response = client.post("/images", files=[("file", ("holiday.jpg", b"hello, world\n" * 10, "image/jpeg"))])
    assert_error(response, 400, "invalid_image", "holiday.jpg", "not a recognised image format")
    assert n_documents(client) == 0
    assert list(settings.upload_dir.iterdir()) == []


def test_lifespan_opens_and_closes_its_own_engine(settings: Settings) -> None:
    data = image_bytes(noise_image(21))
    with TestClient(create_app(settings)) as own:
        assert own.post("/images", files=multipart({"n": data})).status_code == 201
        assert own.get("/health").json()["documents"] == 1
    # Closed by the lifespan: a fresh engine on the same data dir sees the document and its vector.
    with Engine.open(settings) as reopened:
        assert reopened.get(content_id(data)).width == 96
        assert reopened.stats()["vectors"]["colour"]["count"] == 1


# -- search ----------------------------------------------------------------------------------------------


def test_get_search_text_with_filter_and_facets(client: TestClient, corpus: Corpus) -> None:
    body = search_ok(client.get("/search", params=[("q", "red"), ("filter", "colour=red"), ("facet", "colour"),
                                                   ("facet", "orientation"), ("facet", "format")]))
    assert set(hit_ids(body)) == corpus.named("red-")
    assert body["total"] == 3 and body["total_relation"] == "eq"
    assert body["facets"] == {"colour": {"red": 3}, "orientation": {"landscape": 2, "portrait": 1},
                              "format": {"png": 3}}
    assert body["legs"] == {"text": 3}
    assert len(body["query_id"]) == 32
    scores = [hit["score"] for hit in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    for rank, hit in enumerate(body["hits"], start=1):
        assert set(hit["signals"]) == {"bm25", "rank.text", "fused"}
        assert hit["signals"]["rank.text"] == rank
        assert hit["signals"]["bm25"] > 0
        assert hit["signals"]["fused"] == pytest.approx(hit["score"])
        assert hit["colours"] == [{"name": "red", "share": 1.0}]
        assert hit["path"].endswith(f"{hit['id']}.png")


def test_get_search_facets_without_query_count_the_whole_corpus(client: TestClient, corpus: Corpus) -> None:
    body = search_ok(client.get("/search", params={"facet": "format,orientation", "k": "100"}))
    assert body["total"] == len(corpus.ids)
    assert set(hit_ids(body)) == corpus.all_ids
    assert body["facets"]["format"] == {"png": 9, "jpeg": 1}
    assert body["facets"]["orientation"] == {"landscape": 8, "portrait": 1, "square": 1}
    assert body["legs"] == {}
    assert all(hit["signals"] == {} for hit in body["hits"])


@pytest.mark.parametrize(("filters", "expected"), [
    (["colour=red"], "red-"),
    (["orientation=portrait,square"], {"red-3", "blue-2"}),
    (["colour=red", "width>=60"], {"red-1", "red-2"}),
    (["orientation=portrait"], {"red-3"}),
    (["format=jpeg"], {"green-1"}),
    (["color=blue", "orientation!=landscape"], {"blue-2"}),
    (["has_text=true"], set()),
])
def test_get_search_filters_are_applied(client: TestClient, corpus: Corpus, filters: list[str],
                                        expected: str | set[str]) -> None:
    want = corpus.named(expected) if isinstance(expected, str) else {corpus.ids[name] for name in expected}
    body = search_ok(client.get("/search", params=[("filter", f) for f in filters] + [("k", "100")]))
    assert set(hit_ids(body)) == want
    assert body["total"] == len(want)


def test_post_search_json_with_filter_list(client: TestClient, corpus: Corpus) -> None:
    body = search_ok(client.post("/search", json={
        "q": "red", "filters": ["colour=red", "orientation=landscape"], "facets": ["orientation"], "k": 5,
    }))
    assert set(hit_ids(body)) == {corpus.ids["red-1"], corpus.ids["red-2"]}
    assert body["facets"] == {"orientation": {"landscape": 2}}


@pytest.mark.parametrize(("filters", "expected"), [
    ({"colour": ["red"], "width": {"gte": 60}}, {"red-1", "red-2"}),
    ({"colour": "blue", "orientation": "square"}, {"blue-2"}),
    ({"height": {"gt": 48, "lte": 60}, "format": ["png"]}, {"red-2", "red-3", "blue-2"}),
    ({"colour_share.blue": {"gte": 0.9}}, {"blue-1", "blue-2"}),
    ({"has_text": False, "colour": ["green"], "format": "jpeg"}, {"green-1"}),
])
def test_post_search_json_with_filter_mapping(client: TestClient, corpus: Corpus, filters: dict[str, Any],
                                              expected: set[str]) -> None:
    body = search_ok(client.post("/search", json={"filters": filters, "k": 100}))
    assert set(hit_ids(body)) == {corpus.ids[name] for name in expected}


def test_post_search_multipart_image_is_reverse_search(client: TestClient, corpus: Corpus) -> None:
    query = corpus.data["noise-3"]
    response = client.post("/search", files={"image": ("query.png", query, "image/png")},
                           data={"k": "5", "facet": "format"})
    body = search_ok(response)
    first = body["hits"][0]
    assert first["id"] == corpus.ids["noise-3"]
    assert first["signals"]["cosine.colour"] == pytest.approx(1.0, abs=1e-3)
    assert first["signals"]["hamming.phash"] == 0
    assert first["signals"]["rank.colour"] == 1 and first["signals"]["rank.phash"] == 1
    assert len(body["hits"]) == 5
    assert body["total"] == len(corpus.ids)
    assert set(body["legs"]) == {"colour", "phash"}
    assert body["facets"] == {"format": {"png": 9, "jpeg": 1}}


def test_post_search_multipart_image_with_filter(client: TestClient, corpus: Corpus) -> None:
    body = search_ok(client.post("/search", files={"image": ("q.png", corpus.data["noise-3"], "image/png")},
                                 data={"filter": "colour=red", "k": "50"}))
    assert set(hit_ids(body)) == corpus.named("red-")


def test_post_search_image_base64_matches_multipart(client: TestClient, corpus: Corpus) -> None:
    encoded = base64.b64encode(corpus.data["noise-4"]).decode()
    body = search_ok(client.post("/search", json={"image_base64": encoded, "k": 3}))
    assert body["hits"][0]["id"] == corpus.ids["noise-4"]
    assert body["hits"][0]["signals"]["hamming.phash"] == 0


def test_like_excludes_the_image_itself(client: TestClient, corpus: Corpus) -> None:
    like = corpus.ids["noise-1"]
    body = search_ok(client.get("/search", params={"like": like, "k": "100"}))
    assert like not in hit_ids(body)
    assert set(hit_ids(body)) == corpus.all_ids - {like}
    assert body["total"] == len(corpus.ids) - 1
    assert all("cosine.colour" in hit["signals"] for hit in body["hits"])
    # The same through POST JSON.
    assert hit_ids(search_ok(client.post("/search", json={"like": like, "k": 100}))) == hit_ids(body)


@pytest.mark.parametrize("query", [{}, {"q": "red blue green"}, {"like": "noise-1"}, {"image": "noise-5"}],
                         ids=["browse", "text", "like", "image"])
def test_pages_do_not_overlap_and_concatenate(client: TestClient, corpus: Corpus, query: dict[str, str]) -> None:
    k = 3

    def page(offset: int, size: int) -> list[str]:
        data: dict[str, str] = {"k": str(size), "offset": str(offset)}
        if "image" in query:
            response = client.post("/search", data=data,
                                   files={"image": ("q.png", corpus.data[query["image"]], "image/png")})
        else:
            params = {**data, **({"like": corpus.ids[query["like"]]} if "like" in query else query)}
            response = client.get("/search", params=params)
        return hit_ids(search_ok(response))

    whole = page(0, 2 * k)
    first, second = page(0, k), page(k, k)
    assert len(whole) == 2 * k
    assert first + second == whole
    assert not set(first) & set(second)


# -- images ----------------------------------------------------------------------------------------------


def test_get_image_document(client: TestClient, corpus: Corpus) -> None:
    doc_id = corpus.ids["red-3"]
    response = client.get(f"/images/{doc_id}")
    assert response.status_code == 200
    doc = response.json()
    assert doc["id"] == doc_id
    assert (doc["width"], doc["height"], doc["format"], doc["orientation"]) == (40, 60, "png", "portrait")
    assert doc["bytes"] == len(corpus.data["red-3"])
    assert doc["colours"] == [{"name": "red", "share": 1.0}]
    assert doc["vectors"] == {"colour": 128}
    assert doc["enrichments"] == {"colour": "1", "phash": "1"}
    assert len(doc["phash"]) == 16
    assert doc["ingested_at"] is not None


def test_thumbnail_is_a_small_jpeg(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "thumbs", api={"thumbnail_size": 40})
    big = image_bytes(noise_image(9, size=(300, 120)))
    with TestClient(create_app(settings)) as client:
        doc_id = client.post("/images", files=multipart({"big": big})).json()["ids"][0]
        response = client.get(f"/images/{doc_id}/thumbnail")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.content)) as thumb:
            assert thumb.format == "JPEG"
            assert max(thumb.size) <= 40
            assert thumb.size == (40, 16)
        # Cached on disk and served again unchanged.
        assert (settings.thumbnail_dir / f"{doc_id}-40.jpg").read_bytes() == response.content
        assert client.get(f"/images/{doc_id}/thumbnail").content == response.content


def test_thumbnail_of_an_image_whose_file_is_gone_is_404(client: TestClient, corpus: Corpus,
                                                         settings: Settings) -> None:
    doc_id = corpus.ids["blue-1"]
    (settings.upload_dir / f"{doc_id}.png").unlink()
    assert_error(client.get(f"/images/{doc_id}/thumbnail"), 404, "not_found", doc_id, "gone")


def test_delete_then_get_is_404(client: TestClient, corpus: Corpus) -> None:
    doc_id = corpus.ids["green-1"]
    response = client.delete(f"/images/{doc_id}")
    assert response.status_code == 200
    assert response.json() == {"deleted": doc_id}
    assert_error(client.get(f"/images/{doc_id}"), 404, "not_found", doc_id)
    assert_error(client.get(f"/images/{doc_id}/thumbnail"), 404, "not_found", doc_id)
    assert_error(client.delete(f"/images/{doc_id}"), 404, "not_found", doc_id)
    assert n_documents(client) == len(corpus.ids) - 1
    # Gone from every leg: browse, text, filters, and vector search.
    assert doc_id not in hit_ids(search_ok(client.get("/search", params={"k": "100"})))
    assert search_ok(client.get("/search", params={"q": "green", "filter": "format=jpeg"}))["total"] == 0
    like = search_ok(client.get("/search", params={"like": corpus.ids["noise-1"], "k": "100"}))
    assert doc_id not in hit_ids(like)
    assert like["total"] == len(corpus.ids) - 2


# -- clicks ----------------------------------------------------------------------------------------------


def test_click_on_a_shown_hit_is_recorded(client: TestClient, corpus: Corpus, engine: Engine) -> None:
    search = search_ok(client.get("/search", params={"q": "red", "k": "2", "offset": "1"}))
    shown = hit_ids(search)
    assert len(shown) == 2
    response = client.post("/clicks", json={"query_id": search["query_id"], "id": shown[1]})
    assert response.status_code == 201
    assert response.json() == {"recorded": True, "query_id": search["query_id"], "id": shown[1], "position": 3}
    # An explicit, correct position is accepted too.
    response = client.post("/clicks", json={"query_id": search["query_id"], "id": shown[0], "position": 2})
    assert response.status_code == 201
    clicks = engine.store.clicks()
    assert [(c.query_id, c.doc_id, c.position) for c in clicks] == [
        (search["query_id"], shown[1], 3), (search["query_id"], shown[0], 2),
    ]
    assert client.get("/stats").json()["store"]["clicks"] == 2


def test_every_search_is_recorded_as_an_impression(client: TestClient, corpus: Corpus, engine: Engine) -> None:
    before = len(engine.store.impressions())
    body = search_ok(client.get("/search", params=[("q", "blue"), ("filter", "colour=blue"), ("k", "5")]))
    impression = engine.store.get_impression(body["query_id"])
    assert impression is not None
    assert impression.request["text"] == "blue"
    assert impression.request["filters"] == [{"field": "colour", "values": ["blue"], "negate": False}]
    assert [(s["id"], s["position"]) for s in impression.shown] == [(i, n) for n, i in enumerate(hit_ids(body), 1)]
    assert len(engine.store.impressions()) == before + 1


# -- health, stats, openapi ------------------------------------------------------------------------------


def test_health(client: TestClient, corpus: Corpus) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["documents"] == len(corpus.ids)
    assert set(body["components"]) == {"store", "vectors.colour", "enricher.colour", "enricher.phash"}
    assert all(c["status"] == "ready" for c in body["components"].values())
    assert body["components"]["vectors.colour"]["detail"] == f"Flat ({len(corpus.ids)} vectors)"


def test_health_on_an_empty_index(client: TestClient) -> None:
    body = client.get("/health").json()
    assert (body["status"], body["documents"]) == ("ok", 0)


def test_stats(client: TestClient, corpus: Corpus, settings: Settings) -> None:
    client.get("/search", params={"q": "red"})
    response = client.get("/stats")
    assert response.status_code == 200
    stats = response.json()
    n = len(corpus.ids)
    assert stats["store"]["backend"] == "sqlite"
    assert stats["store"]["documents"] == n
    assert stats["store"]["vectors"] == {"colour": 128}
    assert stats["store"]["impressions"] == 1
    assert stats["vectors"]["colour"]["count"] == n
    assert stats["phash"] == n
    assert stats["enrichers"] == {"colour": "1", "phash": "1"}
    assert stats["data_dir"] == str(settings.data_dir)


def test_openapi_describes_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "imgsearch" and spec["info"]["version"] == __version__
    for schema in spec["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    served: dict[str, set[str]] = {}
    app = client.app
    assert isinstance(app, Starlette)
    for route in app.routes:
        assert isinstance(route, Route)
        served.setdefault(route.path, set()).update(m.lower() for m in route.methods or () if m != "HEAD")
    documented = {path: {m for m in ops if m in {"get", "post", "put", "patch", "delete"}}
                  for path, ops in spec["paths"].items()}
    assert documented == served
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
            assert op.get("responses"), f"{method.upper()} {path} documents no response"
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path


# -- the error walk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    """What the error table's requests can refer to."""

    known: str  # an indexed image id
    missing: str  # a well-formed id that is not indexed
    query_id: str  # a recorded search (q=red, k=2)
    shown: tuple[str, ...]  # the ids it showed, positions 1..
    not_shown: str  # an indexed id it did not show
    png: bytes  # a valid image


Req = Callable[[Ctx], dict[str, Any]]


def _files(name: str, data: bytes, field: str = "file") -> Req:
    return lambda c: {"files": [(field, (name, data, "application/octet-stream"))]}


def _png(field: str, **data: str) -> Req:
    return lambda c: {"files": [(field, ("q.png", c.png, "image/png"))], "data": data}


def _json(body: Any) -> Req:
    return lambda c: {"json": body}


def _raw(content: bytes, ctype: str = "application/json") -> Req:
    return lambda c: {"content": content, "headers": {"content-type": ctype}}


_NONE: Req = lambda c: {}  # noqa: E731
FIELD_ONLY_MULTIPART = (b'--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\nno file here\r\n'
                        b"--xyz--\r\n")
# (method, url template with {known}/{missing}/{query_id}, request kwargs, status, error type, message needles)
ERRORS: list[Any] = [
    pytest.param("GET", "/search?filter=shape=round", _NONE, 400, "invalid_filter",
                 ("unknown filter field 'shape'",), id="unknown-filter-field"),
    pytest.param("GET", "/search?filter=width>=wide", _NONE, 400, "invalid_filter",
                 ("'width'", "number", "'wide'"), id="bad-range-value"),
    pytest.param("GET", "/search?filter=date>=yesterday", _NONE, 400, "invalid_filter",
                 ("ISO date", "'yesterday'"), id="bad-date-value"),
    pytest.param("GET", "/search?filter=colour>=3", _NONE, 400, "invalid_filter", ("colour=VALUE",),
                 id="range-op-on-term-field"),
    pytest.param("GET", "/search?facet=size", _NONE, 400, "invalid_filter", ("unknown facet 'size'",),
                 id="unknown-facet"),
    pytest.param("GET", "/search?k=0", _NONE, 400, "invalid_query", ("k must be between 1 and 1000", "got 0"),
                 id="k-zero"),
    pytest.param("GET", "/search?k=1001", _NONE, 400, "invalid_query", ("k must be between 1 and 1000",
                 "got 1001"), id="k-too-big"),
    pytest.param("GET", "/search?offset=-1", _NONE, 400, "invalid_query", ("offset must be between 0",
                 "got -1"), id="negative-offset"),
    pytest.param("GET", "/search?offset=10001", _NONE, 400, "invalid_query", ("offset must be between 0 and 10000",),
                 id="offset-too-deep"),
    pytest.param("GET", "/search?k=ten", _NONE, 400, "invalid_query", ("k must be an integer", "'ten'"),
                 id="k-not-integer"),
    pytest.param("POST", "/search", _json({"k": 2.5}), 400, "invalid_query", ("k must be an integer", "2.5"),
                 id="k-float-json"),
    pytest.param("POST", "/search", _json({"k": True}), 400, "invalid_query", ("k must be an integer",),
                 id="k-bool-json"),
    pytest.param("POST", "/search", _json({"offset": "x"}), 400, "invalid_query", ("offset must be an integer",),
                 id="offset-not-integer"),
    pytest.param("GET", "/search?colour=red", _NONE, 400, "invalid_query", ("unknown search parameter",
                 "'colour'"), id="unknown-search-param"),
    pytest.param("POST", "/search", _json({"query": "red"}), 400, "invalid_query", ("'query'",),
                 id="unknown-json-field"),
    pytest.param("GET", "/search?q=" + "a" * 1001, _NONE, 400, "invalid_query", ("1001 characters",),
                 id="query-too-long"),
    pytest.param("POST", "/search", _raw(b'{"q": "red",'), 400, "bad_request", ("not valid JSON",),
                 id="malformed-json"),
    pytest.param("POST", "/search", _raw(b'\xff\xfe{"q"'), 400, "bad_request", ("not valid JSON",),
                 id="json-not-utf8"),
    pytest.param("POST", "/search", _json(["q", "red"]), 400, "bad_request", ("JSON object",), id="json-array"),
    pytest.param("POST", "/search", _json({"q": 5}), 400, "invalid_query", ("q must be a string",),
                 id="q-not-string"),
    pytest.param("POST", "/search", _json({"like": 5}), 400, "invalid_query", ("like must be an image id",),
                 id="like-not-string"),
    pytest.param("POST", "/search", _json({"facets": {"colour": 1}}), 400, "invalid_query",
                 ("facets must be a list",), id="facets-not-list"),
    pytest.param("POST", "/search", _json({"filters": {"width": {"ge": 5}}}), 400, "invalid_filter",
                 ("gte, gt, lte, lt",), id="filter-mapping-bad-op"),
    pytest.param("POST", "/search", _json({"image_base64": "not base64!"}), 400, "invalid_query",
                 ("image_base64 is not valid base64",), id="bad-base64"),
    pytest.param("POST", "/search", _json({"image_base64": base64.b64encode(b"plain text").decode()}), 400,
                 "invalid_image", ("not a recognised image format",), id="base64-not-an-image"),
    pytest.param("POST", "/search", lambda c: {"json": {"image_base64": base64.b64encode(c.png).decode(),
                                                        "like": c.known}},
                 400, "invalid_query", ("either an image upload or `like`",), id="image-and-like-json"),
    pytest.param("POST", "/search", lambda c: {"files": [("image", ("q.png", c.png, "image/png"))],
                                               "data": {"like": c.known}},
                 400, "invalid_query", ("either an image upload or `like`",), id="image-and-like-multipart"),
    pytest.param("POST", "/search", _png("file"), 400, "invalid_query", ("unexpected file field 'file'",
                 "'image'"), id="search-upload-wrong-field"),
    pytest.param("POST", "/search", _png("image", filter="nope=1"), 400, "invalid_filter",
                 ("unknown filter field 'nope'",), id="search-multipart-bad-filter"),
    pytest.param("POST", "/search", _files("q.png", b"GIF89a-but-not-really", "image"), 400, "invalid_image",
                 ("image",), id="search-upload-not-an-image"),
    pytest.param("POST", "/search", _files("q.png", b"", "image"), 400, "invalid_image", ("empty file",),
                 id="search-upload-empty"),
    pytest.param("GET", "/search?like={missing}", _NONE, 404, "not_found", ("no image with id", "{missing}"),
                 id="like-unknown-id"),
    pytest.param("POST", "/images", _files("notes.jpg", b"just some text\n"), 400, "invalid_image",
                 ("notes.jpg", "not a recognised image format"), id="upload-text-as-jpg"),
    pytest.param("POST", "/images", _files("empty.png", b""), 400, "invalid_image", ("empty.png", "empty file"),
                 id="upload-zero-bytes"),
    pytest.param("POST", "/images", _json({"file": "x"}), 400, "bad_request", ("multipart/form-data",),
                 id="upload-not-multipart"),
    pytest.param("POST", "/images", _raw(FIELD_ONLY_MULTIPART, "multipart/form-data; boundary=xyz"), 400,
                 "bad_request", ("no file",), id="upload-without-file"),
    pytest.param("POST", "/images", _raw(b"--xyz\r\nnot a multipart body", "multipart/form-data; boundary=xyz"),
                 400, "bad_request", ("multipart",), id="upload-malformed-multipart"),
    pytest.param("GET", "/images/{missing}", _NONE, 404, "not_found", ("no image with id", "{missing}"),
                 id="get-unknown-id"),
    pytest.param("DELETE", "/images/{missing}", _NONE, 404, "not_found", ("{missing}",), id="delete-unknown-id"),
    pytest.param("GET", "/images/{missing}/thumbnail", _NONE, 404, "not_found", ("{missing}",),
                 id="thumbnail-unknown-id"),
    pytest.param("POST", "/clicks", lambda c: {"json": {"query_id": "0" * 32, "id": c.known}}, 404, "not_found",
                 ("no recorded search", "0" * 32), id="click-unknown-query"),
    pytest.param("POST", "/clicks", lambda c: {"json": {"query_id": c.query_id, "id": c.not_shown}}, 400,
                 "bad_request", ("{not_shown}", "not among the hits shown"), id="click-id-not-shown"),
    pytest.param("POST", "/clicks", lambda c: {"json": {"query_id": c.query_id, "id": c.shown[0], "position": 2}},
                 400, "bad_request", ("position must be 1", "got 2"), id="click-wrong-position"),
    pytest.param("POST", "/clicks", lambda c: {"json": {"query_id": c.query_id, "id": c.shown[0],
                                                        "position": True}},
                 400, "bad_request", ("position must be 1",), id="click-bool-position"),
    pytest.param("POST", "/clicks", lambda c: {"json": {"query_id": c.query_id, "id": c.shown[0], "user": "x"}},
                 400, "bad_request", ("unknown click field", "'user'"), id="click-extra-field"),
    pytest.param("POST", "/clicks", lambda c: {"json": {"query_id": c.query_id}}, 400, "bad_request",
                 ("query_id and id",), id="click-missing-id"),
    pytest.param("POST", "/clicks", _json([1, 2]), 400, "bad_request", ("JSON object",), id="click-not-object"),
    pytest.param("POST", "/clicks", _raw(b"{"), 400, "bad_request", ("not valid JSON",), id="click-bad-json"),
    pytest.param("POST", "/clicks", _raw(b""), 400, "bad_request", ("JSON object",), id="click-empty-body"),
    pytest.param("GET", "/nope", _NONE, 404, "not_found", ("no route /nope",), id="unknown-route"),
    pytest.param("GET", "/images", _NONE, 405, "method_not_allowed", ("GET is not allowed on /images",),
                 id="get-on-upload-route"),
    pytest.param("PUT", "/search", _NONE, 405, "method_not_allowed", ("PUT", "/search"), id="put-search"),
    pytest.param("DELETE", "/clicks", _NONE, 405, "method_not_allowed", ("DELETE", "/clicks"), id="delete-clicks"),
    pytest.param("POST", "/images/{known}", _NONE, 405, "method_not_allowed", ("POST",), id="post-image-id"),
    pytest.param("POST", "/health", _NONE, 405, "method_not_allowed", ("POST", "/health"), id="post-health"),
]


@pytest.fixture
def ctx(client: TestClient, corpus: Corpus) -> Ctx:
    search = search_ok(client.get("/search", params={"q": "red", "k": "2"}))
    shown = tuple(hit_ids(search))
    assert len(shown) == 2
    return Ctx(known=corpus.ids["noise-1"], missing="f" * 32, query_id=search["query_id"], shown=shown,
               not_shown=corpus.ids["blue-1"], png=image_bytes(noise_image(99)))


@pytest.mark.parametrize(("method", "url", "request_kwargs", "status", "kind", "needles"), ERRORS)
def test_error_walk(client: TestClient, ctx: Ctx, method: str, url: str, request_kwargs: Req, status: int,
                    kind: str, needles: tuple[str, ...]) -> None:
    fill = {"known": ctx.known, "missing": ctx.missing, "query_id": ctx.query_id, "not_shown": ctx.not_shown}
    before = client.get("/stats").json()["store"]
    response = client.request(method, url.format(**fill), **request_kwargs(ctx))
    assert_error(response, status, kind, *(n.format(**fill) for n in needles))
    # An error changes nothing: no document, vector or click was written.
    after = client.get("/stats").json()["store"]
    assert (after["documents"], after["clicks"]) == (before["documents"], before["clicks"])


def test_errors_are_handled_not_raised(client: TestClient) -> None:
    """A 4xx is an answer, not a server failure: the app must not re-raise it past its error handler.

    (TestClient re-raises what the app lets escape; under uvicorn the same escape is logged as
    "Exception in ASGI application" with a traceback for every bad request.)
    """
    response = client.get("/search", params={"k": "0"})
    assert_error(response, 400, "invalid_query", "k must be between")


# -- body size limit -------------------------------------------------------------------------------------


@pytest.fixture
def small_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "small", api={"max_upload_bytes": 1000})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _chunked(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 256):
        yield data[start : start + 256]


BIG = image_bytes(noise_image(5))  # ~7 KB, over the 1000-byte limit


@pytest.mark.parametrize("request_kwargs", [
    pytest.param({"method": "POST", "url": "/images", "files": multipart({"big": BIG})}, id="upload"),
    pytest.param({"method": "POST", "url": "/search", "files": {"image": ("q.png", BIG, "image/png")}},
                 id="search-multipart"),
    pytest.param({"method": "POST", "url": "/search", "json": {"q": "x" * 2000}}, id="search-json"),
    pytest.param({"method": "POST", "url": "/search", "content": _chunked(b"{" + b" " * 3000 + b"}"),
                  "headers": {"content-type": "application/json"}}, id="search-chunked"),
])
def test_body_over_limit_is_413(small_client: TestClient, request_kwargs: dict[str, Any]) -> None:
    response = small_client.request(**request_kwargs)
    assert_error(response, 413, "payload_too_large", "1,000", "api.max_upload_bytes")
    assert n_documents(small_client) == 0


def test_body_under_limit_is_accepted(small_client: TestClient) -> None:
    small = image_bytes((255, 0, 0), size=(16, 16))
    response = small_client.post("/images", files=multipart({"small": small}))
    assert response.status_code == 201
    assert response.json()["ids"] == [content_id(small)]
