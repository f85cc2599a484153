"""Ingest pipeline: paths -> bytes -> id -> (skip if known) -> safe decode -> enrichers -> store + Faiss.

Batches are committed to the store in one transaction each, then added to the vector
indexes; a run killed at any point leaves the store consistent, and the next start
reconciles Faiss with it. Re-ingesting the same bytes is a no-op; a changed file at a known
path replaces the old document. One bad file is reported with its path and reason and the
batch carries on.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import Empty, Queue
from typing import TYPE_CHECKING, Any

import cv2

from engine.documents import DecodedImage, Document, content_id, orientation_of
from engine.errors import ImgSearchError
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
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

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


def new_document(
    data: bytes, decoded: DecodedImage, *, path: str | None, entry: ManifestEntry | None, doc_id: str | None = None
) -> Document:
    """The document of a decoded image before enrichment: file facts and manifest fields."""
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
    return doc


def working_copy(decoded: DecodedImage, max_side: int) -> DecodedImage:
    """The image enrichers see: at most `max_side` pixels on its long side (memory stays bounded)."""
    height, width = decoded.pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return decoded
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    pixels = cv2.resize(decoded.pixels, size, interpolation=cv2.INTER_AREA)
    return DecodedImage(
        pixels=pixels, format=decoded.format, orientation_tag=decoded.orientation_tag, taken_at=decoded.taken_at
    )


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
    """Ingest sources in batches; returns what happened to each (failures never abort the run).

    With `settings.pipeline`, the next batch is read and decoded in a background thread while the
    enrichers (models) work on the current one.
    """
    report = IngestReport()
    start = time.perf_counter()
    bar = Progress(total or 0, progress)
    workers = max(1, engine.settings.workers)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
            prepared: Iterator[Prepared] = (
                _prepare(engine, batch, pool) for batch in _batches(sources, engine.settings.batch_size)
            )
            if engine.settings.pipeline:
                prepared = _prefetch(prepared)
            for batch in prepared:
                _finish(engine, batch, report, on_failure)
                bar.update(batch.size, len(report.failed))
    finally:
        bar.close()
        engine.save()
        report.seconds = time.perf_counter() - start
    return report


def reindex_stale(engine: Engine, *, progress: bool = False) -> IngestReport:
    """Re-run the enrichers whose version differs from (or is missing in) a document's; only those.

    Needs each document's file at its recorded path; a missing file is reported, the rest go on.
    """
    report = IngestReport()
    started = time.perf_counter()
    current = {e.name: e.version for e in engine.enrichers if engine.enricher(e.name) is not None}
    ids = engine.store.filter_ids([])
    bar = Progress(len(ids), progress)
    settings = engine.settings
    try:
        for offset in range(0, len(ids), settings.batch_size):
            docs = list(engine.store.get(ids[offset : offset + settings.batch_size]).values())
            work: list[tuple[Document, DecodedImage, set[str]]] = []
            for doc in docs:
                stale = {name for name, version in current.items() if doc.enrichments.get(name) != version}
                if not stale:
                    report.unchanged += 1
                    continue
                data, error = _read(Source(doc.path), settings.max_file_bytes) if doc.path else (None, "no file path")
                if data is None:
                    report.failed.append(IngestFailure(doc.path or doc.id, f"cannot re-enrich: {error}"))
                    continue
                try:
                    decoded = decode_image(data, max_pixels=settings.max_image_pixels)
                except ImgSearchError as exc:
                    report.failed.append(IngestFailure(doc.path or doc.id, exc.message))
                    continue
                work.append((doc, working_copy(decoded, settings.enrich_max_side), stale))
            for names in {frozenset(stale) for _, _, stale in work}:
                group = [(doc, image) for doc, image, stale in work if stale == names]
                broken = engine.enrich_batch([im for _, im in group], [d for d, _ in group], only=set(names))
                for i, (doc, _) in enumerate(group):
                    if i in broken:
                        report.failed.append(IngestFailure(doc.path or doc.id, broken[i]))
                fixed = [doc for i, (doc, _) in enumerate(group) if i not in broken]
                engine.add_documents(fixed)
                report.replaced += len(fixed)
                report.ids.extend(d.id for d in fixed)
            report.seen += len(docs)
            bar.update(len(docs), len(report.failed))
    finally:
        bar.close()
        engine.save()
        report.seconds = time.perf_counter() - started
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


@dataclass(slots=True)
class Prepared:
    """A batch after reading, hashing, de-duplication and decoding (no enrichment yet)."""

    size: int
    failures: list[tuple[Source, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    fresh: list[tuple[Source, Document, DecodedImage]] = field(default_factory=list)
    copies: dict[str, list[Source]] = field(default_factory=dict)  # later copies of bytes first seen here
    seconds: dict[str, float] = field(default_factory=dict)


def _batches(sources: Iterable[Source], size: int) -> Iterator[list[Source]]:
    batch: list[Source] = []
    for source in sources:
        batch.append(source)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prefetch(items: Iterator[Prepared]) -> Iterator[Prepared]:
    """Produce the next item in a background thread while the caller works on the current one."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                queue.put(("item", item))
                if stop.is_set():
                    return
            queue.put(("done", None))
        except BaseException as exc:  # surfaced in the consumer
            queue.put(("error", exc))

    thread = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # let the producer finish its put and exit
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)


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


def _prepare(engine: Engine, batch: list[Source], pool: ThreadPoolExecutor) -> Prepared:
    settings = engine.settings
    out = Prepared(size=len(batch))
    started = time.perf_counter()
    read = list(pool.map(lambda s: _read(s, settings.max_file_bytes), batch))
    pending: list[tuple[Source, bytes, str]] = []
    for source, (data, error) in zip(batch, read, strict=True):
        if data is None:
            out.failures.append((source, error or "unreadable"))
        else:
            pending.append((source, data, content_id(data)))
    known = engine.store.existing([doc_id for _, _, doc_id in pending])
    fresh: list[tuple[Source, bytes, str]] = []
    for source, data, doc_id in pending:
        if doc_id in known:
            out.unchanged.append(doc_id)
        elif doc_id in out.copies:
            out.copies[doc_id].append(source)
        else:
            out.copies[doc_id] = []
            fresh.append((source, data, doc_id))
    out.seconds["read"] = time.perf_counter() - started

    def decode(item: tuple[Source, bytes, str]) -> tuple[Document, DecodedImage] | str:
        source, data, doc_id = item
        try:
            decoded = decode_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes)
        except ImgSearchError as exc:
            return exc.message
        doc = new_document(data, decoded, path=source.path, entry=source.entry, doc_id=doc_id)
        return doc, working_copy(decoded, settings.enrich_max_side)

    started = time.perf_counter()
    for (source, _, doc_id), result in zip(fresh, pool.map(decode, fresh), strict=True):
        if isinstance(result, str):
            out.failures.append((source, result))
            out.failures.extend((copy, result) for copy in out.copies.pop(doc_id))  # same bytes, same fault
        else:
            out.fresh.append((source, *result))
    out.seconds["decode"] = time.perf_counter() - started
    return out


def _finish(
    engine: Engine, batch: Prepared, report: IngestReport, on_failure: Callable[[IngestFailure], None] | None
) -> None:
    def fail(source: Source, reason: str) -> None:
        failure = IngestFailure(source.name or source.path or "<upload>", reason)
        report.failed.append(failure)
        log.warning("skipped %s: %s", failure.path, reason)
        if on_failure:
            on_failure(failure)

    report.seen += batch.size
    for source, reason in batch.failures:
        fail(source, reason)
    report.unchanged += len(batch.unchanged)
    report.ids.extend(batch.unchanged)
    started = time.perf_counter()
    broken = engine.enrich_batch([image for _, _, image in batch.fresh], [doc for _, doc, _ in batch.fresh])
    report.add_time("enrich", time.perf_counter() - started)
    for stage, seconds in batch.seconds.items():
        report.add_time(stage, seconds)
    docs: list[Document] = []
    replaced: list[str] = []
    for i, (source, doc, _) in enumerate(batch.fresh):
        copies = batch.copies.get(doc.id, [])
        if i in broken:
            fail(source, broken[i])
            for copy in copies:
                fail(copy, broken[i])
            continue
        old = [d for d in engine.store.ids_for_path(source.path) if d != doc.id] if source.path else []
        replaced.extend(old)
        report.replaced += bool(old)
        report.added += not old
        report.unchanged += len(copies)
        report.ids.extend([doc.id] * (1 + len(copies)))
        docs.append(doc)
    started = time.perf_counter()
    engine.add_documents(docs, replaces=replaced)
    report.add_time("store", time.perf_counter() - started)
