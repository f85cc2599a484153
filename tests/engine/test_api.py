"""HTTP API tests: every route through Starlette's TestClient (lifespan included), on generated images.

The corpus is built in the test (solid colours and smooth noise), so no shared data is needed. Error
paths are one parametrised table (`ERRORS`): adding a route or an error is one line there.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.routing import Route
from starlette.testclient import TestClient

from engine import __version__
from engine.api import create_app
from engine.documents import content_id
from engine.engine import Engine
from engine.openapi import openapi_spec
from engine.settings import Settings
from tests.conftest import image_bytes, noise_image

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
    files = [
        ("file", ("notes.jpg", b"this is a text file, not a JPEG\n", "image/jpeg")),
        ("file", ("good.png", good, "image/png")),
    ]
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


def test_identical_bad_uploads_are_each_reported_by_name(client: TestClient, settings: Settings) -> None:
    junk = b"not an image at all\n" * 5
    files = [
        ("file", ("first.jpg", junk, "image/jpeg")),
        ("file", ("second.jpg", junk, "image/jpeg")),
        ("file", ("fine.png", image_bytes(noise_image(12)), "image/png")),
    ]
    body = client.post("/images", files=files).json()
    assert sorted(f["file"] for f in body["failed"]) == ["first.jpg", "second.jpg"]
    assert len(list(settings.upload_dir.iterdir())) == 1


def test_upload_of_already_indexed_bytes_keeps_no_second_copy(
    client: TestClient, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    from engine.ingest import ingest_paths

    data = image_bytes(noise_image(13))
    (tmp_path / "on_disk.png").write_bytes(data)
    ingest_paths(engine, [tmp_path / "on_disk.png"])
    response = client.post("/images", files=[("file", ("copy.png", data, "image/png"))])
    assert response.status_code == 200 and response.json()["unchanged"] == 1
    assert not settings.upload_dir.exists() or list(settings.upload_dir.iterdir()) == []
    assert engine.get(content_id(data)).path == str((tmp_path / "on_disk.png").resolve())


def test_uploaded_files_are_closed(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every spooled upload is closed once its request is answered (else: ResourceWarning, leaked fds)."""
    made: list[UploadFile] = []
    original = UploadFile.__init__

    def spy(self: UploadFile, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(UploadFile, "__init__", spy)
    files = {"a": image_bytes(noise_image(31)), "b": image_bytes(noise_image(32))}
    # This test is about closing only, so it does not let the client re-raise what the app lets escape.
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        assert client.post("/images", files=multipart(files)).status_code == 201
        assert client.post("/search", files={"image": ("q.png", files["a"], "image/png")}).status_code == 200
        assert client.post("/images", files=multipart({"bad": b"not an image"})).status_code == 400
    assert [u.filename for u in made] == ["a.png", "b.png", "q.png", "bad.png"]
    assert [u.filename for u in made if not u.file.closed] == []


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
    params = [
        ("q", "red"),
        ("filter", "colour=red"),
        ("facet", "colour"),
        ("facet", "orientation"),
        ("facet", "format"),
    ]
    body = search_ok(client.get("/search", params=params))
    assert set(hit_ids(body)) == corpus.named("red-")
    assert body["total"] == 3 and body["total_relation"] == "eq"
    assert body["facets"] == {
        "colour": {"red": 3},
        "orientation": {"landscape": 2, "portrait": 1},
        "format": {"png": 3},
    }
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


def test_facets_count_only_the_text_matches(client: TestClient, corpus: Corpus) -> None:
    # `blue` matches the two blue solids and the four noise images (each about 15-25% blue), not red or green.
    body = search_ok(client.get("/search", params={"q": "blue", "facet": ["format", "colour"], "k": "100"}))
    assert set(hit_ids(body)) == corpus.named("blue-") | corpus.named("noise-")
    assert body["facets"]["format"] == {"png": 6}
    assert body["facets"]["colour"]["blue"] == 6
    assert "red" not in body["facets"]["colour"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["colour=red"], "red-"),
        (["orientation=portrait,square"], {"red-3", "blue-2"}),
        (["colour=red", "width>=60"], {"red-1", "red-2"}),
        (["orientation=portrait"], {"red-3"}),
        (["format=jpeg"], {"green-1"}),
        (["color=blue", "orientation!=landscape"], {"blue-2"}),
        (["has_text=true"], set()),
    ],
)
def test_get_search_filters_are_applied(
    client: TestClient, corpus: Corpus, filters: list[str], expected: str | set[str]
) -> None:
    want = corpus.named(expected) if isinstance(expected, str) else {corpus.ids[name] for name in expected}
    body = search_ok(client.get("/search", params=[("filter", f) for f in filters] + [("k", "100")]))
    assert set(hit_ids(body)) == want
    assert body["total"] == len(want)


def test_post_search_json_with_filter_list(client: TestClient, corpus: Corpus) -> None:
    body = search_ok(
        client.post(
            "/search",
            json={
                "q": "red",
                "filters": ["colour=red", "orientation=landscape"],
                "facets": ["orientation"],
                "k": 5,
            },
        )
    )
    assert set(hit_ids(body)) == {corpus.ids["red-1"], corpus.ids["red-2"]}
    assert body["facets"] == {"orientation": {"landscape": 2}}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"colour": ["red"], "width": {"gte": 60}}, {"red-1", "red-2"}),
        ({"colour": "blue", "orientation": "square"}, {"blue-2"}),
        ({"height": {"gt": 48, "lte": 60}, "format": ["png"]}, {"red-2", "red-3", "blue-2"}),
        ({"colour_share.blue": {"gte": 0.9}}, {"blue-1", "blue-2"}),
        ({"has_text": False, "colour": ["green"], "format": "jpeg"}, {"green-1"}),
    ],
)
def test_post_search_json_with_filter_mapping(
    client: TestClient, corpus: Corpus, filters: dict[str, Any], expected: set[str]
) -> None:
    body = search_ok(client.post("/search", json={"filters": filters, "k": 100}))
    assert set(hit_ids(body)) == {corpus.ids[name] for name in expected}


def test_post_search_multipart_image_is_reverse_search(client: TestClient, corpus: Corpus) -> None:
    query = corpus.data["noise-3"]
    response = client.post(
        "/search", files={"image": ("query.png", query, "image/png")}, data={"k": "5", "facet": "format"}
    )
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
    body = search_ok(
        client.post(
            "/search",
            files={"image": ("q.png", corpus.data["noise-3"], "image/png")},
            data={"filter": "colour=red", "k": "50"},
        )
    )
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


@pytest.mark.parametrize(
    "query",
    [{}, {"q": "red blue green"}, {"like": "noise-1"}, {"image": "noise-5"}],
    ids=["browse", "text", "like", "image"],
)
def test_pages_do_not_overlap_and_concatenate(client: TestClient, corpus: Corpus, query: dict[str, str]) -> None:
    k = 3

    def page(offset: int, size: int) -> list[str]:
        data: dict[str, str] = {"k": str(size), "offset": str(offset)}
        if "image" in query:
            response = client.post(
                "/search", data=data, files={"image": ("q.png", corpus.data[query["image"]], "image/png")}
            )
        else:
            params = {**data, **({"like": corpus.ids[query["like"]]} if "like" in query else query)}
            response = client.get("/search", params=params)
        return hit_ids(search_ok(response))

    whole = page(0, 2 * k)
    first, second = page(0, k), page(k, k)
    assert len(whole) == 2 * k
    assert first + second == whole
    assert not set(first) & set(second)


@pytest.mark.parametrize(
    "text",
    ['"unbalanced', "OR", "AND (", "NEAR(red", "colour:red", "red*", "-", "'", "ünïcödé rot", "red " * 250, "   "],
)
def test_odd_query_text_is_answered_not_a_server_error(client: TestClient, corpus: Corpus, text: str) -> None:
    body = search_ok(client.get("/search", params={"q": text}))
    assert body["total"] >= len(body["hits"])
    assert search_ok(client.post("/search", json={"q": text}))["total"] == body["total"]


def test_image_over_the_pixel_limit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "px", max_image_pixels=5000)
    big = image_bytes((255, 0, 0), size=(100, 100))
    with TestClient(create_app(settings)) as client:
        response = client.post("/search", files={"image": ("big.png", big, "image/png")})
        assert_error(response, 413, "image_too_large", "10,000 pixels", "5,000-pixel limit")
        response = client.post("/images", files=multipart({"big": big}))
        assert_error(response, 400, "invalid_image", "big.png", "5,000-pixel limit")
        assert n_documents(client) == 0


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


def test_thumbnail_of_an_image_whose_file_is_gone_is_404(
    client: TestClient, corpus: Corpus, settings: Settings
) -> None:
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
        (search["query_id"], shown[1], 3),
        (search["query_id"], shown[0], 2),
    ]
    assert client.get("/stats").json()["store"]["clicks"] == 2


def test_every_search_is_recorded_as_an_impression(client: TestClient, corpus: Corpus, engine: Engine) -> None:
    before = len(engine.store.impressions())
    body = search_ok(client.get("/search", params=[("q", "blue"), ("filter", "colour=blue"), ("k", "5")]))
    impression = engine.store.get_impression(body["query_id"])
    assert impression is not None
    assert impression.request["text"] == "blue"
    assert impression.request["filters"] == [{"field": "colour", "values": ["blue"], "negate": False}]
    shown = [(item["id"], item["position"]) for item in impression.shown]
    assert shown == [(doc_id, n) for n, doc_id in enumerate(hit_ids(body), start=1)]
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
    assert body["components"]["vectors.colour"]["detail"] == f"Flat, {len(corpus.ids)} vectors"
    assert body["components"]["store"]["detail"] == f"sqlite, {len(corpus.ids)} documents"


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
    documented = {
        path: {m for m in ops if m in {"get", "post", "put", "patch", "delete"}} for path, ops in spec["paths"].items()
    }
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

    @property
    def shown1(self) -> str:
        return self.shown[0]

    def fill(self) -> dict[str, str]:
        return {"known": self.known, "missing": self.missing, "query_id": self.query_id, "not_shown": self.not_shown}


Req = Callable[[Ctx], dict[str, Any]]


def _none(c: Ctx) -> dict[str, Any]:
    return {}


def _file(name: str, data: bytes, field: str = "file") -> Req:
    return lambda c: {"files": [(field, (name, data, "application/octet-stream"))]}


def _png(field: str, **data: str) -> Req:
    """A multipart request with a valid image in `field` and the given text fields."""
    return lambda c: {"files": [(field, ("q.png", c.png, "image/png"))], "data": data}


def _json(body: Any) -> Req:
    return lambda c: {"json": body}


def _raw(content: bytes, ctype: str = "application/json") -> Req:
    return lambda c: {"content": content, "headers": {"content-type": ctype}}


def _b64(body: dict[str, Any]) -> Req:
    """JSON with `image_base64` set to a valid image, plus `body`; `{known}` values become the indexed id."""
    return lambda c: {
        "json": {
            "image_base64": base64.b64encode(c.png).decode(),
            **{k: str(v).format(**c.fill()) for k, v in body.items()},
        }
    }


def _click(doc: str, **extra: Any) -> Req:
    """POST /clicks JSON for the recorded search; `doc` names a Ctx attribute (shown1, not_shown, known)."""
    return lambda c: {"json": {"query_id": c.query_id, "id": getattr(c, doc), **extra}}


def case(name: str, method: str, url: str, status: int, kind: str, *needles: str, req: Req = _none) -> Any:
    """One row: `url` and `needles` may use {known}, {missing}, {query_id}, {not_shown}."""
    return pytest.param(method, url, req, status, kind, needles, id=name)


FIELD_ONLY_MULTIPART = b'--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\nno file\r\n--xyz--\r\n'
MULTIPART = "multipart/form-data; boundary=xyz"
# Error types, short so that each row fits on a line.
QRY, FLT, BAD, IMG, NF, NA = (
    "invalid_query",
    "invalid_filter",
    "bad_request",
    "invalid_image",
    "not_found",
    "method_not_allowed",
)
ERRORS: list[Any] = [
    # GET /search: filters, facets, paging, parameters
    case("unknown-filter-field", "GET", "/search?filter=shape=1", 400, FLT, "unknown filter field 'shape'"),
    case("bad-range-value", "GET", "/search?filter=width>=wide", 400, FLT, "'width'", "number", "'wide'"),
    case("bad-date-value", "GET", "/search?filter=date>=yesterday", 400, FLT, "ISO date", "'yesterday'"),
    case("range-op-on-term", "GET", "/search?filter=colour>=3", 400, FLT, "colour=VALUE"),
    case("unknown-facet", "GET", "/search?facet=size", 400, FLT, "unknown facet 'size'"),
    case("k-zero", "GET", "/search?k=0", 400, QRY, "k must be between 1 and 1000", "got 0"),
    case("k-too-big", "GET", "/search?k=1001", 400, QRY, "k must be between 1 and 1000", "got 1001"),
    case("k-not-integer", "GET", "/search?k=ten", 400, QRY, "k must be an integer", "'ten'"),
    case("negative-offset", "GET", "/search?offset=-1", 400, QRY, "offset must be between 0", "got -1"),
    case("offset-too-deep", "GET", "/search?offset=10001", 400, QRY, "between 0 and 10000"),
    case("unknown-search-param", "GET", "/search?colour=red", 400, QRY, "unknown search", "'colour'"),
    case("query-too-long", "GET", "/search?q=" + "a" * 1001, 400, QRY, "1001 characters"),
    case("like-unknown-id", "GET", "/search?like={missing}", 404, NF, "no image with id", "{missing}"),
    # POST /search JSON
    case("malformed-json", "POST", "/search", 400, BAD, "not valid JSON", req=_raw(b'{"q": "red",')),
    case("json-not-utf8", "POST", "/search", 400, BAD, "not valid JSON", req=_raw(b'\xff\xfe{"q"')),
    case("json-array", "POST", "/search", 400, BAD, "JSON object", req=_json(["q", "red"])),
    case("unknown-json-field", "POST", "/search", 400, QRY, "'query'", req=_json({"query": "red"})),
    case("k-float-json", "POST", "/search", 400, QRY, "k must be an integer", "2.5", req=_json({"k": 2.5})),
    case("k-bool-json", "POST", "/search", 400, QRY, "k must be an integer", req=_json({"k": True})),
    case("offset-not-integer", "POST", "/search", 400, QRY, "offset must be an integer", req=_json({"offset": "x"})),
    case("q-not-string", "POST", "/search", 400, QRY, "q must be a string", req=_json({"q": 5})),
    case("like-not-string", "POST", "/search", 400, QRY, "like must be an image id", req=_json({"like": 5})),
    case("facets-not-list", "POST", "/search", 400, QRY, "facets must be a list", req=_json({"facets": {"colour": 1}})),
    case(
        "filter-mapping-bad-op",
        "POST",
        "/search",
        400,
        FLT,
        "gte, gt, lte, lt",
        req=_json({"filters": {"width": {"ge": 5}}}),
    ),
    case(
        "bad-base64",
        "POST",
        "/search",
        400,
        QRY,
        "image_base64 is not valid base64",
        req=_json({"image_base64": "not base64!"}),
    ),
    case(
        "base64-not-an-image",
        "POST",
        "/search",
        400,
        IMG,
        "not a recognised image format",
        req=_json({"image_base64": base64.b64encode(b"plain text").decode()}),
    ),
    case(
        "image-and-like-json",
        "POST",
        "/search",
        400,
        QRY,
        "either an image upload or `like`",
        req=_b64({"like": "{known}"}),
    ),
    # POST /search multipart
    case(
        "image-and-like-multipart",
        "POST",
        "/search",
        400,
        QRY,
        "either an image upload or `like`",
        req=lambda c: _png("image", like=c.known)(c),
    ),
    case("search-wrong-file-field", "POST", "/search", 400, QRY, "unexpected file field 'file'", req=_png("file")),
    case(
        "search-multipart-bad-filter",
        "POST",
        "/search",
        400,
        FLT,
        "unknown filter field 'nope'",
        req=_png("image", filter="nope=1"),
    ),
    case(
        "search-upload-not-image",
        "POST",
        "/search",
        400,
        IMG,
        "image",
        req=_file("q.png", b"GIF89a-but-not-really", "image"),
    ),
    case("search-upload-empty", "POST", "/search", 400, IMG, "empty file", req=_file("q.png", b"", "image")),
    # POST /images
    case(
        "upload-text-as-jpg",
        "POST",
        "/images",
        400,
        IMG,
        "notes.jpg",
        "not a recognised image format",
        req=_file("notes.jpg", b"just some text\n"),
    ),
    case("upload-zero-bytes", "POST", "/images", 400, IMG, "empty.png", "empty file", req=_file("empty.png", b"")),
    case("upload-not-multipart", "POST", "/images", 400, BAD, "multipart/form-data", req=_json({"file": "x"})),
    case("upload-without-file", "POST", "/images", 400, BAD, "no file", req=_raw(FIELD_ONLY_MULTIPART, MULTIPART)),
    case(
        "upload-malformed-multipart",
        "POST",
        "/images",
        400,
        BAD,
        "multipart",
        req=_raw(b"--xyz\r\nnot a multipart body", MULTIPART),
    ),
    # /images/{id}
    case("get-unknown-id", "GET", "/images/{missing}", 404, NF, "no image with id", "{missing}"),
    case("delete-unknown-id", "DELETE", "/images/{missing}", 404, NF, "{missing}"),
    case("thumbnail-unknown-id", "GET", "/images/{missing}/thumbnail", 404, NF, "{missing}"),
    # POST /clicks
    case(
        "click-unknown-query",
        "POST",
        "/clicks",
        404,
        NF,
        "no recorded search",
        "0" * 32,
        req=lambda c: {"json": {"query_id": "0" * 32, "id": c.known}},
    ),
    case(
        "click-id-not-shown",
        "POST",
        "/clicks",
        400,
        BAD,
        "{not_shown}",
        "not among the hits shown",
        req=_click("not_shown"),
    ),
    case(
        "click-wrong-position",
        "POST",
        "/clicks",
        400,
        BAD,
        "position must be 1",
        "got 2",
        req=_click("shown1", position=2),
    ),
    case("click-bool-position", "POST", "/clicks", 400, BAD, "position must be 1", req=_click("shown1", position=True)),
    case(
        "click-extra-field",
        "POST",
        "/clicks",
        400,
        BAD,
        "unknown click field",
        "'user'",
        req=_click("shown1", user="x"),
    ),
    case(
        "click-missing-id",
        "POST",
        "/clicks",
        400,
        BAD,
        "query_id and id",
        req=lambda c: {"json": {"query_id": c.query_id}},
    ),
    case("click-not-object", "POST", "/clicks", 400, BAD, "JSON object", req=_json([1, 2])),
    case("click-bad-json", "POST", "/clicks", 400, BAD, "not valid JSON", req=_raw(b"{")),
    case("click-empty-body", "POST", "/clicks", 400, BAD, "JSON object", req=_raw(b"")),
    # routing
    case("unknown-route", "GET", "/nope", 404, NF, "no route /nope"),
    case("get-on-upload-route", "GET", "/images", 405, NA, "GET is not allowed on /images"),
    case("put-search", "PUT", "/search", 405, NA, "PUT is not allowed on /search"),
    case("delete-clicks", "DELETE", "/clicks", 405, NA, "DELETE is not allowed on /clicks"),
    case("post-image-id", "POST", "/images/{known}", 405, NA, "POST is not allowed"),
    case("post-health", "POST", "/health", 405, NA, "POST is not allowed on /health"),
]


@pytest.fixture
def ctx(client: TestClient, corpus: Corpus) -> Ctx:
    search = search_ok(client.get("/search", params={"q": "red", "k": "2"}))
    shown = tuple(hit_ids(search))
    assert len(shown) == 2
    return Ctx(
        known=corpus.ids["noise-1"],
        missing="f" * 32,
        query_id=search["query_id"],
        shown=shown,
        not_shown=corpus.ids["blue-1"],
        png=image_bytes(noise_image(99)),
    )


@pytest.mark.parametrize(("method", "url", "request_kwargs", "status", "kind", "needles"), ERRORS)
def test_error_walk(
    client: TestClient,
    ctx: Ctx,
    method: str,
    url: str,
    request_kwargs: Req,
    status: int,
    kind: str,
    needles: tuple[str, ...],
) -> None:
    fill = ctx.fill()
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


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"method": "POST", "url": "/images", "files": multipart({"big": BIG})}, id="upload"),
        pytest.param(
            {"method": "POST", "url": "/search", "files": {"image": ("q.png", BIG, "image/png")}}, id="search-multipart"
        ),
        pytest.param({"method": "POST", "url": "/search", "json": {"q": "x" * 2000}}, id="search-json"),
        pytest.param(
            {
                "method": "POST",
                "url": "/search",
                "content": _chunked(b"{" + b" " * 3000 + b"}"),
                "headers": {"content-type": "application/json"},
            },
            id="search-chunked",
        ),
    ],
)
def test_body_over_limit_is_413(small_client: TestClient, request_kwargs: dict[str, Any]) -> None:
    response = small_client.request(**request_kwargs)
    assert_error(response, 413, "payload_too_large", "1,000", "api.max_upload_bytes")
    assert n_documents(small_client) == 0


def test_body_under_limit_is_accepted(small_client: TestClient) -> None:
    small = image_bytes((255, 0, 0), size=(16, 16))
    response = small_client.post("/images", files=multipart({"small": small}))
    assert response.status_code == 201
    assert response.json()["ids"] == [content_id(small)]
