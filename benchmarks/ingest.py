"""Ingest throughput: images/s through `ingest_paths` with the default enrichers (colour + phash).

Each run ingests the whole folder into a fresh temporary data dir (`Settings(data_dir=tmp)`), so
every image is new: read, SHA-256 id, decode, enrich, SQLite upsert, Faiss add, final index save.
Files are read once beforehand so every run sees a warm page cache. After the timed runs, one
extra instrumented run wraps each pipeline stage with a timer to show where the time goes (the
wrappers add a little overhead, so that run is not one of the timed ones).

    .venv/bin/python -m benchmarks.ingest [--runs 3] [--workers 2] [--limit N] [--no-markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import engine.ingest as ingest_module
from benchmarks.report import add_markdown_args, fmt, machine, table, write_report
from engine.engine import Engine
from engine.ingest import IngestReport, collect, ingest_paths
from engine.settings import Settings

DEFAULT_DATA = Path("/work/shared/data/imagenette-val")


@dataclass(slots=True)
class Run:
    open_s: float
    ingest_s: float
    close_s: float
    report: IngestReport
    disk_bytes: int

    @property
    def wall_s(self) -> float:
        return self.open_s + self.ingest_s + self.close_s

    @property
    def images_per_s(self) -> float:
        return self.report.seen / self.ingest_s


class StageTimer:
    """Sums wall time per stage over all calls, from any thread (so pool stages add up thread-time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.threads: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                kind = "pool" if threading.current_thread().name.startswith("ingest") else "main"
                with self._lock:
                    self.seconds[stage] += elapsed
                    self.calls[stage] += 1
                    self.threads[stage].add(kind)

        return timed


@contextlib.contextmanager
def instrumented(engine: Engine, timer: StageTimer) -> Iterator[None]:
    """Patch the ingest pipeline's steps with timing wrappers for the duration of the block."""
    with contextlib.ExitStack() as stack:
        for name, stage in (("_read", "read file"), ("content_id", "sha-256 id"), ("decode_image", "decode")):
            stack.enter_context(mock.patch.object(ingest_module, name, timer.wrap(stage, getattr(ingest_module, name))))
        for enricher in engine.enrichers:
            wrapped = timer.wrap(f"enrich: {enricher.name}", enricher.enrich)
            stack.enter_context(mock.patch.object(enricher, "enrich", wrapped))
        store = engine.store
        for name, stage in (("existing", "store: lookups"), ("ids_for_path", "store: lookups"),
                            ("upsert", "store: upsert")):
            stack.enter_context(mock.patch.object(store, name, timer.wrap(stage, getattr(store, name))))
        stack.enter_context(mock.patch.object(engine, "add_documents", timer.wrap("add_documents", engine.add_documents)))
        stack.enter_context(mock.patch.object(engine, "save", timer.wrap("save indexes", engine.save)))
        yield


def one_run(inputs: list[str], workers: int, batch_size: int, timer: StageTimer | None = None) -> Run:
    tmp = Path(tempfile.mkdtemp(prefix="imgsearch-bench-ingest-"))
    try:
        settings = Settings(data_dir=tmp, workers=workers, batch_size=batch_size)
        t0 = time.perf_counter()
        engine = Engine.open(settings)
        t1 = time.perf_counter()
        with instrumented(engine, timer) if timer else contextlib.nullcontext():
            report = ingest_paths(engine, inputs)
        t2 = time.perf_counter()
        engine.close()
        t3 = time.perf_counter()
        disk = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        return Run(open_s=t1 - t0, ingest_s=t2 - t1, close_s=t3 - t2, report=report, disk_bytes=disk)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stage_rows(timer: StageTimer, images: int, wall: float) -> list[list[str]]:
    seconds = dict(timer.seconds)
    # add_documents includes the upsert; show the rest of it as the Faiss/pHash index work.
    seconds["index: faiss + phash add"] = seconds.pop("add_documents", 0.0) - seconds.get("store: upsert", 0.0)
    timer.threads["index: faiss + phash add"] = timer.threads["add_documents"]
    total = sum(seconds.values())
    rows = [
        [stage, "+".join(sorted(timer.threads[stage])), fmt(secs, 2), fmt(1000 * secs / images, 3),
         f"{100 * secs / total:.1f}%"]
        for stage, secs in sorted(seconds.items(), key=lambda kv: -kv[1])
    ]
    rows.append(["(sum of stages)", "", fmt(total, 2), fmt(1000 * total / images, 3), "100%"])
    rows.append(["(wall clock of this run)", "", fmt(wall, 2), fmt(1000 * wall / images, 3), ""])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="image folder (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs, each into a fresh data dir")
    parser.add_argument("--workers", type=int, default=2, help="ingest threads (Settings.workers)")
    parser.add_argument("--batch-size", type=int, default=Settings.model_fields["batch_size"].default)
    parser.add_argument("--limit", type=int, default=0, help="ingest only the first N images (0 = all)")
    parser.add_argument("--no-stages", action="store_true", help="skip the instrumented per-stage run")
    add_markdown_args(parser)
    args = parser.parse_args(argv)

    paths, failures = collect([args.data])
    if failures or not paths:
        raise SystemExit(f"no images under {args.data}: {failures}")
    inputs = [str(p) for p in paths[: args.limit]] if args.limit else [str(args.data)]
    n_files = min(len(paths), args.limit) if args.limit else len(paths)
    total_bytes = sum(len(p.read_bytes()) for p in paths[:n_files])  # also warms the page cache
    print(f"{n_files} images ({total_bytes / 2**20:.1f} MiB) from {args.data}, workers={args.workers}, "
          f"batch_size={args.batch_size}, {args.runs} runs")

    runs: list[Run] = []
    for i in range(args.runs):
        run = one_run(inputs, args.workers, args.batch_size)
        r = run.report
        if r.failed or r.seen != n_files:
            raise SystemExit(f"run {i + 1}: unexpected report {r.summary()}")
        print(f"run {i + 1}: {run.ingest_s:.2f}s ingest, {run.images_per_s:.1f} images/s "
              f"({r.added} added, {r.unchanged} duplicates)")
        runs.append(run)

    run_rows = [
        [str(i + 1), fmt(r.open_s, 3), fmt(r.ingest_s, 2), fmt(r.close_s, 3), fmt(r.wall_s, 2),
         fmt(r.images_per_s, 1), str(r.report.added), str(r.report.unchanged)]
        for i, r in enumerate(runs)
    ]
    med = statistics.median(r.ingest_s for r in runs)
    med_rate = statistics.median(r.images_per_s for r in runs)
    run_rows.append(["**median**", fmt(statistics.median(r.open_s for r in runs), 3), f"**{fmt(med, 2)}**",
                     fmt(statistics.median(r.close_s for r in runs), 3),
                     fmt(statistics.median(r.wall_s for r in runs), 2), f"**{fmt(med_rate, 1)}**", "", ""])
    runs_table = table(["run", "open s", "ingest s", "close s", "wall s", "images/s", "added", "duplicates"],
                       run_rows)
    print("\n" + runs_table)

    stages_md = ""
    if not args.no_stages:
        timer = StageTimer()
        staged = one_run(inputs, args.workers, args.batch_size, timer)
        stages_table = table(["stage", "thread", "seconds", "ms/image", "share"],
                             stage_rows(timer, n_files, staged.ingest_s))
        print("\n" + stages_table)
        stages_md = (
            "\nWhere the time goes (one extra instrumented run; seconds are summed over threads, so the "
            f"pool stages can add up to more than the wall clock with {args.workers} workers):\n\n"
            + stages_table + "\n"
        )

    body = f"""## Ingest throughput

Measured on {machine().one_line()}. `{n_files}` images ({total_bytes / 2**20:.1f} MiB of JPEG) from
`{args.data}`, default enrichers (colour + phash), `workers={args.workers}`, `batch_size={args.batch_size}`,
each run into a fresh temporary data dir (warm page cache). "ingest s" is `ingest_paths` (read, hash,
decode, enrich, SQLite upsert, Faiss add, index save); "open" is `Engine.open`, "close" `Engine.close`.

**Median: {fmt(med_rate, 1)} images/s** ({fmt(med, 2)} s for {n_files} images, {fmt(1000 * med / n_files, 2)}
ms per image); store + index on disk afterwards: {runs[-1].disk_bytes / 2**20:.1f} MiB.

{runs_table}
{stages_md}
What it means: throughput is bound by the CPU work per image (JPEG decode and the colour/phash
enrichers), which the worker threads share between the machine's cores; the single-threaded
SQLite/Faiss write step per batch does not overlap with the next batch's decoding. Imagenette
images are small (about 500x375), so larger photos will ingest proportionally slower (decode
dominates). See the stage table for the split on this machine.
"""
    write_report("ingest", body, args)


if __name__ == "__main__":
    main()
