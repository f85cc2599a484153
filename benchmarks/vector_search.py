"""Vector search: latency, recall@10 and build cost of `engine.vectors.VectorIndex` at 100k and 1M.

Data: clustered 512-d float32 embeddings from `benchmarks.vecdata.Mixture` (uniform random vectors
would make recall meaningless); queries are fresh samples of the same distribution. Ground truth is
exact inner-product search (faiss `IndexFlatIP`) over the same normalised vectors.

Indexes use the engine's default `VectorSettings` (exact_threshold 50,000, factory `IVF{nlist},Flat`,
nprobe 32, exact_filter_max 20,000), built three ways:
  * "IVF, one add": all vectors in one `add()` call, so nlist = 4*sqrt(n);
  * "IVF, grown": added in 10,000-vector batches, as `Engine.reconcile` rebuilds an index (ingest adds
    even smaller batches): the index is trained when it first crosses the threshold, and nlist is
    whatever VectorIndex's growth policy leaves it at (the table shows the real value);
  * "exact Flat": exact_threshold above n, i.e. brute force.
Every query is single (one row, k=10); each query runs all variants and nprobe values in random order.
Filtered search passes `allowed` = a random 1% / 10% of the ids and checks every hit is allowed; where
the engine answers exactly (allowed set <= exact_filter_max) the IVF + selector path is forced as well,
to compare the two.

    .venv/bin/python -m benchmarks.vector_search [--sizes 100000 1000000] [--queries 200] [--no-markdown]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faiss as _faiss
import numpy as np

from benchmarks import report
from benchmarks.report import Latency, fmt, table
from benchmarks.vecdata import Mixture, doc_ids, exact_neighbours, recall_at_k
from engine.documents import vector_id
from engine.settings import VectorSettings
from engine.vectors import VectorIndex

faiss: Any = _faiss  # its bundled stubs lack SearchParametersIVF(sel=...), as engine/vectors.py notes
DIM = 512
GROWN_BATCH = 10_000
DEFAULTS = VectorSettings()


@dataclass(slots=True)
class Built:
    name: str
    index: VectorIndex
    build_s: float
    rss_growth: float
    peak_growth: float

    @property
    def nlist(self) -> int | None:
        # VectorIndex does not expose its Faiss index; the benchmark reads the real nlist from it.
        return int(faiss.extract_index_ivf(self.index._index).nlist) if self.index.kind == "ivf" else None

    @property
    def label(self) -> str:
        return f"{self.name} (nlist {self.nlist})" if self.nlist else self.name


def set_nprobe(index: VectorIndex, nprobe: int) -> None:
    """Change nprobe on a built IVF index (VectorIndex sets it only when it builds or loads)."""
    index.nprobe = nprobe  # used by filtered searches (SearchParametersIVF)
    faiss.extract_index_ivf(index._index).nprobe = nprobe  # used by unfiltered searches


def build(name: str, data: np.ndarray, ids: list[str], exact_threshold: int, batch: int) -> Built:
    gc.collect()
    before = report.rss_mib()
    report.reset_peak_rss()
    start = time.perf_counter()
    index = VectorIndex(
        "bench",
        DIM,
        exact_threshold=exact_threshold,
        factory=DEFAULTS.factory,
        nprobe=DEFAULTS.nprobe,
        hnsw_ef_search=DEFAULTS.hnsw_ef_search,
        exact_filter_max=DEFAULTS.exact_filter_max,
        use_gpu=False,
    )
    for s in range(0, len(ids), batch):
        index.add(ids[s : s + batch], data[s : s + batch])
    seconds = time.perf_counter() - start
    built = Built(name, index, seconds, report.rss_mib() - before, report.peak_rss_mib() - before)
    print(f"  {built.label}: built in {seconds:.1f}s; describe() says {index.describe()['index']}")
    return built


Search = Callable[[int], list[str]]
Headline = dict[str, tuple[float, float]]  # variant -> (p50 ms, recall) at the default nprobe


def interleaved(calls: Sequence[Search], nq: int) -> tuple[list[list[float]], list[list[list[str]]]]:
    """Run every call for every query index, in a random order per query; latencies and results per call.

    A random order matters: a call right after an exact scan (or nprobe 128) finds the caches cold.
    """
    rng = np.random.default_rng(nq)
    lats: list[list[float]] = [[] for _ in calls]
    hits: list[list[list[str]]] = [[] for _ in calls]
    for i in range(nq):
        for c in rng.permutation(len(calls)):
            start = time.perf_counter()
            found = calls[c](i)
            lats[c].append(time.perf_counter() - start)
            hits[c].append(found)
    return lats, hits


def searcher(
    index: VectorIndex,
    queries: np.ndarray,
    k: int,
    nprobe: int = 0,
    allowed: set[str] | None = None,
    filter_max: int | None = None,
) -> Search:
    """A search of query row i; `filter_max` overrides exact_filter_max for the call (to force a path)."""

    def call(i: int) -> list[str]:
        if nprobe:
            set_nprobe(index, nprobe)
        saved = index.exact_filter_max
        index.exact_filter_max = saved if filter_max is None else filter_max
        try:
            return [doc_id for doc_id, _ in index.search(queries[i : i + 1], k, allowed=allowed)[0]]
        finally:
            index.exact_filter_max = saved

    return call


def unfiltered(
    variants: list[Built], queries: np.ndarray, truth: list[set[str]], args: argparse.Namespace
) -> tuple[str, Headline]:
    configs = [(b, p) for b in variants if b.nlist for p in args.nprobes]
    configs += [(b, 0) for b in variants if not b.nlist]
    lats, hits = interleaved([searcher(b.index, queries, args.k, p) for b, p in configs], len(queries))
    stats = [(Latency.of(lat), recall_at_k(h, truth, args.k)) for lat, h in zip(lats, hits, strict=True)]
    exact = next((s.p50 for (_, p), (s, _) in zip(configs, stats, strict=True) if not p), float("nan"))
    rows: list[list[object]] = []
    headline: Headline = {}
    for (b, p), (s, rec) in zip(configs, stats, strict=True):
        speedup = f"{exact / s.p50:.1f}x" if exact == exact else "-"
        rows.append([b.label, p or "-", fmt(s.p50, 3), fmt(s.p95, 3), fmt(s.mean, 3), f"{rec:.4f}", speedup])
        if p in (0, DEFAULTS.nprobe):
            headline[b.name] = (s.p50, rec)
    headers = ["index", "nprobe", "p50 ms", "p95 ms", "mean ms", "recall@10", "speed-up vs exact"]
    return table(headers, rows), headline


def filtered(
    data: np.ndarray, queries: np.ndarray, ids: list[str], variants: list[Built], args: argparse.Namespace
) -> str:
    """Filtered search per allowed fraction: the engine's own path, and IVF + selector forced beside it."""
    rng = np.random.default_rng(args.seed + 3)
    rows: list[list[object]] = []
    for frac in args.filters:
        sel = np.sort(rng.choice(len(ids), size=max(args.k, int(len(ids) * frac)), replace=False))
        allowed = {ids[j] for j in sel}
        truth = [{ids[j] for j in row} for row in exact_neighbours(data, queries, args.k, rows=sel)]
        keys = np.array([vector_id(ids[j]) for j in sel], np.int64)
        selector = faiss.IDSelectorBatch(keys.size, faiss.swig_ptr(keys))
        configs: list[tuple[Built, int | None, str]] = []
        for b in (b for b in variants if b.nlist):
            small = len(allowed) <= b.index.exact_filter_max
            configs.append((b, None, "exact subset" if small else "IVF + IDSelectorBatch"))
            if small:
                configs.append((b, 0, "IVF + IDSelectorBatch (forced)"))
        calls = [searcher(b.index, queries, args.k, DEFAULTS.nprobe, allowed, fm) for b, fm, _ in configs]
        lats, hits = interleaved(calls, len(queries))
        for (b, _, path), lat, h in zip(configs, lats, hits, strict=True):
            s, ok = Latency.of(lat), all(x in allowed for found in h for x in found)
            raw = faiss_only(b, queries, args.k, selector) if "IDSelector" in path else "-"
            full = sum(len(found) == args.k for found in h)
            rec = recall_at_k(h, truth, args.k)
            rows.append(
                [
                    f"{frac:.0%} ({len(allowed):,})",
                    b.name,
                    path,
                    fmt(s.p50, 3),
                    fmt(s.p95, 3),
                    raw,
                    f"{rec:.4f}",
                    "yes" if ok else "**NO**",
                    f"{full}/{len(h)}",
                ]
            )
    headers = ["allowed", "index", "path", "p50 ms", "p95 ms", "Faiss-only p50 ms", "recall@10"]
    headers += ["all allowed", "full k"]
    return table(headers, rows)


def faiss_only(b: Built, queries: np.ndarray, k: int, selector: object) -> str:
    """p50 of the bare Faiss call VectorIndex makes on the IVF + selector path, with a prebuilt selector."""
    params = faiss.SearchParametersIVF(sel=selector, nprobe=DEFAULTS.nprobe)
    lat = []
    for i in range(len(queries)):
        start = time.perf_counter()
        b.index._index.search(queries[i : i + 1], k, params=params)
        lat.append(time.perf_counter() - start)
    return fmt(Latency.of(lat).p50, 3)


def run_size(n: int, mix: Mixture, args: argparse.Namespace) -> tuple[str, Headline]:
    start = time.perf_counter()
    data, queries = mix.sample(n, seed=args.seed + 1), mix.sample(args.queries, seed=args.seed + 2)
    ids = doc_ids(n)
    gt = exact_neighbours(data, queries, args.k)
    truth = [{ids[j] for j in row} for row in gt]
    cos = [float(np.mean(np.einsum("ij,ij->i", queries, data[gt[:, c]]))) for c in (0, -1)]
    cos.append(float(np.mean(queries @ data[:: max(1, n // 2000)].T)))
    print(f"{n:,} vectors generated, ground truth computed in {time.perf_counter() - start:.1f}s")
    variants = [
        build("IVF, one add", data, ids, DEFAULTS.exact_threshold, n),
        build("IVF, grown", data, ids, DEFAULTS.exact_threshold, GROWN_BATCH),
    ]
    if n <= args.exact_max:
        variants.append(build("exact Flat", data, ids, n + 1, n))
    build_rows = [
        [
            b.name,
            f"IVF{b.nlist},Flat" if b.nlist else "IDMap2(Flat)",
            fmt(b.build_s, 1),
            fmt(b.rss_growth, 0),
            fmt(b.peak_growth, 0),
        ]
        for b in variants
    ]
    build_table = table(
        ["index", "faiss index", "build s (train+add)", "RSS growth MiB", "peak growth MiB"], build_rows
    )
    search_table, headline = unfiltered(variants, queries, truth, args)
    filtered_table = filtered(data, queries, ids, variants, args)
    print(f"\n{build_table}\n\n{search_table}\n\n{filtered_table}\n")
    section = SIZE_SECTION.format(
        n=n,
        k=args.k,
        nn1=cos[0],
        nnk=cos[1],
        rand=cos[2],
        build=build_table,
        search=search_table,
        filtered=filtered_table,
    )
    return section, headline


SIZE_SECTION = """### {n:,} vectors

Data check: mean cosine of a query to its 1st / {k}th true neighbour {nn1:.3f} / {nnk:.3f}, to a random
indexed vector {rand:.3f}.

{build}

{search}

Filtered search at the default nprobe (recall against exact search restricted to the allowed set).
"Faiss-only" times the bare `index.search(..., params=SearchParametersIVF(sel=...))` with a selector
built once; the rest of "p50" is what `VectorIndex.search` does around it on every call (turning the
allowed ids into Faiss keys, checking each against its id map, building the selector):

{filtered}
"""

HEAD = """## Vector search (Faiss via `VectorIndex`)

Measured on {machine}; whole run {minutes:.1f} min. {dim}-d float32 vectors from a clustered generator
({mix}; see `benchmarks/vecdata.py`). Uniform random vectors would make ANN recall meaningless, so the
data is a Gaussian mixture in a low-dimensional latent space, embedded at random into {dim}-d, plus
isotropic noise, L2-normalised. {queries} queries from the same distribution (not in the index), one at
a time, k={k}; recall@{k} is against exact brute-force search. Default `VectorSettings` (exact_threshold
50,000, `IVF{{nlist}},Flat`, nprobe {nprobe}, exact_filter_max 20,000), CPU only. "one add" builds the
index from all vectors at once (nlist = 4*sqrt(n)); "grown" adds them 10,000 at a time as
`Engine.reconcile` does (ingest adds 64 at a time), so the IVF is first trained just past the threshold
and its final nlist (shown) depends on how VectorIndex handles growth.
Build memory is the process RSS growth that stays (index + id map) and the peak above the
RSS before the build. Latencies within a table are interleaved: each query runs every variant, in random
order (a search right after an exact scan finds the CPU caches cold; a fixed order would bias one row).

At the default nprobe ({nprobe}), and exact:

{summary}
"""


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--filters", type=float, nargs="+", default=[0.01, 0.1], help="allowed fractions")
    parser.add_argument("--exact-max", type=int, default=1_000_000, help="build the exact index up to this n")
    parser.add_argument("--seed", type=int, default=0)
    report.add_markdown_args(parser)
    args = parser.parse_args(argv)
    if min(args.sizes) <= DEFAULTS.exact_threshold:
        parser.error(f"--sizes must exceed exact_threshold ({DEFAULTS.exact_threshold:,}) to test IVF")
    report.machine()  # snapshot of machine and code revision before measuring

    mix = Mixture.make(dim=DIM, seed=args.seed)
    started = time.perf_counter()
    results = [run_size(n, mix, args) for n in args.sizes]
    summary = "\n".join(
        f"- {n:,}: "
        + "; ".join(
            f"{name} p50 **{fmt(p50, 2)} ms**, recall@10 **{rec:.3f}**" for name, (p50, rec) in headline.items()
        )
        for n, (_, headline) in zip(args.sizes, results, strict=True)
    )
    head = HEAD.format(
        machine=report.machine().one_line(),
        minutes=(time.perf_counter() - started) / 60,
        dim=DIM,
        mix=mix.describe(),
        queries=args.queries,
        k=args.k,
        nprobe=DEFAULTS.nprobe,
        summary=summary,
    )
    report.write_report("vector_search", "\n".join([head, *(section for section, _ in results)]), args)


if __name__ == "__main__":
    main()
