"""Sidecar manifests: titles, captions, tags, licence and source for images, keyed by path.

CSV (header row) or JSONL. The key column is `path` (or `image`, `file`, `filename`); a
relative path is resolved against the manifest's folder, and a bare file name also matches
any ingested file of that name. Repeated rows for one image merge: captions are joined,
tags are unioned.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BadRequest

_KEYS = ("path", "image", "file", "filename")
_ALIASES = {"license": "licence", "description": "caption", "keywords": "tags", "name": "title"}


@dataclass(slots=True)
class ManifestEntry:
    title: str = ""
    caption: str = ""
    tags: list[str] = field(default_factory=list)
    licence: str = ""
    source: str = ""

    def merge(self, row: dict[str, Any]) -> None:
        for key in ("title", "licence", "source"):
            value = str(row.get(key) or "").strip()
            if value and not getattr(self, key):
                setattr(self, key, value)
        caption = str(row.get("caption") or "").strip()
        if caption and caption not in self.caption:
            self.caption = f"{self.caption} | {caption}" if self.caption else caption
        for tag in _tags(row.get("tags")):
            if tag not in self.tags:
                self.tags.append(tag)


def _tags(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(t).strip() for t in raw if str(t).strip()]
    text = str(raw)
    sep = ";" if ";" in text else ","
    return [t.strip() for t in text.split(sep) if t.strip()]


class Manifest:
    def __init__(self) -> None:
        self.by_path: dict[str, ManifestEntry] = {}
        self.by_name: dict[str, ManifestEntry] = {}

    def __len__(self) -> int:
        return len(self.by_path)

    def lookup(self, path: Path) -> ManifestEntry | None:
        resolved = str(path.resolve())
        return self.by_path.get(resolved) or self.by_name.get(path.name)

    def add_row(self, base: Path, row: dict[str, Any], where: str) -> None:
        row = {_ALIASES.get(k.strip().lower(), k.strip().lower()): v for k, v in row.items() if k}
        key = next((str(row[k]).strip() for k in _KEYS if row.get(k)), "")
        if not key:
            raise BadRequest(f"{where}: no path column (one of {', '.join(_KEYS)})")
        resolved = str((base / key).resolve())
        entry = self.by_path.setdefault(resolved, ManifestEntry())
        entry.merge(row)
        self.by_name.setdefault(Path(key).name, entry)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a CSV or JSONL manifest; raises BadRequest naming the file and line on bad input."""
        manifest = cls()
        base = path.parent
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise BadRequest(f"cannot read manifest {path}: {exc}") from exc
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise BadRequest(f"{path}:{n}: each line must be a JSON object")
                manifest.add_row(base, row, f"{path}:{n}")
        else:
            for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
                manifest.add_row(base, row, f"{path}:{n}")
        return manifest
