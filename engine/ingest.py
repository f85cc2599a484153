"""Ingest pipeline: paths -> bytes -> id -> (skip if known) -> safe decode -> enrichers -> store + Faiss.

Batches are committed to the store in one transaction each, then added to the vector
indexes; a run killed at any point leaves the store consistent, and the next start
reconciles Faiss with it. Re-ingesting the same bytes is a no-op; a changed file at a known
path replaces the old document. One bad file is reported with its path and reason and the
batch carries on.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.documents import Document, content_id, orientation_of
from engine.errors import ImageError, ImgSearchError
from engine.images import IMAGE_SUFFIXES, decode_image
from engine.manifest import Manifest, ManifestEntry

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger(__name__)
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclass(slots=True)
class IngestFailure:
    path: str
    reason: str


@dataclass(slots=True)
class IngestReport:
    seen: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    failed: list[IngestFailure] = field(default_factory=list)
    seconds: float = 0.0
    ids: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.seen / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 2),
        }

    def summary(self) -> str:
        lines = [
            f"{self.seen} files in {self.seconds:.1f}s ({self.images_per_second:.1f} images/s): "
            f"{self.added} added, {self.replaced} replaced, {self.unchanged} unchanged, {len(self.failed)} failed"
        ]
        lines += [f"  FAILED {f.path}: {f.reason}" for f in self.failed]
        return "\n".join(lines)


@dataclass(slots=True)
class Source:
    """One image to ingest: bytes from a path (read lazily) or from an upload.

    `name` is what failures are reported under (an upload's file name); it defaults to the path.
    """

    path: str | None
    data: bytes | None = None
    entry: ManifestEntry | None = None
    name: str | None = None


def collect(inputs: Sequence[str | Path]) -> tuple[list[Path], list[IngestFailure]]:
    """Expand files, folders (recursive, image suffixes only) and globs into a sorted, de-duplicated list.

    Inputs that do not exist, and globs that match nothing, come back as failures.
    """
    found: dict[str, Path] = {}
    failures: list[IngestFailure] = []
    for raw in inputs:
        text = str(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            for root, _, names in os.walk(path, followlinks=False):
                for name in names:
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        p = Path(root) / name
                        found.setdefault(str(p.resolve()), p)
        elif path.is_file():
            found.setdefault(str(path.resolve()), path)
        elif any(ch in text for ch in "*?["):
            matches = [Path(m) for m in glob.glob(text, recursive=True)]
            files = [m for m in matches if m.is_file()]
            if not files:
                failures.append(IngestFailure(text, "glob matched no files"))
            for m in files:
                found.setdefault(str(m.resolve()), m)
        else:
            failures.append(IngestFailure(text, "no such file or folder"))
    return [found[k] for k in sorted(found)], failures


def build_document(
    data: bytes, *, path: str | None, entry: ManifestEntry | None, engine: Engine, doc_id: str | None = None
) -> Document:
    """Decode and enrich one image into a Document; raises ImageError (with the reason) on bad input."""
    settings = engine.settings
    decoded = decode_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes)
    doc = Document(
        id=doc_id or content_id(data),
        path=path,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format.lower(),
        bytes=len(data),
        orientation=orientation_of(decoded.width, decoded.height),
        taken_at=decoded.taken_at,
        ingested_at=datetime.now(),
    )
    if entry is not None:
        doc.title, doc.caption, doc.tags = entry.title, entry.caption, list(entry.tags)
        doc.licence, doc.source = entry.licence, entry.source
    engine.enrich(decoded, doc)
    return doc


class Progress:
    """A tqdm bar (images/s, ETA, failures) on stderr, or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="img",
                dynamic_ncols=True,
                file=sys.stderr,
                mininterval=0.5,
                desc="ingest",
                smoothing=0.1,
            )

    def update(self, n: int, failed: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(failed=failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def ingest_sources(
    engine: Engine,
    sources: Iterable[Source],
    *,
    total: int | None = None,
    progress: bool = False,
    on_failure: Callable[[IngestFailure], None] | None = None,
) -> IngestReport:
    """Ingest sources in batches; returns what happened to each (failures never abort the run)."""
    report = IngestReport()
    start = time.perf_counter()
    bar = Progress(total or 0, progress)
    batch: list[Source] = []
    workers = max(1, engine.settings.workers)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
            for source in sources:
                batch.append(source)
                if len(batch) >= engine.settings.batch_size:
                    _ingest_batch(engine, batch, pool, report, on_failure)
                    bar.update(len(batch), len(report.failed))
                    batch = []
            if batch:
                _ingest_batch(engine, batch, pool, report, on_failure)
                bar.update(len(batch), len(report.failed))
    finally:
        bar.close()
        engine.save()
        report.seconds = time.perf_counter() - start
    return report


def ingest_paths(
    engine: Engine, inputs: Sequence[str | Path], *, manifest: Manifest | None = None, progress: bool = False
) -> IngestReport:
    """Ingest files, folders and globs (see `collect`)."""
    paths, failures = collect(inputs)
    sources = (Source(str(p.resolve()), entry=manifest.lookup(p) if manifest else None) for p in paths)
    report = ingest_sources(engine, sources, total=len(paths), progress=progress)
    report.failed[:0] = failures
    report.seen += len(failures)
    return report


def _read(source: Source, max_bytes: int) -> tuple[bytes | None, str | None]:
    if source.data is not None:
        return source.data, None
    assert source.path is not None
    try:
        size = os.path.getsize(source.path)
        if size > max_bytes:
            return None, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (max_file_bytes)"
        with open(source.path, "rb") as fh:
            return fh.read(), None
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"


def _ingest_batch(
    engine: Engine,
    batch: list[Source],
    pool: ThreadPoolExecutor,
    report: IngestReport,
    on_failure: Callable[[IngestFailure], None] | None,
) -> None:
    def fail(source: Source, reason: str) -> None:
        failure = IngestFailure(source.name or source.path or "<upload>", reason)
        report.failed.append(failure)
        log.warning("skipped %s: %s", failure.path, reason)
        if on_failure:
            on_failure(failure)

    report.seen += len(batch)
    max_bytes = engine.settings.max_file_bytes
    read = list(pool.map(lambda s: _read(s, max_bytes), batch))
    pending: list[tuple[Source, bytes, str]] = []
    for source, (data, error) in zip(batch, read, strict=True):
        if data is None:
            fail(source, error or "unreadable")
        else:
            pending.append((source, data, content_id(data)))
    known = engine.store.existing([doc_id for _, _, doc_id in pending])
    fresh: list[tuple[Source, bytes, str]] = []
    copies: dict[str, list[Source]] = {}  # later copies of bytes first seen in this batch
    for source, data, doc_id in pending:
        if doc_id in known:
            report.unchanged += 1
            report.ids.append(doc_id)
        elif doc_id in copies:
            copies[doc_id].append(source)
        else:
            copies[doc_id] = []
            fresh.append((source, data, doc_id))

    def build(item: tuple[Source, bytes, str]) -> Document | str:
        source, data, doc_id = item
        try:
            return build_document(data, path=source.path, entry=source.entry, engine=engine, doc_id=doc_id)
        except ImageError as exc:
            return exc.message
        except ImgSearchError as exc:
            return exc.message
        except Exception as exc:  # an enricher bug must not lose the rest of the batch
            log.exception("enrichment failed for %s", source.path)
            return f"enrichment failed: {type(exc).__name__}: {exc}"

    docs: list[Document] = []
    replaced: list[str] = []
    for (source, _, doc_id), result in zip(fresh, pool.map(build, fresh), strict=True):
        if isinstance(result, str):
            fail(source, result)
            for copy in copies[doc_id]:  # the same bytes fail the same way
                fail(copy, result)
            continue
        report.unchanged += len(copies[doc_id])
        report.ids.extend(doc_id for _ in copies[doc_id])
        old = [i for i in engine.store.ids_for_path(source.path) if i != doc_id] if source.path else []
        replaced.extend(old)
        report.replaced += bool(old)
        report.added += not old
        report.ids.append(doc_id)
        docs.append(result)
    engine.add_documents(docs, replaces=replaced)
