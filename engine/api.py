"""HTTP API (Starlette). `create_app(settings)` builds it; the engine opens in the lifespan.

Requests are parsed into typed objects at the route; every error is one JSON shape
`{"error": {"type", "message", "status"}}`; blocking work (SQLite, Faiss, decoding,
enrichers) runs in the threadpool, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import __version__
from engine.documents import content_id
from engine.engine import Engine
from engine.errors import BadRequest, ImageError, ImgSearchError, InvalidQuery, NotFound, PayloadTooLarge
from engine.filters import parse_facets, parse_filters
from engine.images import thumbnail_jpeg
from engine.ingest import Source, ingest_sources
from engine.openapi import openapi_spec
from engine.search import SearchRequest, run_search
from engine.settings import Settings
from engine.store import Click

log = logging.getLogger(__name__)
_SEARCH_FIELDS = {"q", "text", "like", "image", "image_base64", "filters", "filter", "facets", "facet", "k", "offset"}


def error_response(exc: ImgSearchError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status)


def _int(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool | float):
        raise InvalidQuery(f"{name} must be an integer, got {raw!r}")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidQuery(f"{name} must be an integer, got {raw!r}") from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {int(declared):,} bytes; the limit is {limit:,} (api.max_upload_bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit:,}-byte limit (api.max_upload_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes, not_object: str) -> dict[str, Any]:
    """Parse a JSON object body (empty = {}); BadRequest naming what is wrong otherwise."""
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadRequest(not_object)
    return payload


async def _form(request: Request, limit: int) -> Any:
    body = await _read_body(request, limit)
    request._body = body  # let Starlette's form parser reuse the bytes we already size-checked
    try:
        return await request.form(max_files=100, max_fields=100)
    except Exception as exc:
        raise BadRequest(f"malformed multipart/form-data body: {exc}") from exc


def _search_request(params: dict[str, Any], image: bytes | None) -> SearchRequest:
    unknown = set(params) - _SEARCH_FIELDS
    if unknown:
        raise InvalidQuery(f"unknown search parameter(s) {sorted(unknown)}; allowed: {sorted(_SEARCH_FIELDS)}")
    text = params.get("q", params.get("text")) or ""
    if not isinstance(text, str):
        raise InvalidQuery("q must be a string")
    like = params.get("like") or None
    if like is not None and not isinstance(like, str):
        raise InvalidQuery("like must be an image id (string)")
    raw_filters = params.get("filters", params.get("filter"))
    if isinstance(raw_filters, str):
        raw_filters = [raw_filters]
    raw_facets = params.get("facets", params.get("facet"))
    if isinstance(raw_facets, str):
        raw_facets = [raw_facets]
    if raw_facets is not None and not isinstance(raw_facets, list):
        raise InvalidQuery("facets must be a list of field names")
    if image is None and params.get("image_base64"):
        try:
            image = base64.b64decode(str(params["image_base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidQuery("image_base64 is not valid base64") from None
    return SearchRequest(
        text=text,
        image=image,
        like=like,
        filters=parse_filters(raw_filters),
        facets=parse_facets(raw_facets),
        k=_int(params.get("k"), "k", 10),
        offset=_int(params.get("offset"), "offset", 0),
    )


def create_app(settings: Settings, *, engine: Engine | None = None) -> Starlette:
    """The Starlette app. Pass `engine` to share an open one (tests); otherwise it opens in the lifespan."""
    state: dict[str, Engine] = {}
    limit = settings.api.max_upload_bytes

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = engine is None
        state["engine"] = engine if engine is not None else await run_in_threadpool(Engine.open, settings)
        if own:  # load models now: the first request should not pay for it, and /health should be true
            await run_in_threadpool(state["engine"].components, load=True)
        try:
            yield
        finally:
            if own:
                await run_in_threadpool(state["engine"].close)

    def eng() -> Engine:
        return state["engine"]

    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)

    async def search_get(request: Request) -> Response:
        params: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in ("filter", "filters", "facet", "facets"):
                params.setdefault(key, []).append(value)
            else:
                params[key] = value
        req = _search_request(params, None)
        return JSONResponse((await call(run_search, eng(), req)).to_dict())

    async def search_post(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await _form(request, limit)
            params: dict[str, Any] = {}
            image: bytes | None = None
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key != "image":
                        raise InvalidQuery(f"unexpected file field {key!r}; upload the query image as 'image'")
                    image = await value.read()
                elif key in ("filter", "filters", "facet", "facets"):
                    params.setdefault(key, []).append(value)
                else:
                    params[key] = value
            req = _search_request(params, image)
        else:
            payload = _json_object(await _read_body(request, limit), "request body must be a JSON object")
            req = _search_request(payload, None)
        return JSONResponse((await call(run_search, eng(), req)).to_dict())

    async def images_post(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise BadRequest("upload images as multipart/form-data, one or more 'file' fields")
        form = await _form(request, limit)
        uploads = [(value.filename or "upload", await value.read()) for _k, value in _files(form)]
        if not uploads:
            raise BadRequest("no file in the upload; send one or more 'file' fields")
        sources = await call(_stage_uploads, eng(), uploads)
        try:
            report = await call(ingest_sources, eng(), sources, total=len(sources))
        finally:
            await call(_discard_unindexed, eng(), sources)
        if len(report.failed) == len(sources):
            reasons = "; ".join(f"{f.path}: {f.reason}" for f in report.failed)
            raise ImageError(f"no image could be ingested: {reasons}")
        body = report.to_dict()
        body["failed"] = [{"file": f.path, "reason": f.reason} for f in report.failed]
        body["ids"] = report.ids
        return JSONResponse(body, status_code=201 if report.added or report.replaced else 200)

    async def image_get(request: Request) -> Response:
        doc = await call(eng().get, request.path_params["id"])
        return JSONResponse(doc.to_dict())

    async def image_thumbnail(request: Request) -> Response:
        data = await call(_thumbnail, eng(), request.path_params["id"])
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    async def image_delete(request: Request) -> Response:
        doc_id = request.path_params["id"]
        removed = await call(eng().delete, [doc_id])
        if not removed:
            raise NotFound(f"no image with id {doc_id!r}")
        return JSONResponse({"deleted": doc_id})

    async def clicks_post(request: Request) -> Response:
        body = await _read_body(request, 64 * 1024)
        payload = _json_object(body or b"null", 'send a JSON object {"query_id": ..., "id": ...}')
        click = await call(record_click, eng(), payload)
        return JSONResponse(
            {"recorded": True, "query_id": click.query_id, "id": click.doc_id, "position": click.position},
            status_code=201,
        )

    async def health(request: Request) -> Response:
        components = await call(eng().components)
        documents = int(await call(eng().store.count))
        degraded = any(c["status"] == "missing" for c in components)
        body = {
            "status": "degraded" if degraded else "ok",
            "version": __version__,
            "documents": documents,
            "components": {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in components},
        }
        return JSONResponse(body)

    async def stats(request: Request) -> Response:
        return JSONResponse(await call(eng().stats))

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec())

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ImgSearchError):
            return error_response(exc)
        if isinstance(exc, HTTPException):
            kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            message = {
                404: f"no route {request.url.path}; see GET /openapi.json",
                405: f"{request.method} is not allowed on {request.url.path}",
            }.get(exc.status_code, exc.detail)
            return JSONResponse(
                {"error": {"type": kind, "message": message, "status": exc.status_code}}, status_code=exc.status_code
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "error": {
                    "type": "internal_error",
                    "status": 500,
                    "message": f"internal error ({type(exc).__name__}); see the server log",
                }
            },
            status_code=500,
        )

    def closing(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """Close the request (and so any uploaded temp files of its form) however the handler ends."""

        async def wrapper(request: Request) -> Response:
            try:
                return await handler(request)
            finally:
                await request.close()

        return wrapper

    routes = [
        Route("/search", search_get, methods=["GET"]),
        Route("/search", closing(search_post), methods=["POST"]),
        Route("/images", closing(images_post), methods=["POST"]),
        Route("/images/{id}", image_get, methods=["GET"]),
        Route("/images/{id}", image_delete, methods=["DELETE"]),
        Route("/images/{id}/thumbnail", image_thumbnail, methods=["GET"]),
        Route("/clicks", clicks_post, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    # ImgSearchError and HTTPException are answered by the exception middleware; `Exception` goes to the
    # outermost error middleware, which re-raises after answering, so it only sees genuine 500s.
    handlers: dict[Any, Callable[..., Any]] = {ImgSearchError: on_error, HTTPException: on_error, Exception: on_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def record_click(engine: Engine, payload: dict[str, Any]) -> Click:
    """Validate and record a click on a hit of a recorded search; raises BadRequest or NotFound."""
    from datetime import datetime

    unknown = set(payload) - {"query_id", "id", "position"}
    if unknown:
        raise BadRequest(f"unknown click field(s) {sorted(unknown)}; send query_id, id and optionally position")
    query_id, doc_id = payload.get("query_id"), payload.get("id")
    if not isinstance(query_id, str) or not isinstance(doc_id, str):
        raise BadRequest("a click needs query_id and id, both strings (from a search response)")
    impression = engine.store.get_impression(query_id)
    if impression is None:
        raise NotFound(f"no recorded search with query_id {query_id!r}")
    shown = {item["id"]: item["position"] for item in impression.shown}
    if doc_id not in shown:
        raise BadRequest(f"image {doc_id!r} was not among the hits shown for query {query_id!r}")
    position = payload.get("position", shown[doc_id])
    if not isinstance(position, int) or isinstance(position, bool) or position != shown[doc_id]:
        raise BadRequest(f"position must be {shown[doc_id]} (where {doc_id!r} was shown), got {position!r}")
    click = Click(query_id=query_id, doc_id=doc_id, position=position, ts=datetime.now())
    engine.store.record_click(click)
    return click


def _files(form: Any) -> list[tuple[str, UploadFile]]:
    return [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]


def _stage_uploads(engine: Engine, uploads: list[tuple[str, bytes]]) -> list[Source]:
    """Keep each new upload's original under upload_dir (thumbnails and re-enrichment need it).

    Bytes that are already indexed are not stored again: they ingest as unchanged.
    """
    known = engine.store.existing([content_id(data) for _, data in uploads])
    sources = []
    for filename, data in uploads:
        doc_id = content_id(data)
        if doc_id in known:
            sources.append(Source(path=None, data=data, name=filename))
            continue
        suffix = "".join(c for c in (filename.rsplit(".", 1)[-1] if "." in filename else "") if c.isalnum())[:8]
        engine.settings.upload_dir.mkdir(parents=True, exist_ok=True)
        path = engine.settings.upload_dir / f"{doc_id}.{suffix.lower() or 'bin'}"
        if not path.exists():
            path.write_bytes(data)
        sources.append(Source(path=str(path.resolve()), data=data, name=filename))
    return sources


def _discard_unindexed(engine: Engine, sources: list[Source]) -> None:
    """Remove stored upload files whose image did not make it into the index."""
    staged = {content_id(s.data): s.path for s in sources if s.path and s.data is not None}
    for doc_id in set(staged) - engine.store.existing(list(staged)):
        with contextlib.suppress(OSError):
            os.remove(staged[doc_id])


def _thumbnail(engine: Engine, doc_id: str) -> bytes:
    doc = engine.get(doc_id)
    settings = engine.settings
    cached = settings.thumbnail_dir / f"{doc_id}-{settings.api.thumbnail_size}.jpg"
    if cached.exists():
        return cached.read_bytes()
    if not doc.path:
        raise NotFound(f"image {doc_id!r} has no stored file to make a thumbnail from")
    try:
        with open(doc.path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise NotFound(f"the file of image {doc_id!r} is gone ({doc.path}): re-ingest or delete it") from exc
    thumb = thumbnail_jpeg(data, size=settings.api.thumbnail_size, max_pixels=settings.max_image_pixels)
    settings.thumbnail_dir.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(thumb)
    return thumb
