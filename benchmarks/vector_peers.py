"""Vector leg against its peers: recall@10 vs queries/s for the engine's Faiss indexes, exact search and Milvus Lite.

Everything runs in one process, on the same data and the same queries, one query at a time (k=10), as the
engine serves a request:

  * engine, exact: `VectorIndex` with exact_threshold above n (Faiss `IndexFlatIP` behind an id map);
  * engine, IVF: `VectorIndex` with the default factory `IVF{nlist},Flat` (nlist = 4*sqrt(n)), nprobe swept;
  * engine, HNSW: `VectorIndex` with an HNSW factory (default `HNSW32,Flat`), efSearch swept;
  * Milvus Lite (the `milvus-lite` package, the embedded vector database the reference image-search systems
    use) through pymilvus `MilvusClient` on a local `.db` path in a temporary directory, the way its users
    use it: COSINE metric, rows inserted in batches, flushed, then one index at a time (FLAT, IVF_FLAT with the
    same nlist rule and nprobe sweep, HNSW with the same M and efConstruction and an ef sweep), each built by
    `create_index` + `load_collection` and searched through `MilvusClient.search`.

Data: clustered 512-d vectors from `benchmarks.vecdata.Mixture` (as `benchmarks.vector_search`); queries are
fresh samples of the same distribution; recall@10 is against exact inner-product search.

Interleaving: each query runs every configuration of a phase in a random order. Phase 1 runs all engine
configurations over all queries; each Milvus Lite index phase runs its configurations together with all engine
configurations again over the first `m` queries, so engine and Milvus timings come from the same minutes of a
shared, noisy machine (engine latencies are pooled over the phases). Milvus Lite answers far slower than Faiss
at 1M, so `m` is chosen from its measured latency to fit `--milvus-search-budget` (never under
`--milvus-min-queries`); its table rows say how many queries they used. QPS = queries / summed wall time of
that configuration's searches (one at a time, so 1 / mean latency).

    .venv/bin/python -m benchmarks.vector_peers [--sizes 100000 1000000] [--queries 200] [--no-markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from benchmarks import charts, report
from benchmarks.report import Latency, fmt, table
from benchmarks.vecdata import Mixture, doc_ids, exact_neighbours, recall_at_k
from benchmarks.vector_search import set_nprobe
from engine.settings import VectorSettings
from engine.vectors import VectorIndex

faiss: Any = _faiss  # faiss's bundled stubs are partial (no downcast_index, hnsw attributes)
DIM = 512
DEFAULTS = VectorSettings()
TARGETS = (0.90, 0.95, 0.99)
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray"]
BIG = 10_000_000
ENGINE = "engine"
MILVUS = "Milvus Lite"
COLLECTION = "bench"

Search = Callable[[int], list[str]]


# -- configurations and measurements ---------------------------------------------------------------
@dataclass(slots=True)
class Config:
    """One searchable setting of one index: a point on a recall-vs-QPS curve."""

    system: str
    series: str  # the curve: system + index type
    param: str  # "nprobe", "efSearch", "ef" or "-"
    value: int
    call: Search
    lat: list[float] = field(default_factory=list)
    hits: dict[int, list[str]] = field(default_factory=dict)

    @property
    def setting(self) -> str:
        return f"{self.param} {self.value}" if self.param != "-" else "-"

    def recall(self, truth: list[set[str]], k: int) -> float:
        rows = sorted(self.hits)
        return recall_at_k([self.hits[i] for i in rows], [truth[i] for i in rows], k)

    @property
    def queries(self) -> int:
        return len(self.hits)


@dataclass(frozen=True, slots=True)
class Point:
    """A configuration's measured result."""

    system: str
    series: str
    setting: str
    value: int  # nprobe / ef, 0 for exact
    queries: int
    p50: float
    p95: float
    qps: float
    recall: float


def point(c: Config, truth: list[set[str]], k: int) -> Point:
    s = Latency.of(c.lat)
    return Point(
        c.system, c.series, c.setting, c.value, c.queries, s.p50, s.p95, len(c.lat) / sum(c.lat), c.recall(truth, k)
    )


def interleave(configs: Sequence[Config], rows: Sequence[int], seed: int, label: str) -> None:
    """Run every configuration for every query row, in a fresh random order per query; progress with ETA."""
    rng = np.random.default_rng(seed)
    start = last = time.perf_counter()
    for done, i in enumerate(rows, 1):
        for c in rng.permutation(len(configs)):
            cfg = configs[c]
            t0 = time.perf_counter()
            found = cfg.call(i)
            cfg.lat.append(time.perf_counter() - t0)
            cfg.hits.setdefault(i, found)
        now = time.perf_counter()
        if now - last > 20 or done == len(rows):
            last = now
            eta = (now - start) / done * (len(rows) - done)
            print(f"    {label}: {done}/{len(rows)} queries, {now - start:.0f}s, ETA {eta:.0f}s", flush=True)


# -- engine ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Built:
    system: str
    index: str  # what was built, e.g. "IVF1265,Flat"
    params: str
    build_s: float
    rss_growth: float
    peak_growth: float
    note: str = ""


@contextlib.contextmanager
def measured() -> Iterator[dict[str, float]]:
    """Wall time, lasting RSS growth and peak RSS growth of the block."""
    gc.collect()
    before = report.rss_mib()
    report.reset_peak_rss()
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["s"] = time.perf_counter() - start
    out["rss"] = report.rss_mib() - before
    out["peak"] = report.peak_rss_mib() - before


def engine_index(factory: str, data: np.ndarray, ids: list[str], exact: bool) -> tuple[VectorIndex, Built]:
    n = len(ids)
    with measured() as m:
        index = VectorIndex(
            "bench",
            DIM,
            # the benchmark sizes are above the default threshold; tiny smoke-test sizes lower it
            exact_threshold=n + 1 if exact else min(DEFAULTS.exact_threshold, n - 1),
            factory=factory,
            nprobe=DEFAULTS.nprobe,
            hnsw_ef_search=DEFAULTS.hnsw_ef_search,
            exact_filter_max=DEFAULTS.exact_filter_max,
            use_gpu=False,
        )
        index.add(ids, data)
    spec = "Flat (exact)" if exact else index.spec
    params = ""
    if index.kind == "hnsw":
        params = f"efConstruction {hnsw_of(index).efConstruction}"
    built = Built(ENGINE, spec, params, m["s"], m["rss"], m["peak"])
    print(f"  engine {spec}: built in {m['s']:.1f}s ({index.kind})", flush=True)
    return index, built


def hnsw_of(index: VectorIndex) -> Any:
    """The HNSW structure inside a VectorIndex built from an HNSW factory (IndexIDMap2 -> IndexHNSW*)."""
    return faiss.downcast_index(index._index.index).hnsw


def engine_configs(index: VectorIndex, series: str, queries: np.ndarray, args: argparse.Namespace) -> list[Config]:
    k = args.k

    def searcher(setup: Callable[[int], None], value: int) -> Search:
        def call(i: int) -> list[str]:
            setup(value)
            return [doc_id for doc_id, _ in index.search(queries[i : i + 1], k)[0]]

        return call

    if index.kind == "ivf":
        return [Config(ENGINE, series, "nprobe", p, searcher(lambda v: set_nprobe(index, v), p)) for p in args.nprobes]
    if index.kind == "hnsw":
        hnsw = hnsw_of(index)

        def set_ef(ef: int) -> None:
            index.hnsw_ef_search = ef  # used by filtered searches
            hnsw.efSearch = ef  # used by unfiltered searches

        return [Config(ENGINE, series, "efSearch", ef, searcher(set_ef, ef)) for ef in args.efs]
    return [Config(ENGINE, series, "-", 0, searcher(lambda v: None, 0))]


# -- Milvus Lite -----------------------------------------------------------------------------------
def milvus_versions() -> str | None:
    """Versions as "pymilvus X, milvus-lite Y"; None when either is not importable."""
    try:
        import milvus_lite
        import pymilvus
    except ImportError:
        return None
    return f"pymilvus {pymilvus.__version__}, milvus-lite {milvus_lite.__version__}"


@contextlib.contextmanager
def quiet_milvus() -> Iterator[None]:
    """pymilvus and grpc warn about their own internals (deprecations); they are not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(pymilvus|milvus_lite|grpc)")
        yield


def nlist_rule(rows: int) -> int:
    """The engine's nlist rule (`VectorIndex._factory_string`): about 4*sqrt(rows), within [16, 65536]."""
    return int(min(65_536, max(16, round(4 * math.sqrt(max(rows, 1))))))


class Milvus:
    """A Milvus Lite collection of the benchmark vectors, through pymilvus `MilvusClient` on a local .db path."""

    def __init__(self, directory: Path, args: argparse.Namespace) -> None:
        from pymilvus import DataType, MilvusClient

        self.path = str(directory / "bench.db")
        self.args = args
        with quiet_milvus():
            self.client: Any = MilvusClient(self.path)
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
            self.client.create_collection(COLLECTION, schema=schema)
        self.indexed: str | None = None
        self.built_params: list[dict[str, int]] = []

    def insert(self, data: np.ndarray, budget_s: float) -> tuple[bool, float, float]:
        """Insert all rows in batches and flush; (done, seconds, rows/s). Gives up early, after at least
        5% of the rows (and 20 s), when the measured rate says the whole insert would overrun `budget_s`."""
        n, batch = len(data), self.args.milvus_batch
        start = last = time.perf_counter()
        with quiet_milvus():
            for s in range(0, n, batch):
                rows = [{"id": i, "vector": data[i]} for i in range(s, min(n, s + batch))]
                self.client.insert(COLLECTION, rows)
                done, now = s + len(rows), time.perf_counter()
                rate = done / (now - start)
                if now - last > 15 or done == n:
                    last = now
                    eta = (n - done) / rate
                    print(
                        f"    Milvus Lite insert: {done:,}/{n:,} rows, {rate:,.0f} rows/s, ETA {eta:.0f}s", flush=True
                    )
                if done < n and done >= 0.05 * n and now - start > 20 and n / rate > budget_s:
                    return False, now - start, rate
            self.client.flush(COLLECTION)
        self.drain()
        seconds = time.perf_counter() - start
        return True, seconds, n / seconds

    def _collection(self) -> Any:
        """The in-process milvus_lite Collection behind the gRPC server pymilvus started (benchmark introspection)."""
        from milvus_lite.server_manager import server_manager_instance

        _, db, _ = server_manager_instance._servers[os.path.abspath(self.path)]
        return db.get_collection(COLLECTION)

    def drain(self) -> None:
        """Wait for Milvus Lite's background compaction / index builds, so they do not run during timing."""
        try:
            self._collection()._wait_for_bg()
        except Exception:  # internals moved: wait until the data files stop changing instead
            previous: list[str] = []
            for _ in range(120):
                files = sorted(str(p) for p in Path(self.path).rglob("*.parquet"))
                if files == previous:
                    return
                previous = files
                time.sleep(2)

    def segments(self) -> list[int]:
        """Row counts of the collection's segments (Milvus Lite indexes each segment on its own)."""
        try:
            return sorted(int(seg.num_rows) for seg in self._collection()._segments_snapshot() if seg.num_rows)
        except Exception:
            pattern = re.compile(r"data_(\d+)_(\d+)\.parquet$")
            found = (pattern.search(p.name) for p in Path(self.path).rglob("data_*.parquet"))
            return sorted(int(m[2]) - int(m[1]) + 1 for m in found if m)

    def build(self, index_type: str, params: dict[str, int]) -> Built:
        with quiet_milvus():
            if self.indexed:
                self.client.release_collection(COLLECTION)
                self.client.drop_index(COLLECTION, "vector")
            index_params = self.client.prepare_index_params()
            # pymilvus 3 flattens `params` into top-level keys of the request, but milvus-lite reads build
            # parameters only from a "params" key (and silently uses its defaults otherwise: nlist 128, M 16,
            # efConstruction 200), so they are nested one level down to reach it.
            nested = {"params": params} if params else {}
            index_params.add_index("vector", index_type=index_type, metric_type="COSINE", params=nested)
            with measured() as m:
                self.client.create_index(COLLECTION, index_params)
                self.client.load_collection(COLLECTION)
                self.drain()
            info = self.client.describe_index(COLLECTION, "vector")
        self.indexed = index_type
        shown = ", ".join(f"{k} {v}" for k, v in params.items())
        print(
            f"  Milvus Lite {index_type} ({shown}): create_index + load in {m['s']:.1f}s; describe: {info}", flush=True
        )
        self.built_params = self.segment_index_params()
        seen = sorted({", ".join(f"{k} {v}" for k, v in p.items()) for p in self.built_params})
        note = f"Faiss index per segment, read back: {'; '.join(seen)}" if seen else ""
        return Built(MILVUS, index_type, shown, m["s"], m["rss"], m["peak"], note)

    def segment_index_params(self) -> list[dict[str, int]]:
        """What the Faiss index of each segment really is (nlist / M / efConstruction), read back from it."""
        out: list[dict[str, int]] = []
        try:
            for seg in self._collection()._segments_snapshot():
                index = getattr(seg.indexes.get("vector"), "_index", None)
                if index is None:
                    continue
                index = faiss.downcast_index(index)
                if hasattr(index, "nlist"):
                    out.append({"nlist": int(index.nlist)})
                elif hasattr(index, "hnsw"):
                    m = (index.hnsw.nb_neighbors(1) if hasattr(index.hnsw, "nb_neighbors") else 0) or 0
                    out.append({"M": int(m), "efConstruction": int(index.hnsw.efConstruction)})
        except Exception:
            return []
        return out

    def configs(
        self, series: str, param: str, values: Sequence[int], queries: np.ndarray, ids: list[str]
    ) -> list[Config]:
        k = self.args.k

        def searcher(params: dict[str, int]) -> Search:
            search_params = {"metric_type": "COSINE", "params": params}

            def call(i: int) -> list[str]:
                with quiet_milvus():
                    res = self.client.search(
                        COLLECTION,
                        data=[queries[i].tolist()],
                        limit=k,
                        search_params=search_params,
                        anns_field="vector",
                    )
                return [ids[int(hit["id"])] for hit in res[0]]

            return call

        if not values:
            return [Config(MILVUS, series, "-", 0, searcher({}))]
        return [Config(MILVUS, series, param, v, searcher({param: v})) for v in values]

    def disk_mib(self) -> float:
        return sum(p.stat().st_size for p in Path(self.path).rglob("*") if p.is_file()) / 2**20

    def close(self) -> None:
        with quiet_milvus(), contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.path)


# -- one size --------------------------------------------------------------------------------------
@dataclass(slots=True)
class SizeResult:
    n: int
    section: str
    points: list[Point]
    builds: list[Built]
    notes: list[str]
    milvus_queries: int


def run_size(n: int, mix: Mixture, args: argparse.Namespace, milvus_ok: bool) -> SizeResult:
    start = time.perf_counter()
    data, queries = mix.sample(n, seed=args.seed + 1), mix.sample(args.queries, seed=args.seed + 2)
    ids = doc_ids(n)
    truth = [{ids[j] for j in row} for row in exact_neighbours(data, queries, args.k)]
    print(f"{n:,} vectors generated, ground truth computed in {time.perf_counter() - start:.1f}s", flush=True)
    notes: list[str] = []
    builds: list[Built] = []
    configs: list[Config] = []
    for factory, exact in (("Flat", True), (DEFAULTS.factory, False), (args.hnsw_factory, False)):
        index, built = engine_index(factory, data, ids, exact)
        builds.append(built)
        label = "exact (Flat)" if exact else ("IVF" if index.kind == "ivf" else "HNSW") + f" ({built.index})"
        configs += engine_configs(index, f"{ENGINE} {label}", queries, args)
    rows = range(args.queries)
    print(f"  engine phase: {len(configs)} configurations x {args.queries} queries", flush=True)
    interleave(configs, rows, args.seed, "engine")
    engine_cfgs = list(configs)
    milvus_q = 0
    if milvus_ok and n <= args.milvus_max:
        milvus_q = run_milvus(n, data, queries, ids, engine_cfgs, configs, builds, notes, args)
    elif milvus_ok:
        notes.append(f"Milvus Lite was not run at {n:,} vectors (above --milvus-max {args.milvus_max:,}).")
    del data
    gc.collect()
    points = [point(c, truth, args.k) for c in configs]
    section = size_section(n, points, builds, notes, args, milvus_q)
    print(f"  {n:,} done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return SizeResult(n, section, points, builds, notes, milvus_q)


def run_milvus(
    n: int,
    data: np.ndarray,
    queries: np.ndarray,
    ids: list[str],
    engine_cfgs: list[Config],
    configs: list[Config],
    builds: list[Built],
    notes: list[str],
    args: argparse.Namespace,
) -> int:
    """Insert, index and search Milvus Lite; appends its configs, builds and notes. Returns the queries it used."""
    directory = Path(tempfile.mkdtemp(prefix="vector-peers-"))
    milvus: Milvus | None = None
    used = 0
    try:
        with measured() as m:
            milvus = Milvus(directory, args)
            ok, seconds, rate = milvus.insert(data, args.milvus_insert_budget)
        if not ok:
            notes.append(
                f"Milvus Lite was not measured at {n:,} vectors: it inserted {rate:,.0f} rows/s (batches of "
                f"{args.milvus_batch:,}), so the insert alone would take {n / rate / 60:.1f} min, over the "
                f"--milvus-insert-budget of {args.milvus_insert_budget / 60:.1f} min; it was stopped after "
                f"{seconds:.0f}s."
            )
            print("  " + notes[-1], flush=True)
            return 0
        segments = milvus.segments()
        seg_text = describe_segments(segments)
        builds.append(
            Built(
                MILVUS,
                "insert + flush",
                f"batches of {args.milvus_batch:,}; {seg_text}",
                seconds,
                m["rss"],
                m["peak"],
                f"{rate:,.0f} rows/s; {milvus.disk_mib():,.0f} MiB on disk",
            )
        )
        print(f"  Milvus Lite: {n:,} rows inserted + flushed in {seconds:.1f}s ({rate:,.0f} rows/s), {seg_text}")
        seg_rows = int(np.median(segments)) if segments else n
        nlist = args.milvus_nlist or nlist_rule(seg_rows)
        plans: list[tuple[str, dict[str, int], str, Sequence[int]]] = []
        for kind in args.milvus_indexes:
            if kind == "IVF_FLAT":
                plans.append((kind, {"nlist": nlist}, "nprobe", args.nprobes))
            elif kind == "HNSW":
                plans.append((kind, {"M": args.hnsw_m, "efConstruction": args.hnsw_ef_construction}, "ef", args.efs))
            else:
                plans.append((kind, {}, "-", []))
        milvus_cfgs = sum(len(p[3]) or 1 for p in plans)
        for phase, (kind, params, param, values) in enumerate(plans):
            builds.append(milvus.build(kind, params))
            series = f"{MILVUS} {kind}" + (f" (nlist {nlist}/segment)" if kind == "IVF_FLAT" else "")
            if kind == "HNSW":
                series += f" (M {args.hnsw_m})"
            mine = milvus.configs(series, param, values, queries, ids)
            if not used:
                used = milvus_queries(mine, engine_cfgs, milvus_cfgs, args)
            configs += mine
            print(
                f"  Milvus Lite {kind} phase: {len(mine)} + {len(engine_cfgs)} engine configurations x {used} queries"
            )
            interleave(mine + engine_cfgs, range(used), args.seed + 10 + phase, f"Milvus Lite {kind}")
        if used < args.queries:
            notes.append(
                f"Milvus Lite rows use the first {used} of the {args.queries} queries: at {n:,} vectors its searches "
                f"take long enough that all {args.queries} would overrun --milvus-search-budget "
                f"({args.milvus_search_budget:.0f}s for its {milvus_cfgs} configurations)."
            )
        return used
    finally:
        if milvus is not None:
            milvus.close()
        shutil.rmtree(directory, ignore_errors=True)


def describe_segments(rows: list[int]) -> str:
    if not rows:
        return "segments unknown"
    if len(rows) == 1:
        return f"1 segment of {rows[0]:,} rows"
    return f"{len(rows)} segments of {min(rows):,}-{max(rows):,} rows"


def milvus_queries(mine: list[Config], engine_cfgs: list[Config], total: int, args: argparse.Namespace) -> int:
    """How many queries the Milvus phases can afford: time a few on a middle configuration first."""
    probe = mine[len(mine) // 2]
    t0 = time.perf_counter()
    for i in range(3):
        probe.call(i)
    per_query = (time.perf_counter() - t0) / 3
    engine = sum(c.lat[-1] for c in engine_cfgs) if engine_cfgs and engine_cfgs[0].lat else 0.0
    phases = len(args.milvus_indexes)
    affordable = int(args.milvus_search_budget / (total * per_query + phases * engine))
    used = max(min(args.milvus_min_queries, args.queries), min(args.queries, affordable))
    print(f"    Milvus Lite: {per_query * 1000:.1f} ms per search -> {used} queries per configuration", flush=True)
    return used


# -- tables, chart, text ---------------------------------------------------------------------------
def build_table(builds: list[Built]) -> str:
    rows = [
        [b.system, b.index, b.params or "-", fmt(b.build_s, 1), fmt(b.rss_growth, 0), fmt(b.peak_growth, 0), b.note]
        for b in builds
    ]
    headers = ["system", "index / step", "parameters", "seconds", "RSS growth MiB", "peak growth MiB", "note"]
    return table(headers, rows)


def sweep_table(points: list[Point]) -> str:
    rows = [
        [p.series, p.setting, p.queries, fmt(p.p50, 3), fmt(p.p95, 3), fmt(p.qps, 1), f"{p.recall:.4f}"] for p in points
    ]
    return table(["system / index", "setting", "queries", "p50 ms", "p95 ms", "QPS", "recall@10"], rows)


def best_at(points: list[Point], target: float) -> Point | None:
    ok = [p for p in points if p.recall >= target]
    return max(ok, key=lambda p: p.qps) if ok else None


def series_of(points: list[Point]) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = {}
    for p in points:
        out.setdefault(p.series, []).append(p)
    return out


def matched_table(points: list[Point]) -> str:
    engine = [p for p in points if p.system == ENGINE]
    rows: list[list[object]] = []
    for target in TARGETS:
        ref = best_at(engine, target)
        for series, pts in series_of(points).items():
            b = best_at(pts, target)
            if b is None:
                top = max(p.recall for p in pts)
                rows.append([f"{target:.2f}", series, f"not reached (best {top:.4f})", "-", "-", "-", "-"])
                continue
            ratio = f"{b.qps / ref.qps:.3g}x" if ref else "-"
            rows.append([f"{target:.2f}", series, b.setting, fmt(b.qps, 1), fmt(b.p50, 3), f"{b.recall:.4f}", ratio])
    headers = ["recall target", "system / index", "fastest setting reaching it", "QPS", "p50 ms", "recall@10"]
    return table([*headers, "QPS vs engine's best"], rows)


def draw(name: str, n: int, points: list[Point]) -> None:
    """Recall@10 (x) vs QPS (y, log), one line per system and index type along its sweep; right: recall >= 0.9."""
    title = f"Recall@10 vs queries/s, {n:,} x {DIM}-d vectors, one query at a time"
    with charts.chart(name, title, width=6.5, height=4.8, ncols=2) as (_, axes):
        for zoom, ax in enumerate(axes):
            for (series, pts), colour in zip(series_of(points).items(), COLOURS, strict=False):
                pts = sorted(pts, key=lambda p: p.value)
                if zoom:
                    pts = [p for p in pts if p.recall >= 0.9]
                style = "-" if series.startswith(ENGINE) else "--"
                marker = "*" if len(pts) == 1 else "o"
                size = 10 if len(pts) == 1 else 4
                xs, ys = [p.recall for p in pts], [p.qps for p in pts]
                ax.plot(xs, ys, style, color=colour, marker=marker, markersize=size, label=series)
            ax.set_xlabel("recall@10")
            ax.set_yscale("log")
            ax.set_title("recall >= 0.9" if zoom else "whole sweep", fontsize=9)
        axes[0].set_ylabel("queries per second (log)")
        axes[0].legend(fontsize=7, loc="best")


def chart_link(name: str, alt: str) -> str:
    try:
        return charts.link(name, alt)
    except ValueError:  # chart directory outside the repository (tests)
        return f"![{alt}]({(charts.CHART_DIR / f'{name}.png').as_posix()})"


def size_section(
    n: int, points: list[Point], builds: list[Built], notes: list[str], args: argparse.Namespace, m: int
) -> str:
    name = f"vector_peers_{n}"
    draw(name, n, points)
    parts = [
        f"### {n:,} vectors",
        chart_link(name, f"recall@10 vs QPS at {n:,} vectors"),
        "Build (engine: `VectorIndex.add` of all vectors at once; Milvus Lite: insert + flush, then "
        "`create_index` + `load_collection` per index type). Memory is this process's RSS growth that stays "
        "and the peak above the RSS before the step (Milvus Lite runs in-process: pymilvus starts its gRPC "
        "server in a thread).",
        build_table(builds),
        "Matched recall: per system and index type, the fastest setting whose recall@10 reaches the target; "
        "the last column divides its QPS by the fastest engine setting (any index) reaching the same target.",
        matched_table(points),
        "Full sweep:",
        sweep_table(points),
    ]
    parts += notes
    return "\n\n".join(parts) + "\n"


def summary(results: list[SizeResult]) -> str:
    """'What the numbers say', generated from the measurements."""
    lines: list[str] = []
    for r in results:
        engine = [p for p in r.points if p.system == ENGINE]
        milvus = [p for p in r.points if p.system == MILVUS]
        exact = next((p for p in engine if p.series.startswith(f"{ENGINE} exact")), None)
        bits: list[str] = []
        for target in (0.95, 0.99):
            e, mv = best_at(engine, target), best_at(milvus, target)
            if e is None:
                continue
            best = f"{e.series.removeprefix(ENGINE + ' ')} {e.setting} ({fmt(e.qps, 0)} QPS)"
            text = f"at recall@10 >= {target:.2f} the engine's fastest is {best}"
            if mv is not None:
                text += (
                    f", Milvus Lite's is {mv.series.removeprefix(MILVUS + ' ')} {mv.setting} ({fmt(mv.qps, 1)} QPS, "
                )
                text += f"{e.qps / mv.qps:.1f}x lower)" if e.qps >= mv.qps else f"{mv.qps / e.qps:.1f}x higher)"
            elif milvus:
                text += ", Milvus Lite reaches it with no setting tried"
            bits.append(text)
        if exact and milvus:
            fastest = max(milvus, key=lambda p: p.qps)
            bits.append(
                f"Milvus Lite's fastest setting of all ({fastest.series.removeprefix(MILVUS + ' ')} "
                f"{fastest.setting}, recall {fastest.recall:.3f}) answers at {fmt(fastest.qps, 1)} QPS "
                f"(p50 {fmt(fastest.p50, 1)} ms), against {fmt(exact.qps, 1)} QPS (p50 {fmt(exact.p50, 1)} ms) "
                "for the engine's exact brute-force scan"
            )
        bits.append(build_sentence(r.builds))
        lines.append(f"- **{r.n:,}**: " + "; ".join(bits) + ".")
        lines += [f"  {note}" for note in r.notes]
    return "\n".join(lines)


def build_sentence(builds: list[Built]) -> str:
    engine = [f"{b.index} in {fmt(b.build_s, 1)}s" for b in builds if b.system == ENGINE]
    text = "build: the engine " + ", ".join(engine)
    milvus = [b for b in builds if b.system == MILVUS]
    if milvus:
        load, *indexes = milvus
        text += f"; Milvus Lite insert + flush {fmt(load.build_s, 1)}s ({load.note.split(';')[0]}, {load.params})"
        text += ", then " + ", ".join(f"{b.index} in {fmt(b.build_s, 1)}s" for b in indexes)
    return text


def big_note(sizes: Sequence[int]) -> str | None:
    """Why 10M is not in the run (unless asked for)."""
    if BIG in sizes:
        return None
    gib = BIG * DIM * 4 / 2**30
    ram = report.machine().ram_gib
    return (
        f"10,000,000 vectors were not run: the float32 vectors alone are 10M x {DIM} x 4 B = {gib:.1f} GiB, and "
        f"the run holds them beside the exact index, the IVF and HNSW indexes (about as much again each) and Milvus "
        f"Lite's copy, on a machine with {ram:.1f} GiB of RAM. Pass `--sizes 10000000` to try anyway."
    )


HEAD = """## Vector leg vs exact search and Milvus Lite (recall@10 vs QPS)

Measured on {machine}; whole run {minutes:.1f} min. faiss-cpu {faiss}; {milvus}. {dim}-d float32 vectors from
the clustered generator of `benchmarks/vecdata.py` ({mix}); {queries} queries from the same distribution, one at
a time, k={k}; recall@{k} against exact inner-product search. Systems, in one process on the same data:

- **engine**: `engine.vectors.VectorIndex` (CPU), exact (`Flat`), the default factory `IVF{{nlist}},Flat`
  (nlist = 4*sqrt(n)) with nprobe {nprobes}, and `{hnsw}` with efSearch {efs};
- **Milvus Lite** through pymilvus `MilvusClient("<tmp>/bench.db")`: COSINE metric, rows inserted {batch:,} per
  call and flushed; then, one after another on the same collection, {milvus_indexes}. Milvus Lite indexes each
  segment separately, so IVF_FLAT gets the engine's nlist rule applied per segment (4*sqrt(median segment rows))
  and searches nprobe lists in every segment; HNSW gets M {m} and efConstruction {efc} (Faiss's default, which
  the engine's factory uses) and search ef {efs}. Build parameters are passed nested under `params`: pymilvus 3
  flattens `add_index(params=...)` into top-level request keys, which milvus-lite ignores, silently building
  its defaults (nlist 128; M 16, efConstruction 200) instead; the build table shows the values read back from
  each segment's Faiss index.

Timing is interleaved query by query in random order (see `benchmarks/vector_peers.py`); engine configurations
also run inside each Milvus Lite phase and their latencies are pooled. QPS = queries / summed wall time of that
setting's single-query searches; p50 is the median latency. {big}

### What the numbers say

{summary}
"""


def main(argv: list[str] | None = None) -> list[SizeResult]:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--efs", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512], help="HNSW ef sweep")
    parser.add_argument("--hnsw-factory", default="HNSW32,Flat", help="engine HNSW factory (default: %(default)s)")
    parser.add_argument("--hnsw-m", type=int, default=32, help="Milvus Lite HNSW M (match the factory)")
    parser.add_argument("--hnsw-ef-construction", type=int, default=40, help="Milvus Lite HNSW efConstruction")
    parser.add_argument("--no-milvus", action="store_true", help="engine only")
    parser.add_argument(
        "--milvus-indexes", nargs="+", default=["IVF_FLAT", "HNSW", "FLAT"], choices=["IVF_FLAT", "HNSW", "FLAT"]
    )
    parser.add_argument("--milvus-nlist", type=int, default=0, help="Milvus IVF nlist (0: 4*sqrt(segment rows))")
    parser.add_argument("--milvus-batch", type=int, default=5_000, help="rows per Milvus insert call")
    parser.add_argument("--milvus-max", type=int, default=1_000_000, help="run Milvus Lite up to this size")
    parser.add_argument(
        "--milvus-insert-budget",
        type=float,
        default=600.0,
        help="give up on Milvus Lite at a size whose insert "
        "would take longer than this many seconds at the measured rate (default: %(default)s)",
    )
    parser.add_argument(
        "--milvus-search-budget",
        type=float,
        default=240.0,
        help="seconds of Milvus Lite searching per size; "
        "fewer queries are used when all would take longer (default: %(default)s)",
    )
    parser.add_argument("--milvus-min-queries", type=int, default=30)
    parser.add_argument("--chart-dir", type=Path, default=None, help=f"default: {charts.CHART_DIR}")
    parser.add_argument("--seed", type=int, default=0)
    report.add_markdown_args(parser)
    args = parser.parse_args(argv)
    if min(args.sizes) < 1_000:
        parser.error("--sizes must be at least 1,000")
    report.machine()  # snapshot of machine and code revision before measuring
    versions = milvus_versions()
    milvus_ok = versions is not None and not args.no_milvus
    if versions is None and not args.no_milvus:
        print("pymilvus / milvus-lite not importable: engine only (pip install -e '.[bench]')")
    note = big_note(args.sizes)
    if note:
        print(note)
    saved_dir = charts.CHART_DIR
    if args.chart_dir is not None:
        charts.CHART_DIR = args.chart_dir.resolve()
    try:
        mix = Mixture.make(dim=DIM, seed=args.seed)
        started = time.perf_counter()
        results = [run_size(n, mix, args, milvus_ok) for n in args.sizes]
        minutes = (time.perf_counter() - started) / 60
        head = HEAD.format(
            machine=report.machine().one_line(),
            minutes=minutes,
            faiss=faiss.__version__,
            milvus=versions or "Milvus Lite not installed",
            dim=DIM,
            mix=mix.describe(),
            queries=args.queries,
            k=args.k,
            nprobes=", ".join(map(str, args.nprobes)),
            hnsw=args.hnsw_factory,
            efs=", ".join(map(str, args.efs)),
            batch=args.milvus_batch,
            milvus_indexes=", ".join(args.milvus_indexes) if milvus_ok else "(not run)",
            m=args.hnsw_m,
            efc=args.hnsw_ef_construction,
            big=note or "",
            summary=summary(results),
        )
        body = "\n".join([head, *(r.section for r in results)])
        print("\n" + body)
        print(f"whole run {minutes:.1f} min")
        report.write_report("vector_peers", body, args)
        return results
    finally:
        charts.CHART_DIR = saved_dir


if __name__ == "__main__":
    main()
