"""Shared helpers for the benchmarks: machine info, latency statistics, memory, Markdown output.

Every benchmark owns one section of `BENCHMARKS.md`, delimited by HTML comment markers, and
rewrites only that section (plus the machine block), so the scripts can run in any order.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.demo import default_shared

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = ROOT / "BENCHMARKS.md"
SHARED_DATA = default_shared()  # ../shared/data beside the checkout, as for the demo and `imgsearch eval`
SHARED_MODEL = SHARED_DATA.parent / "models" / "yolo11n_int8_openvino_model"  # the detector ../shared lends

HEADER = """# imgsearch benchmarks

Measured with the harness in `benchmarks/` (never run by the unit tests). Reproduce from the repository
root with the project's virtualenv:

```sh
.venv/bin/python -m benchmarks.ingest         # ingest throughput on the Imagenette val images
.venv/bin/python -m benchmarks.text_search    # BM25 latency on 10k / 100k generated documents
.venv/bin/python -m benchmarks.vector_search  # Faiss latency and recall on 100k / 1M generated vectors
.venv/bin/python -m benchmarks.models         # OCR, text gate, detector, similar-image P@10, full ingest
.venv/bin/python -m benchmarks.relevance      # every `imgsearch eval` suite at full size, two enricher sets
.venv/bin/python -m benchmarks.ingest_sets    # ingest per stage and per enricher on every shared set
.venv/bin/python -m benchmarks.vector_peers   # Faiss index types vs exact vs Milvus Lite, recall vs QPS
PYTHONPATH=.bench-milvus25 .venv/bin/python -m benchmarks.vector_milvus_cpp  # C++ Milvus Lite 2.5, see --help
.venv/bin/python -m benchmarks.text_peers     # SQLite FTS5 BM25 vs bm25s at 100k / 1M documents
.venv/bin/python -m benchmarks.e2e            # /search over HTTP, 1/8/32 clients, 60 s each, 100k documents
```

The peers and charts need the `bench` extra (`pip install -e '.[bench]'`; `scripts/setup` installs it).
Charts are PNG files in `docs/benchmarks/`.

Each script takes `--help` (sizes, repetitions, `--no-markdown` for a quick run that leaves this file
alone) and rewrites only its own section below. Timings are wall-clock from `time.perf_counter`;
latencies are per single query, reported as median (p50), p95 and mean. Shared machines are noisy, so
variants that are compared with each other are measured in the same run, interleaved query by query
(in random order) or in alternating runs; compare ratios within a table rather than across runs.
"""


# -- machine -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    kernel: str
    python: str
    numpy: str
    faiss: str
    sqlite: str
    today: str
    revision: str

    def markdown(self) -> str:
        return (
            f"- Date: {self.today}\n"
            f"- CPU: {self.cpu}, {self.cores} cores available to the process\n"
            f"- RAM: {self.ram_gib:.1f} GiB; Linux {self.kernel}; no GPU used\n"
            f"- Python {self.python}, NumPy {self.numpy}, faiss-cpu {self.faiss}, SQLite {self.sqlite}\n"
            f"- Code: {self.revision}"
        )

    def one_line(self) -> str:
        return f"{self.today}, {self.cpu} x{self.cores}, {self.ram_gib:.0f} GiB RAM, code {self.revision}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def _revision() -> str:
    """Short commit of the checkout, noting uncommitted changes to the measured code (engine, enrichers)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "engine", "enrichers"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.rstrip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    changed = [line[3:] for line in dirty.splitlines()]
    if not changed:
        return f"`{commit}`"
    more = " ..." if len(changed) > 4 else ""
    return f"`{commit}` + uncommitted changes to {', '.join(changed[:4])}{more}"


@functools.cache
def machine() -> Machine:
    """Machine, versions and code revision, taken once per process: call it before measuring."""
    import faiss
    import numpy as np

    faiss_version = faiss.__version__
    try:
        options = faiss.get_compile_options().strip()
        if options:
            faiss_version += f" ({options})"
    except AttributeError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Machine(
        cpu=_cpu_model(),
        cores=cores,
        ram_gib=_ram_gib(),
        kernel=platform.release(),
        python=sys.version.split()[0],
        numpy=np.__version__,
        faiss=faiss_version,
        sqlite=sqlite3.sqlite_version,
        today=date.today().isoformat(),
        revision=_revision(),
    )


# -- statistics ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Latency:
    """Latency summary in milliseconds."""

    p50: float
    p95: float
    p99: float
    mean: float
    n: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(
            p50=percentile(ms, 50), p95=percentile(ms, 95), p99=percentile(ms, 99), mean=statistics.fmean(ms), n=len(ms)
        )

    @property
    def qps(self) -> float:
        """Queries per second of one thread issuing them back to back."""
        return 1000.0 / self.mean


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * pct / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


# -- memory --------------------------------------------------------------------------------------
def _status_kib(key: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib() -> float:
    """Resident set size of this process now."""
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """Peak resident set size since start or since the last `reset_peak_rss`."""
    return _status_kib("VmHWM") / 1024


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter for this process (Linux; silently ignored elsewhere)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


# -- Markdown ------------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text on a terminal)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- benchmarks:{name}:begin -->", f"<!-- benchmarks:{name}:end -->"


def update_section(name: str, body: str, path: Path = MARKDOWN) -> None:
    """Replace (or append) the section `name` of the Markdown report, creating the file if needed."""
    text = path.read_text() if path.exists() else HEADER
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")


def write_report(name: str, body: str, args: argparse.Namespace) -> None:
    """Update section `name` and the machine block of the report file the arguments name (if any).

    Each section also carries its own one-line "measured on" note, so a section left over from an
    older run still says where its numbers come from.
    """
    if args.no_markdown:
        return
    path = Path(args.markdown)
    update_section("machine", "## Machine (latest run)\n\n" + machine().markdown(), path)
    update_section(name, body, path)
    print(f"\nupdated section {name!r} of {path}")


def add_markdown_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", default=str(MARKDOWN), help="report file to update (default: %(default)s)")
    parser.add_argument("--no-markdown", action="store_true", help="print results only; leave the report alone")
