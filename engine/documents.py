"""Shared document types. Enrichers may import this module (and nothing else from `engine`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

ID_HEX_LENGTH = 32  # 128 bits of SHA-256: collision-free in practice, short in URLs


def content_id(data: bytes) -> str:
    """Document id: the first 128 bits of the SHA-256 of the file's bytes, as hex."""
    return hashlib.sha256(data).hexdigest()[:ID_HEX_LENGTH]


def vector_id(doc_id: str) -> int:
    """The int64 key a document has in every Faiss index: the id's first 63 bits."""
    return int(doc_id[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF


def vector_keys(doc_ids: Sequence[str]) -> np.ndarray:
    """`vector_id` of many ids at once, as int64 (vectorised: 100k ids in a few ms)."""
    if len(doc_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    raw = np.frombuffer(bytes.fromhex("".join(d[:16] for d in doc_ids)), dtype=">u8")
    return (raw & np.uint64(0x7FFF_FFFF_FFFF_FFFF)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class ColourShare:
    name: str
    share: float


@dataclass(frozen=True, slots=True)
class Box:
    """A detection box in normalised image coordinates (0..1)."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float


@dataclass(slots=True)
class Label:
    name: str
    count: int
    confidence: float
    area: float = 0.0
    boxes: list[Box] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Label:
        """The inverse of `to_json`."""
        return cls(
            data["name"],
            int(data["count"]),
            float(data["confidence"]),
            float(data.get("area", 0.0)),
            [Box(*b) for b in data.get("boxes") or []],
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (both stores): boxes as [x1, y1, x2, y2, confidence] lists."""
        return {
            "name": self.name,
            "count": self.count,
            "confidence": self.confidence,
            "area": self.area,
            "boxes": [[b.x1, b.y1, b.x2, b.y2, b.confidence] for b in self.boxes],
        }


@dataclass(slots=True)
class OcrWord:
    text: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(slots=True)
class DecodedImage:
    """A safely decoded image: RGB pixels (H, W, 3, uint8) plus what the file said about itself."""

    pixels: np.ndarray
    format: str
    orientation_tag: int
    taken_at: datetime | None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(slots=True)
class Document:
    """Everything imgsearch knows about one image. The store keeps all of it."""

    id: str
    path: str | None
    width: int
    height: int
    format: str
    bytes: int
    orientation: str = "square"
    taken_at: datetime | None = None
    title: str = ""
    caption: str = ""
    tags: list[str] = field(default_factory=list)
    licence: str = ""
    source: str = ""
    colours: list[ColourShare] = field(default_factory=list)
    phash: str | None = None
    ocr_text: str = ""
    ocr_words: list[OcrWord] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    #: extra words that find the labels (synonyms an enricher knows: "people" for person)
    label_terms: list[str] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    enrichments: dict[str, str] = field(default_factory=dict)
    ingested_at: datetime | None = None

    @property
    def has_text(self) -> bool:
        return bool(self.ocr_text.strip())

    @property
    def filename(self) -> str:
        if not self.path:
            return ""
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    def summary(self) -> dict[str, Any]:
        """JSON-ready view without vectors or OCR word boxes (what search hits carry)."""
        return {
            "id": self.id,
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "bytes": self.bytes,
            "orientation": self.orientation,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "title": self.title,
            "caption": self.caption,
            "tags": list(self.tags),
            "licence": self.licence,
            "source": self.source,
            "colours": [{"name": c.name, "share": round(c.share, 4)} for c in self.colours],
            "phash": self.phash,
            "labels": [
                {"name": lb.name, "count": lb.count, "confidence": round(lb.confidence, 4)} for lb in self.labels
            ],
            "has_text": self.has_text,
        }

    def to_dict(self) -> dict[str, Any]:
        """Full JSON-ready view (GET /images/{id}): the summary plus OCR, boxes and enricher versions."""
        out = self.summary()
        out["ocr_text"] = self.ocr_text
        out["labels"] = [
            {
                "name": lb.name,
                "count": lb.count,
                "confidence": round(lb.confidence, 4),
                "area": round(lb.area, 4),
                "boxes": [[b.x1, b.y1, b.x2, b.y2, b.confidence] for b in lb.boxes],
            }
            for lb in self.labels
        ]
        out["vectors"] = {name: int(v.shape[0]) for name, v in self.vectors.items()}
        out["enrichments"] = dict(self.enrichments)
        out["ingested_at"] = self.ingested_at.isoformat() if self.ingested_at else None
        return out


def orientation_of(width: int, height: int) -> str:
    """landscape, portrait or square (within 5%)."""
    if abs(width - height) <= 0.05 * max(width, height):
        return "square"
    return "landscape" if width > height else "portrait"
