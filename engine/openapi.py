"""The OpenAPI 3.1 description served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

from engine import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_SEARCH_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "q": {"type": "string", "description": "keywords (BM25 over title, caption, tags, file name, colours, ...)"},
        "like": {"type": "string", "description": "id of an indexed image to find similar images to"},
        "image_base64": {"type": "string", "description": "query image, base64 (or upload as multipart 'image')"},
        "filters": {
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
            "description": "['colour=red', 'width>=800', 'label_count.person>=2'] or {'colour': ['red']}",
        },
        "facets": {"type": "array", "items": {"type": "string"}},
        "k": {"type": "integer", "minimum": 1, "default": 10},
        "offset": {"type": "integer", "minimum": 0, "default": 0},
    },
}


def openapi_spec() -> dict[str, Any]:
    search_response = {"$ref": "#/components/schemas/SearchResponse"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imgsearch",
            "version": __version__,
            "description": "Hybrid multimodal image search: keywords, reverse image, facet filters.",
        },
        "paths": {
            "/search": {
                "get": {
                    "summary": "Search by keywords, an indexed image (like) and filters",
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                        {"name": "like", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "filter",
                            "in": "query",
                            "schema": {"type": "array", "items": {"type": "string"}},
                            "explode": True,
                        },
                        {
                            "name": "facet",
                            "in": "query",
                            "schema": {"type": "array", "items": {"type": "string"}},
                            "explode": True,
                        },
                        {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    ],
                    "responses": {"200": _json(search_response), **_errors(400, 404)},
                },
                "post": {
                    "summary": "Search with a JSON body, or multipart with an uploaded query image",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": _SEARCH_BODY},
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "q": {"type": "string"},
                                        "filter": {"type": "array", "items": {"type": "string"}},
                                        "facet": {"type": "array", "items": {"type": "string"}},
                                        "k": {"type": "integer"},
                                        "offset": {"type": "integer"},
                                    },
                                }
                            },
                        }
                    },
                    "responses": {"200": _json(search_response), **_errors(400, 404, 413)},
                },
            },
            "/images": {
                "post": {
                    "summary": "Upload and index images (multipart, one or more 'file' fields)",
                    "requestBody": {
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                                    },
                                }
                            }
                        }
                    },
                    "responses": {
                        "201": _json({"type": "object"}, "indexed"),
                        "200": _json({"type": "object"}, "known"),
                        **_errors(400, 413),
                    },
                }
            },
            "/images/{id}": {
                "get": {
                    "summary": "One image's document",
                    "parameters": [_ID],
                    "responses": {"200": _json({"type": "object"}), **_errors(404)},
                },
                "delete": {
                    "summary": "Remove an image from the index",
                    "parameters": [_ID],
                    "responses": {"200": _json({"type": "object"}), **_errors(404)},
                },
            },
            "/images/{id}/thumbnail": {
                "get": {
                    "summary": "JPEG thumbnail",
                    "parameters": [_ID],
                    "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}}, **_errors(404)},
                }
            },
            "/clicks": {
                "post": {
                    "summary": "Record a click on a hit of a recorded search",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["query_id", "id"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "query_id": {"type": "string"},
                                        "id": {"type": "string"},
                                        "position": {"type": "integer"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {"201": _json({"type": "object"}, "recorded"), **_errors(400, 404)},
                }
            },
            "/health": {
                "get": {
                    "summary": "Readiness and each component's state",
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/stats": {
                "get": {
                    "summary": "Store, index and enricher statistics",
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "message", "status"],
                            "properties": {
                                "type": {"type": "string"},
                                "message": {"type": "string"},
                                "status": {"type": "integer"},
                            },
                        }
                    },
                },
                "SearchResponse": {
                    "type": "object",
                    "required": ["query_id", "total", "hits", "facets"],
                    "properties": {
                        "query_id": {"type": "string"},
                        "total": {"type": "integer"},
                        "total_relation": {"type": "string", "enum": ["eq", "gte"]},
                        "hits": {"type": "array", "items": {"type": "object", "required": ["id", "score", "signals"]}},
                        "facets": {"type": "object"},
                        "legs": {"type": "object"},
                        "took_ms": {"type": "number"},
                    },
                },
            }
        },
    }
