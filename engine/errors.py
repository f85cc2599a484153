"""One error hierarchy. Each error knows its HTTP status and a stable `type` for the JSON shape.

Messages say what was wrong and what to do next.
"""

from __future__ import annotations


class ImgSearchError(Exception):
    """Base of every error imgsearch raises on purpose."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"error": {"type": self.type, "message": self.message, "status": self.status}}


class BadRequest(ImgSearchError):
    status = 400
    type = "bad_request"


class InvalidFilter(BadRequest):
    type = "invalid_filter"


class InvalidQuery(BadRequest):
    type = "invalid_query"


class ImageError(BadRequest):
    """An input that is not a usable image (corrupt, empty, not an image)."""

    type = "invalid_image"


class ImageTooLarge(ImageError):
    status = 413
    type = "image_too_large"


class PayloadTooLarge(BadRequest):
    status = 413
    type = "payload_too_large"


class NotFound(ImgSearchError):
    status = 404
    type = "not_found"


class StoreError(ImgSearchError):
    status = 503
    type = "store_error"


class StoreUnavailable(StoreError):
    type = "store_unavailable"


class ConfigError(ImgSearchError):
    status = 500
    type = "config_error"
