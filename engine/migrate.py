"""Move an index between backends without re-running the models: a JSONL export and its import.

The file is one JSON object per line: a header `{"imgsearch_export": 1, "documents": N, "exported_at": ...}`,
then `{"document": SOURCE}` per document (`esquery.document_source` without its derived search words:
every stored field, vectors as base64 float16), then `{"impression": ...}` and `{"click": ...}` lines.
Import upserts through `Engine.add_documents`, so the target's vector indexes follow; ids are content
hashes, so importing the same file twice leaves the same documents (clicks already present are skipped).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from engine.documents import Document
from engine.errors import BadRequest
from engine.store.base import Click, DocumentStore, Impression
from engine.store.esquery import document_from_source, document_source

if TYPE_CHECKING:
    from engine.engine import Engine

FORMAT_VERSION = 1
CHUNK = 500
#: search words `document_source` derives from the stored fields; the target store derives its own
DERIVED_FIELDS = ("filename", "colour_words", "label_words", "has_text")
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(slots=True)
class ImportReport:
    """What an import did: counts, and each line that failed with its reason."""

    documents: int = 0
    impressions: int = 0
    clicks: int = 0
    duplicate_clicks: int = 0
    expected: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"imported {self.documents} of {self.expected} document(s), {self.impressions} impression(s), "
            f"{self.clicks} click(s) ({self.duplicate_clicks} already present); {len(self.failed)} failed line(s)"
        ]
        lines += [f"  line {n}: {reason}" for n, reason in self.failed]
        return "\n".join(lines)


def _bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or not total:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="doc", desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


def export_documents(store: DocumentStore, fh: IO[str], *, progress: bool = False) -> int:
    """Write every document, impression and click of `store` to `fh` as JSONL; returns the document count."""
    ids = sorted(store.filter_ids([]))
    header = {"imgsearch_export": FORMAT_VERSION, "documents": len(ids), "exported_at": datetime.now().isoformat()}
    fh.write(json.dumps(header) + "\n")
    bar = _bar(len(ids), progress, "export")
    written = 0
    for start in range(0, len(ids), CHUNK):
        docs = store.get(ids[start : start + CHUNK])
        for doc_id in ids[start : start + CHUNK]:
            doc = docs.get(doc_id)
            if doc is None:  # deleted while we were exporting
                continue
            source = document_source(doc, colour_min_share=0.0)
            for key in DERIVED_FIELDS:
                source.pop(key, None)
            fh.write(json.dumps({"document": source}) + "\n")
            written += 1
        if bar is not None:
            bar.update(min(CHUNK, len(ids) - start))
    if bar is not None:
        bar.close()
    for imp in store.impressions():
        fh.write(json.dumps({"impression": _impression_dict(imp)}) + "\n")
    for click in store.clicks():
        fh.write(json.dumps({"click": _click_dict(click)}) + "\n")
    return written


def _impression_dict(imp: Impression) -> dict[str, Any]:
    return {"query_id": imp.query_id, "ts": imp.ts.isoformat(), "request": imp.request, "shown": imp.shown}


def _click_dict(click: Click) -> dict[str, Any]:
    return {"query_id": click.query_id, "doc_id": click.doc_id, "position": click.position, "ts": click.ts.isoformat()}


def _document(src: Any) -> Document:
    if not isinstance(src, dict):
        raise ValueError("`document` must be a JSON object")
    if not isinstance(src.get("id"), str) or not _ID.match(src["id"]):
        raise ValueError(f"document id must be 32 lowercase hex characters, got {src.get('id')!r}")
    return document_from_source(src)


def _header(lines: Iterator[tuple[int, str]]) -> dict[str, Any]:
    for n, line in lines:
        if not line.strip():
            continue
        try:
            header = json.loads(line)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or "imgsearch_export" not in header:
            raise BadRequest(
                f"line {n}: not an imgsearch export: the first line must be the header "
                f'{{"imgsearch_export": {FORMAT_VERSION}, "documents": N, ...}} that `imgsearch export` writes'
            )
        if header["imgsearch_export"] != FORMAT_VERSION:
            raise BadRequest(
                f"line {n}: export format version {header['imgsearch_export']!r} is not supported "
                f"(this imgsearch reads version {FORMAT_VERSION})"
            )
        return header
    raise BadRequest("empty file: not an imgsearch export (no header line)")


def import_documents(
    engine: Engine, fh: Iterable[str], *, batch_size: int = 500, progress: bool = False
) -> ImportReport:
    """Read an `export_documents` file into `engine`, documents in batches; returns what was imported.

    A malformed line is reported with its number and reason and the rest goes on; a missing or unknown
    header raises `BadRequest` before anything is written.
    """
    lines = enumerate(fh, start=1)
    header = _header(lines)
    report = ImportReport(expected=int(header.get("documents") or 0))
    bar = _bar(report.expected, progress, "import")
    seen_clicks = {(c.query_id, c.doc_id, c.position, c.ts) for c in engine.store.clicks()}
    batch: list[tuple[int, Document]] = []

    def flush() -> None:
        try:
            engine.add_documents([doc for _, doc in batch])
            report.documents += len(batch)
        except Exception:  # one bad document fails alone: retry the batch one by one
            for n, doc in batch:
                try:
                    engine.add_documents([doc])
                    report.documents += 1
                except Exception as exc:
                    report.failed.append((n, f"document {doc.id} not stored: {type(exc).__name__}: {exc}"))
        if bar is not None:
            bar.update(len(batch))
        batch.clear()

    last = 1
    for n, line in lines:
        last = n
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or len(record) != 1:
                raise ValueError("expected an object with one key: document, impression or click")
            kind, value = next(iter(record.items()))
            if kind == "document":
                batch.append((n, _document(value)))
                if len(batch) >= batch_size:
                    flush()
            elif kind == "impression":
                ts = datetime.fromisoformat(value["ts"])
                engine.store.record_impression(
                    Impression(str(value["query_id"]), ts, dict(value["request"]), list(value["shown"]))
                )
                report.impressions += 1
            elif kind == "click":
                click = Click(
                    str(value["query_id"]), str(value["doc_id"]), int(value["position"]),
                    datetime.fromisoformat(value["ts"]),
                )  # fmt: skip
                key = (click.query_id, click.doc_id, click.position, click.ts)
                if key in seen_clicks:
                    report.duplicate_clicks += 1
                else:
                    engine.store.record_click(click)
                    seen_clicks.add(key)
                    report.clicks += 1
            else:
                raise ValueError(f"unknown record {kind!r} (expected document, impression or click)")
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            reason = f"JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else f"{type(exc).__name__}: {exc}"
            report.failed.append((n, reason))
    if batch:
        flush()
    if bar is not None:
        bar.close()
    if report.documents + len(report.failed) < report.expected:  # each failed line may have been a document
        report.failed.append(
            (
                last + 1,
                f"end of file after {report.documents} of {report.expected} documents "
                "the header announced: the file looks truncated",
            )
        )
    engine.save()
    return report
