"""End to end: `/search` latency and throughput over HTTP, against the real server on loopback.

The server is `imgsearch serve` (run as `python -m engine.cli serve`, one uvicorn process) on a copy of a
100k-document index; the load generator is this process: asyncio + one `httpx.AsyncClient` with N
concurrent workers, each keeping one keep-alive connection and sending its next request as soon as the
previous answer is read (closed loop, no think time). Each (query type x clients) pair runs for
`--duration` seconds after a short untimed warm-up on the same connections.

Query types:
  * text      `GET /search?q=...`: 1-3 words drawn by corpus frequency (text_search's "frequent" mix)
  * filtered  the same kind of text query plus one filter (format=png, colour=red, width>=3000,
              orientation=portrait, in rotation)
  * facets    no text: one filter, browse the filtered set (newest first) with colour/format/orientation
              facet counts
  * image     `POST /search` multipart with a real Imagenette JPEG as `image` (reverse image search: the
              server decodes it, runs the colour and pHash enrichers, searches the colour vectors in Faiss
              and the pHash index, and fuses the legs)

The corpus: the engine cannot enrich 100k real images here (there are ~4k, and documents are content
hashed), so documents are generated the way `benchmarks.text_search` generates them (Zipf pseudo-word
titles, captions, tags; format, size), and each gets the real colour features of a random Imagenette
image, enriched once by the engine's own colour and pHash enrichers: its named colours (filters, facets),
its colour histogram plus small Gaussian noise (the Faiss `colour` vectors) and its pHash with a few
random bits flipped (near duplicates by Hamming distance). Documents go in through `Engine.add_documents`,
so the store and the Faiss indexes are built as an ingest builds them (exact below 50k vectors, IVF above).
The corpus is cached under `benchmarks/.cache/` and copied to a temporary directory for each run (the
server records an impression per search; the cached copy stays clean).

    .venv/bin/python -m benchmarks.e2e [--docs 100000] [--duration 60] [--clients 1 8 32]
                                       [--types text filtered facets image] [--no-markdown] [--no-charts]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.charts import CHART_DIR, chart, link
from benchmarks.report import ROOT, SHARED_DATA, add_markdown_args, fmt, machine, percentile, table, write_report
from benchmarks.text_search import generate_docs, make_queries, vocabulary, zipf_p
from engine.documents import ColourShare, Document, orientation_of
from engine.engine import Engine
from engine.images import decode_image
from engine.ingest import new_document, working_copy
from engine.settings import SearchSettings, Settings

CORPUS_VERSION = 1
CACHE_DIR = ROOT / "benchmarks" / ".cache"
IMAGENETTE = SHARED_DATA / "imagenette-val"
ENRICHERS = ["colour", "phash"]
QUERY_TYPES = ("text", "filtered", "facets", "image")
FILTERS = ("format=png", "colour=red", "width>=3000", "orientation=portrait")
FACETS = ("colour", "format", "orientation")
K = 10


# -- corpus --------------------------------------------------------------------------------------
@dataclass(slots=True)
class Pool:
    """Real images enriched by the engine: what synthetic documents borrow their image features from."""

    paths: list[Path]
    colour: np.ndarray  # (n, 128) colour histograms as the colour enricher writes them
    colours: list[list[ColourShare]]
    phash: list[int]


def image_files(root: Path, limit: int | None, seed: int) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    if not files:
        raise SystemExit(f"no images under {root} (the shared Imagenette set); pass --images-dir")
    if limit is not None and limit < len(files):
        rng = np.random.default_rng(seed)
        files = [files[i] for i in sorted(rng.choice(len(files), size=limit, replace=False))]
    return files


def enrich_pool(engine: Engine, paths: Sequence[Path]) -> Pool:
    """Decode each file and run the engine's enrichers on it, exactly as an upload is enriched."""
    vecs: list[np.ndarray] = []
    colours: list[list[ColourShare]] = []
    hashes: list[int] = []
    s = engine.settings
    started = time.perf_counter()
    for n, path in enumerate(paths, start=1):
        data = path.read_bytes()
        decoded = decode_image(data, max_pixels=s.max_image_pixels, max_bytes=s.max_file_bytes)
        doc = new_document(data, decoded, path=str(path), entry=None)
        engine.enrich(working_copy(decoded, s.enrich_max_side), doc)
        if "colour" not in doc.vectors or doc.phash is None:
            raise SystemExit(f"the colour and pHash enrichers gave no features for {path}")
        vecs.append(doc.vectors["colour"])
        colours.append(list(doc.colours))
        hashes.append(int(doc.phash, 16))
        if n % 500 == 0 or n == len(paths):
            rate = n / (time.perf_counter() - started)
            print(f"  enriched {n:,}/{len(paths):,} real images ({rate:,.0f}/s)", flush=True)
    return Pool(list(paths), np.stack(vecs).astype(np.float32), colours, hashes)


def attach_image_features(
    docs: Sequence[Document], pool: Pool, rng: np.random.Generator, noise: float, max_flips: int, versions: dict
) -> None:
    """Give each document the colour features of a random pool image (noisy vector, flipped pHash bits)."""
    src = rng.integers(0, len(pool.paths), size=len(docs))
    vecs = pool.colour[src] + rng.normal(0.0, noise, size=(len(docs), pool.colour.shape[1])).astype(np.float32)
    vecs = np.clip(vecs, 0.0, None)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    flips = rng.integers(0, max_flips + 1, size=len(docs))
    for doc, i, vec, nflip in zip(docs, src, vecs, flips, strict=True):
        value = pool.phash[int(i)]
        for bit in rng.choice(64, size=int(nflip), replace=False):
            value ^= 1 << int(bit)
        doc.vectors["colour"] = vec.astype(np.float32)
        doc.colours = list(pool.colours[int(i)])
        doc.phash = f"{value:016x}"
        doc.orientation = orientation_of(doc.width, doc.height)
        doc.enrichments = dict(versions)


def corpus_spec(args: argparse.Namespace, images: int) -> dict[str, Any]:
    return {
        "version": CORPUS_VERSION,
        "docs": args.docs,
        "seed": args.seed,
        "vocab": args.vocab,
        "zipf": args.zipf,
        "images": images,
        "noise": args.noise,
        "max_flips": args.max_flips,
    }


def corpus_dir(args: argparse.Namespace, images: int) -> Path:
    spec = corpus_spec(args, images)
    name = "e2e-" + "-".join(f"{k}{v}" for k, v in spec.items())
    return Path(args.cache_dir) / name


@functools.cache
def search_settings() -> SearchSettings:
    """The query-time settings the server sees (defaults, or IMGSEARCH_SEARCH__* from the environment)."""
    return Settings(enrichers=list(ENRICHERS)).search


def build_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, enrichers=list(ENRICHERS))


def build_corpus(args: argparse.Namespace, files: Sequence[Path]) -> tuple[Path, dict[str, Any]]:
    """The cached corpus directory for these arguments (built now when absent) and its build record."""
    directory = corpus_dir(args, len(files))
    marker = directory / "corpus.json"
    spec = corpus_spec(args, len(files))
    if marker.exists():
        record = json.loads(marker.read_text())
        if record.get("spec") == spec:
            print(f"corpus: cached at {directory} (built in {record['build_s']:.0f}s)", flush=True)
            return directory, record
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    print(f"corpus: building {args.docs:,} documents in {directory}", flush=True)
    started = time.perf_counter()
    with Engine.open(build_settings(directory)) as engine:
        pool = enrich_pool(engine, files)
        versions = {e.name: e.version for e in engine.enrichers}
        vocab = vocabulary(args.vocab, np.random.default_rng(args.seed))
        p = zipf_p(len(vocab), args.zipf)
        rng = np.random.default_rng(args.seed + 1)
        t0 = time.perf_counter()
        for start in range(0, args.docs, args.batch):
            docs = generate_docs(min(args.batch, args.docs - start), vocab, p, rng, start)
            attach_image_features(docs, pool, rng, args.noise, args.max_flips, versions)
            engine.add_documents(docs)
            done = start + len(docs)
            elapsed = time.perf_counter() - t0
            rate = done / elapsed
            print(
                f"  {done:,}/{args.docs:,} documents ({rate:,.0f} docs/s, ETA {(args.docs - done) / rate:,.0f}s)",
                flush=True,
            )
        stats = engine.stats()
    build_s = time.perf_counter() - started
    disk = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 2**20
    record = {
        "spec": spec,
        "build_s": build_s,
        "insert_docs_per_s": args.docs / (time.perf_counter() - t0),
        "disk_mib": disk,
        "vectors": stats["vectors"],
        "phash": stats["phash"],
    }
    marker.write_text(json.dumps(record, indent=1))
    print(f"corpus: {args.docs:,} documents in {build_s:.0f}s, {disk:,.0f} MiB on disk", flush=True)
    return directory, record


# -- requests ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Query:
    """One prepared request: a URL (GET), or a multipart body (POST), and what to check in its answer."""

    url: str
    body: bytes | None = None
    content_type: str | None = None
    words: tuple[str, ...] = ()
    filter: str | None = None


def _get(params: list[tuple[str, str]], **kw: Any) -> Query:
    return Query("/search?" + urllib.parse.urlencode(params), **kw)


def multipart(image: bytes, filename: str, k: int) -> tuple[bytes, str]:
    """The multipart body httpx would send for this upload, encoded once (not per request)."""
    import httpx

    request = httpx.Request("POST", "http://x/search", files={"image": (filename, image, "image/jpeg")}, data={"k": k})
    return request.read(), request.headers["content-type"]


def make_requests(qtype: str, args: argparse.Namespace, files: Sequence[Path], seed: int) -> list[Query]:
    rng = np.random.default_rng(seed)
    n = args.queries
    if qtype == "image":
        picks = rng.choice(len(files), size=min(n, len(files)), replace=False)
        out = []
        for i in picks:
            body, ctype = multipart(files[int(i)].read_bytes(), files[int(i)].name, K)
            out.append(Query("/search", body=body, content_type=ctype))
        return out
    vocab = vocabulary(args.vocab, np.random.default_rng(args.seed))
    texts = make_queries(n, vocab, zipf_p(len(vocab), args.zipf), rng)
    filters = [FILTERS[int(i)] for i in rng.integers(0, len(FILTERS), size=n)]
    if qtype == "text":
        return [_get([("q", t), ("k", str(K))], words=tuple(t.split())) for t in texts]
    if qtype == "filtered":
        return [
            _get([("q", t), ("filter", f), ("k", str(K))], words=tuple(t.split()), filter=f)
            for t, f in zip(texts, filters, strict=True)
        ]
    if qtype == "facets":
        return [_get([("filter", f), *(("facet", x) for x in FACETS), ("k", str(K))], filter=f) for f in filters]
    raise ValueError(f"unknown query type {qtype!r}")


def satisfies(hit: dict[str, Any], expr: str, min_share: float) -> bool:
    """Whether a hit (as the API returns it) passes one of FILTERS."""
    if expr == "format=png":
        return bool(hit["format"] == "png")
    if expr == "colour=red":
        return any(c["name"] == "red" and c["share"] >= min_share - 1e-4 for c in hit["colours"])
    if expr == "width>=3000":
        return bool(hit["width"] >= 3000)
    if expr == "orientation=portrait":
        return bool(hit["orientation"] == "portrait")
    raise ValueError(expr)


def check_answer(qtype: str, query: Query, body: dict[str, Any]) -> str | None:
    """What is wrong with an answer (None when it is a real answer to the query)."""
    hits = body.get("hits") or []
    if not hits:
        return "no hits"
    min_share = search_settings().colour_min_share
    if query.filter and not all(satisfies(h, query.filter, min_share) for h in hits):
        return f"a hit violates {query.filter}"
    if query.words:
        words = {w.lower() for w in query.words}
        tokens = {
            t.lower()
            for h in hits
            for t in f"{h['title']} {h['caption']} {' '.join(h['tags'])}".replace(",", " ").split()
        }
        if not words & tokens:
            return f"no hit contains any of {sorted(words)}"
    if qtype == "facets" and set(body.get("facets", {})) != set(FACETS):
        return f"facets {sorted(body.get('facets', {}))}, asked for {sorted(FACETS)}"
    if qtype == "image" and "colour" not in body.get("legs", {}):
        return f"no colour leg (legs: {body.get('legs')})"
    return None


# -- server --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`imgsearch serve` in a subprocess on a data directory; its log goes to a file beside the data."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "engine.cli", "serve", "--data-dir", str(data_dir)]
        self.command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.health: dict[str, Any] = {}
        self.start_s = 0.0

    def start(self, timeout: float = 300.0) -> None:
        import httpx

        env = {**os.environ, "IMGSEARCH_DATA_DIR": str(self.data_dir), "IMGSEARCH_ENRICHERS": json.dumps(ENRICHERS)}
        started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = started + timeout
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    r = client.get("/health")
                    if r.status_code == 200:
                        self.health = r.json()
                        break
                if time.perf_counter() > deadline:
                    self.stop()
                    raise SystemExit(f"the server did not answer /health in {timeout:.0f}s:\n{self.log_tail()}")
                time.sleep(0.2)
        self.start_s = time.perf_counter() - started

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- load generator ------------------------------------------------------------------------------
@dataclass(slots=True)
class Run:
    qtype: str
    clients: int
    duration: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, completed inside the window
    engine_ms: list[float] = field(default_factory=list)  # took_ms the server reports
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    with_hits: int = 0
    legs: Counter[str] = field(default_factory=Counter)  # answers in which each leg found something
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0  # everything else the machine did meanwhile (other processes)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return self.requests / self.duration if self.duration else 0.0

    def pct(self, q: float) -> float:
        return percentile(sorted(x * 1000 for x in self.latencies), q)

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.latencies)) * 1000 if self.latencies else float("nan")

    def engine_pct(self, q: float) -> float:
        return percentile(sorted(self.engine_ms), q)


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_machine() -> float:
    """CPU seconds all processes on the machine have been busy (Linux /proc/stat; nan elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return float("nan")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    steal_and_guests = sum(values[7:])  # steal, guest, guest_nice: not work done here (guest is also in user)
    return (sum(values) - idle - steal_and_guests) / os.sysconf("SC_CLK_TCK")


async def _load(
    base_url: str, queries: Sequence[Query], run: Run, warmup: float, duration: float, server_cpu: Callable[[], float]
) -> None:
    import httpx

    limits = httpx.Limits(max_connections=run.clients, max_keepalive_connections=run.clients)
    counter = itertools.count()

    async def worker(stop: float, record: bool) -> None:
        while time.perf_counter() < stop:
            query = queries[next(counter) % len(queries)]
            t0 = time.perf_counter()
            try:
                if query.body is None:
                    response = await client.get(query.url)
                else:
                    headers = {"content-type": query.content_type or ""}
                    response = await client.post(query.url, content=query.body, headers=headers)
                body = response.content
            except httpx.HTTPError as exc:
                t1 = time.perf_counter()
                if record and t1 <= stop:
                    run.latencies.append(t1 - t0)
                    run.errors[type(exc).__name__] += 1
                continue
            t1 = time.perf_counter()
            if not record or t1 > stop:
                continue
            run.latencies.append(t1 - t0)
            run.statuses[response.status_code] += 1
            if not 200 <= response.status_code < 300:
                run.errors[f"HTTP {response.status_code}"] += 1
                continue
            answer = json.loads(body)
            run.engine_ms.append(float(answer["took_ms"]))
            run.with_hits += bool(answer["hits"])
            run.legs.update(name for name, n in answer["legs"].items() if n)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0) as client:
        if warmup > 0:
            stop = time.perf_counter() + warmup
            await asyncio.gather(*(worker(stop, False) for _ in range(run.clients)))
        cpu0, server0, machine0 = _cpu_self(), server_cpu(), _cpu_machine()
        start = time.perf_counter()
        stop = start + duration
        await asyncio.gather(*(worker(stop, True) for _ in range(run.clients)))
        run.client_cpu_s, run.server_cpu_s = _cpu_self() - cpu0, server_cpu() - server0
        run.other_cpu_s = max(0.0, _cpu_machine() - machine0 - run.client_cpu_s - run.server_cpu_s)
    # Requests still in flight at `stop` finish after it and are not counted.
    run.duration = duration


def drive(server: Server, queries: Sequence[Query], qtype: str, clients: int, warmup: float, duration: float) -> Run:
    run = Run(qtype, clients)
    asyncio.run(_load(server.url, queries, run, warmup, duration, server.cpu_seconds))
    return run


def sanity_check(server: Server, qtype: str, queries: Sequence[Query], n: int = 5) -> tuple[int, list[str]]:
    """Send the first `n` queries one by one and check each answer; returns (good, problems)."""
    import httpx

    problems: list[str] = []
    good = 0
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        for query in queries[:n]:
            if query.body is None:
                r = client.get(query.url)
            else:
                r = client.post(query.url, content=query.body, headers={"content-type": query.content_type or ""})
            if r.status_code != 200:
                problems.append(f"{qtype} {query.url}: HTTP {r.status_code} {r.text[:200]}")
                continue
            problem = check_answer(qtype, query, r.json())
            if problem:
                problems.append(f"{qtype} {query.url}: {problem}")
            else:
                good += 1
    return good, problems


# -- report --------------------------------------------------------------------------------------
def run_rows(runs: Sequence[Run]) -> list[list[str]]:
    rows = []
    for r in runs:
        rows.append(
            [
                str(r.clients),
                f"{r.requests:,}",
                fmt(r.throughput, 1),
                fmt(r.pct(50), 1),
                fmt(r.pct(95), 1),
                fmt(r.pct(99), 1),
                fmt(r.mean_ms, 1),
                fmt(r.engine_pct(50), 1),
                f"{r.with_hits / max(1, r.requests - r.failed) * 100:.0f}%",
                f"{r.failed}" + (f" ({', '.join(f'{k}: {v}' for k, v in r.errors.items())})" if r.failed else ""),
                f"{r.client_cpu_s / r.duration:.2f} / {r.server_cpu_s / r.duration:.2f} / "
                f"{r.other_cpu_s / r.duration:.2f}",
            ]
        )
    return rows


HEADERS = [
    "clients",
    "requests",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "mean ms",
    "engine p50 ms",
    "with hits",
    "errors",
    "CPU cores: load gen / server / other",
]


def draw(runs: Sequence[Run], types: Sequence[str], clients: Sequence[int], chart_dir: Path) -> None:
    from matplotlib import ticker
    from matplotlib.lines import Line2D

    colours = dict(zip(QUERY_TYPES, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    styles: dict[int, tuple[str, Any]] = {50: ("o", "-"), 95: ("s", "--"), 99: ("^", ":")}
    title = "imgsearch /search over HTTP (loopback): latency percentiles and throughput vs concurrent clients"
    with chart("e2e_search", title, width=6.5, height=4.6, ncols=2, chart_dir=chart_dir) as (_, axes):
        lat, thr = axes
        for qtype in types:
            mine = sorted((r for r in runs if r.qtype == qtype), key=lambda r: r.clients)
            xs = [r.clients for r in mine]
            for q, (marker, line) in styles.items():
                lat.plot(xs, [r.pct(q) for r in mine], marker=marker, linestyle=line, color=colours[qtype])
            thr.plot(xs, [r.throughput for r in mine], marker="o", color=colours[qtype], label=qtype)
        for ax in axes:
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(clients))
            ax.set_xticklabels([str(c) for c in clients])
            ax.set_xlabel("concurrent clients")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.5)))
            ax.tick_params(axis="y", which="minor", labelsize=7)
        lat.set_ylabel("latency per request (ms, log scale)")
        lat.set_title("p50 (solid), p95 (dashed), p99 (dotted)", fontsize=9)
        handles = [Line2D([], [], color=colours[t], label=t) for t in types]
        handles += [Line2D([], [], color="grey", marker=m, linestyle=s, label=f"p{q}") for q, (m, s) in styles.items()]
        lat.legend(handles=handles, fontsize=8)
        thr.set_ylabel("throughput (requests/s, log scale)")
        thr.set_title("completed requests per second", fontsize=9)
        thr.legend(fontsize=8)


def _clients(n: int) -> str:
    return f"{n} client{'' if n == 1 else 's'}"


def findings(runs: Sequence[Run], types: Sequence[str], cores: int) -> list[str]:
    """Sentences read off the measurements (nothing here is asserted without a number behind it)."""
    out: list[str] = []
    for qtype in types:
        mine = sorted((r for r in runs if r.qtype == qtype and r.requests), key=lambda r: r.clients)
        if not mine:
            continue
        one, best, last = mine[0], max(mine, key=lambda r: r.throughput), mine[-1]
        flat = False
        text = (
            f"- **{qtype}**: with {_clients(one.clients)}, p50 {fmt(one.pct(50), 1)} ms, of which "
            f"{fmt(one.engine_pct(50), 1)} ms is inside `run_search` (p50 of its `took_ms`) and about "
            f"{fmt(max(0.0, one.pct(50) - one.engine_pct(50)), 1)} ms is HTTP on both ends, the JSON answer and the "
            f"threadpool hop; {fmt(one.throughput, 1)} req/s."
        )
        if len(mine) > 1:
            if best is one:
                text += f" More clients do not raise throughput ({fmt(last.throughput, 1)} req/s at {last.clients})"
            else:
                text += (
                    f" Throughput peaks at {fmt(best.throughput, 1)} req/s with {_clients(best.clients)} "
                    f"({best.throughput / one.throughput:.1f}x the {one.clients}-client rate)"
                )
                if last is not best:
                    text += f" and is {fmt(last.throughput, 1)} req/s at {last.clients}"
            prev = mine[-2]
            gain = last.throughput / prev.throughput - 1 if prev.throughput else 0.0
            growth = last.pct(50) / prev.pct(50) if prev.pct(50) else float("nan")
            text += (
                f"; from {prev.clients} to {last.clients} clients throughput changes by {gain * 100:+.0f}% while p50 "
                f"grows {growth:.1f}x and p99 reaches {fmt(last.pct(99), 0)} ms"
            )
            flat = abs(gain) < 0.15
            if flat and growth > 2:
                text += " (saturated: the added clients wait in the queue)"
            text += "."
        server = last.server_cpu_s / last.duration
        busy = (last.client_cpu_s + last.server_cpu_s + last.other_cpu_s) / last.duration
        text += (
            f" At {_clients(last.clients)} the server used {server:.2f} cores, the whole machine {busy:.2f} of {cores}"
        )
        if flat and server < 1.3 and busy < 0.85 * cores:
            text += (
                ": CPU was left idle while throughput stayed flat, so this path is limited by the one server "
                "process's serial work (consistent with Python's GIL), not by the machine"
            )
        elif busy >= 0.9 * cores:
            text += ": the machine's CPU was the limit"
        out.append(text + ".")
    cpu = [(r.client_cpu_s + r.server_cpu_s) / r.duration for r in runs if r.duration]
    shares = [r.client_cpu_s / (r.client_cpu_s + r.server_cpu_s) for r in runs if r.client_cpu_s + r.server_cpu_s]
    if cpu and shares:
        out.append(
            f"- CPU: server and load generator together used {min(cpu):.2f}-{max(cpu):.2f} of the {cores} cores "
            f"across the runs; the load generator's share of that was {min(shares) * 100:.0f}-"
            f"{max(shares) * 100:.0f}%. A server with the machine to itself would do better than these figures "
            "wherever the load generator's share is large."
        )
    others = [r.other_cpu_s / r.duration for r in runs if r.duration]
    if others and max(others) >= 0.1:
        out.append(
            f"- Other processes were busy {min(others):.2f}-{max(others):.2f} cores during the timed runs (a shared "
            "machine): where that is high, the server had less CPU than the table suggests."
        )
    images = [r for r in runs if r.qtype == "image" and r.requests - r.failed]
    if images:
        answered = sum(r.requests - r.failed for r in images)
        near = sum(r.legs["phash"] for r in images)
        out.append(
            f"- Image queries: {near / answered * 100:.0f}% of the answers had pHash near-duplicates "
            f"(Hamming distance <= {search_settings().phash_max_distance}) besides the colour neighbours."
        )
    failed = sum(r.failed for r in runs)
    total = sum(r.requests for r in runs)
    out.append(
        f"- {failed:,} of {total:,} timed requests failed"
        + (": see the errors column." if failed else "; every answer was HTTP 200.")
    )
    return out


def thread_tokens() -> int:
    import anyio
    import anyio.to_thread

    async def tokens() -> int:
        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)

    return anyio.run(tokens)


def server_description(server: Server, stats: dict[str, Any], record: dict[str, Any]) -> list[str]:
    import uvicorn

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    vectors = ", ".join(
        f"`{name}` {info['index']} ({info['kind']}, {info['count']:,} vectors, dim {info['dim']})"
        for name, info in stats["vectors"].items()
    )
    components = server.health.get("components", {})
    active = [n.split(".", 1)[1] for n, c in components.items() if n.startswith("enricher.") and c["status"] == "ready"]
    return [
        f"- Server: `imgsearch serve` (uvicorn {uvicorn.__version__}, one process, {loop} event loop, {http} "
        f"HTTP parser; blocking work in Starlette's threadpool, anyio's default of {thread_tokens()} threads); "
        f"started and answered `/health` in {server.start_s:.1f}s",
        f"- Enrichers: `IMGSEARCH_ENRICHERS={json.dumps(ENRICHERS)}` (active: {', '.join(active) or 'none'}); "
        "no CLIP, OCR or detector, so text queries have the BM25 leg only and image queries the colour, pHash "
        "(and image-text, empty here) legs",
        f"- Index: {stats['store']['documents']:,} documents in SQLite; vectors {vectors}; "
        f"{stats['phash']:,} pHashes (linear Hamming scan); {record['disk_mib']:,.0f} MiB on disk",
        f"- Corpus build: {record['build_s']:.0f}s ({record['insert_docs_per_s']:,.0f} docs/s through "
        "`Engine.add_documents`, IVF training included)",
    ]


# -- main ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--docs", type=int, default=100_000, help="documents in the index")
    parser.add_argument("--duration", type=float, default=60.0, help="timed seconds per (query type, clients)")
    parser.add_argument("--warmup", type=float, default=5.0, help="untimed seconds before each timed run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients")
    parser.add_argument("--types", nargs="+", default=list(QUERY_TYPES), choices=QUERY_TYPES, help="query types")
    parser.add_argument("--queries", type=int, default=2000, help="distinct prepared queries per type (cycled)")
    parser.add_argument("--images", type=int, default=None, help="use at most this many real images (default all)")
    parser.add_argument("--images-dir", type=Path, default=IMAGENETTE, help="real images (Imagenette val)")
    parser.add_argument("--vocab", type=int, default=20_000, help="vocabulary size (as text_search)")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of word frequencies")
    parser.add_argument("--noise", type=float, default=0.02, help="std dev of the noise added to colour vectors")
    parser.add_argument("--max-flips", type=int, default=16, help="a document's pHash differs in 0..N bits")
    parser.add_argument("--batch", type=int, default=2000, help="documents per add_documents call")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="where built corpora are kept")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG chart")
    parser.add_argument("--chart-dir", type=Path, default=CHART_DIR, help="where the chart goes")
    add_markdown_args(parser)
    return parser.parse_args(argv)


@dataclass(slots=True)
class Results:
    runs: list[Run]
    checks: dict[str, tuple[int, int]]  # per query type: (answers that passed the checks, answers checked)
    corpus: dict[str, Any]


def main(argv: list[str] | None = None) -> Results:
    args = parse_args(argv)
    info = machine()  # snapshot of machine and code revision before measuring
    files = image_files(args.images_dir, args.images, args.seed)
    corpus, record = build_corpus(args, files)

    tmp = Path(tempfile.mkdtemp(prefix="imgsearch-e2e-"))
    runs: list[Run] = []
    try:
        data_dir = tmp / "data"
        shutil.copytree(corpus, data_dir)
        server = Server(data_dir, tmp / "server.log")
        try:
            server.start()
            import httpx

            with httpx.Client(base_url=server.url, timeout=60.0) as client:
                stats = client.get("/stats").json()
            print(f"server: {server.url}, {stats['store']['documents']:,} documents, up in {server.start_s:.1f}s")
            plan = {t: make_requests(t, args, files, args.seed + 100 + i) for i, t in enumerate(args.types)}
            checks: dict[str, tuple[int, int]] = {}
            noted: list[str] = []  # what the failed checks said, for the report
            for qtype, queries in plan.items():
                good, problems = sanity_check(server, qtype, queries)
                checks[qtype] = (good, min(5, len(queries)))
                for problem in problems:
                    print(f"  check: {problem}")
                    noted.append(f"`{problem}`")
                if good == 0:
                    raise SystemExit(f"no {qtype} query got a real answer; see above")
            total = len(args.types) * len(args.clients) * (args.warmup + args.duration)
            print(f"load: {len(args.types)} types x {len(args.clients)} client counts, about {total:,.0f}s")
            for qtype in args.types:
                for clients in args.clients:
                    run = drive(server, plan[qtype], qtype, clients, args.warmup, args.duration)
                    runs.append(run)
                    print(
                        f"  {qtype:<8} {clients:>3} clients: {run.requests:>7,} requests, {run.throughput:8.1f} req/s, "
                        f"p50/p95/p99 {run.pct(50):.1f}/{run.pct(95):.1f}/{run.pct(99):.1f} ms, "
                        f"{run.failed} errors, CPU cores: load gen {run.client_cpu_s / run.duration:.2f}, "
                        f"server {run.server_cpu_s / run.duration:.2f}, other {run.other_cpu_s / run.duration:.2f}",
                        flush=True,
                    )
        finally:
            server.stop()
        described = server_description(server, stats, record)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    tables = []
    for qtype in args.types:
        rows = run_rows([r for r in runs if r.qtype == qtype])
        tables.append(f"**{qtype}** ({TYPE_NOTES[qtype]})\n\n{table(HEADERS, rows)}")
    print("\n" + "\n\n".join(tables))
    if not args.no_charts:
        draw(runs, args.types, args.clients, args.chart_dir)
    said = findings(runs, args.types, info.cores)
    print("\n" + "\n".join(said))
    command = (
        f".venv/bin/python -m benchmarks.e2e --docs {args.docs} --duration {args.duration:g} "
        f"--clients {' '.join(map(str, args.clients))} --types {' '.join(args.types)}"
    )
    chart_line = "" if args.no_charts else link("e2e_search", "latency percentiles and throughput vs clients") + "\n\n"
    body = f"""## End to end: `/search` over HTTP

Measured on {info.one_line()} with

    {command}

The real server (`imgsearch serve`) runs in a subprocess on loopback; this process is the load
generator: asyncio with one `httpx.AsyncClient` and N concurrent workers, each with its own keep-alive
connection, sending its next request as soon as the previous answer is read (closed loop, no think
time). Every (query type, clients) pair runs {args.warmup:g}s untimed, then {args.duration:g}s timed;
latency is per request from send to the last byte of the answer, throughput is requests completed inside the
window / its length (requests still in flight when it closes are not counted: when latency approaches the
window, as for slow queries at 32 clients, the counts are small and the percentiles rough), and anything but
HTTP 2xx counts as an error. "engine p50" is the `took_ms` the server reports
(time inside `run_search`); "with hits" is the share of answers with at least one hit; "CPU" is each
process's CPU time over the timed window divided by its length, in cores (`getrusage` for this process,
`/proc/PID/stat` for the server; "other" is the rest of the machine's busy time from `/proc/stat`, i.e.
other processes). **Both run on the same {info.cores}-core machine**, so the load generator
takes CPU the server would otherwise have. Before the timed runs, {sum(m for _, m in checks.values())} requests are
checked: hits exist, every hit passes the filter, text hits contain a query word, facets come back,
image queries run the colour leg ({", ".join(f"{t}: {n}/{m} passed" for t, (n, m) in checks.items())}){
        "; failed: " + "; ".join(noted) if noted else ""
    }. A selective text query under a filter may rightly have
no hits.

Corpus ({args.docs:,} documents): generated like the text benchmark (vocabulary of {args.vocab:,}
pseudo-words with Zipf(s={args.zipf:g}) frequencies; title 3-8 words, caption 8-20, tags 2-6; format
jpeg/png/webp 70/20/10%; width 320-4000, height 240-3000 px). The image features are real but borrowed:
{len(files):,} Imagenette validation images were run once through the engine's colour and pHash enrichers,
and each document took those of a random one of them: its named colours (for `colour=` filters and facets),
its 128-d colour histogram plus Gaussian noise (σ = {args.noise:g}, clipped at 0, renormalised) as the
`colour` vector, and its pHash with 0-{args.max_flips} random bits flipped. So each real image has about
{args.docs / len(files):,.0f} noisy copies in the index; image queries upload one of those real images (a
multipart POST of the original JPEG), so the pHash leg finds near-duplicates as a reverse image search
would. Text and image fields of a document are unrelated. Documents went in through
`Engine.add_documents` in batches of {args.batch:,}, so the Faiss index was built (and switched from exact
to IVF) as an ingest builds it.

{chr(10).join(described)}

{chr(10).join(said)}

{chart_line}{chr(10).join(chr(10) + t for t in tables).strip()}
"""
    write_report("e2e", body, args)
    return Results(runs, checks, record)


TYPE_NOTES = {
    "text": f"`GET /search?q=...&k={K}`, 1-3 words drawn by corpus frequency",
    "filtered": f"text as above plus one of {', '.join(f'`{f}`' for f in FILTERS)}",
    "facets": f"no text: one filter as above, browse newest first, facet counts for {', '.join(FACETS)}",
    "image": f"`POST /search` multipart upload of a real Imagenette JPEG, `k={K}`",
}


if __name__ == "__main__":
    main()
