"""BM25 text search: the embedded store (SQLite FTS5) against `bm25s`, same corpus, same run.

The corpus is `benchmarks.text_search`'s generated documents (Zipf pseudo-word title, caption and
tags; file name; dominant colours), at 100k and 1M documents by default. The store indexes them through
`SqliteStore.upsert` (the engine's own path: documents, terms and the FTS5 index); bm25s indexes, per
document, the same searchable text the store puts in its FTS5 columns, joined into one string.

Tokenisation is made to match: lower case, words of 2+ word characters (the corpus has no 1-letter
words), no stop words, and the store's Porter stemming: bm25s's stemmer is a lookup table built from
SQLite's own `porter unicode61` tokenizer (fts5vocab) over the corpus vocabulary, so both sides see the
same terms. bm25s runs `method="robertson"` with k1=1.2, b=0.75, which is FTS5's `bm25()` formula up to
a constant factor (k1 + 1) when all field weights are 1. The engine searches with its field weights
(title 3, caption 2, tags 2.5, ...); bm25s has one field, so its ranking can differ from the engine's
there. Agreement is reported twice: top-10 overlap with the engine's weighted ranking, and with the same
FTS5 query run with all weights 1 (same BM25 function: ties at the 10th score are counted as agreeing).

Queries are `text_search`'s two mixes (1-3 words; "frequent" draws words by corpus frequency, "uniform"
uniformly from the vocabulary), one query at a time, top 10, the two systems interleaved query by query
in random order. The engine side is `SqliteStore.search_text` (query parsing, OR of the words, weighted
BM25); the bm25s side tokenises the query with the corpus tokenizer and calls `BM25.retrieve`.

    .venv/bin/python -m benchmarks.text_peers [--sizes 100000 1000000] [--queries 200] [--no-markdown]

A built store is kept under `benchmarks/.cache/text_peers/` and reused by later runs with the same
corpus and store code (`--rebuild` builds anew, `--no-cache` builds in a temporary folder).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import inspect
import json
import math
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import charts
from benchmarks.report import (
    ROOT,
    Latency,
    add_markdown_args,
    fmt,
    machine,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    table,
    write_report,
)
from benchmarks.text_search import engine_search, generate_docs, make_queries, vocabulary, zipf_p
from engine.documents import Document
from engine.settings import Settings
from engine.store import sqlite as sqlite_module
from engine.store.base import TEXT_FIELDS
from engine.store.sqlite import SqliteStore, colour_text, filename_words
from enrichers.colour import COLOUR_NAMES

CACHE_DIR = ROOT / "benchmarks" / ".cache" / "text_peers"
CHART = "text_peers"
K1, B = 1.2, 0.75  # FTS5's bm25() constants
STORE, PEER = "store (FTS5)", "bm25s"
SYSTEMS = (STORE, PEER)
MIXES = ("frequent", "uniform")
SCORE_EPS = 1e-4  # scores below this are IDF-clamped noise (FTS5 floors a negative IDF at 1e-6, bm25s at 0)


# -- corpus ----------------------------------------------------------------------------------------
def fts_text(doc: Document, colour_min_share: float) -> str:
    """The document's searchable text as `SqliteStore.upsert` writes it into the FTS5 columns, joined."""
    label_words = " ".join([*(" ".join([lb.name] * max(1, min(lb.count, 5))) for lb in doc.labels), *doc.label_terms])
    parts = (
        doc.title,
        doc.caption,
        " ".join(doc.tags),
        filename_words(doc.path),
        colour_text(doc, colour_min_share),
        label_words,
        doc.ocr_text,
    )
    return " ".join(p for p in parts if p)


class Progress:
    """Prints `done/total`, rate and ETA at most every few seconds."""

    def __init__(self, label: str, total: int, every_s: float = 5.0, unit: str = "docs"):
        self.label, self.total, self.every_s, self.unit = label, total, every_s, unit
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        print(
            f"  {self.label}: {done:,}/{self.total:,} ({done / self.total:.0%}), {rate:,.0f} {self.unit}/s, "
            f"{now - self.start:.0f}s elapsed, ETA {eta:.0f}s",
            flush=True,
        )


def doc_batches(n: int, args: argparse.Namespace, vocab: Sequence[str], p: np.ndarray) -> Iterator[list[Document]]:
    """The corpus of size `n` in upsert batches, exactly as `text_search.build_store` generates it."""
    rng = np.random.default_rng(args.seed + n)
    for start in range(0, n, args.batch):
        yield generate_docs(min(args.batch, n - start), vocab, p, rng, start)


# -- the embedded store ----------------------------------------------------------------------------
@dataclass(slots=True)
class StoreBuild:
    insert_s: float
    rss_mib: float
    peak_mib: float
    disk_mib: float
    built: str  # date and code revision of the run that built it
    cached: bool = False


def cache_key(n: int, args: argparse.Namespace, colour_min_share: float) -> str:
    """Everything the stored bytes depend on: corpus parameters, generator and store code."""
    h = hashlib.sha256()
    h.update(json.dumps([n, args.vocab, args.zipf, args.seed, args.batch, colour_min_share]).encode())
    for fn in (vocabulary, zipf_p, generate_docs):
        h.update(inspect.getsource(fn).encode())
    h.update(Path(sqlite_module.__file__).read_bytes())
    return h.hexdigest()[:16]


def dir_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def build_store(
    data_dir: Path, n: int, args: argparse.Namespace, vocab: Sequence[str], p: np.ndarray, settings: Settings
) -> StoreBuild:
    gc.collect()
    rss0 = rss_mib()
    reset_peak_rss()
    store = open_store(settings, settings.text_weights.model_dump())
    progress = Progress(f"store upsert {n:,}", n)
    insert_s, done = 0.0, 0
    for docs in doc_batches(n, args, vocab, p):
        t = time.perf_counter()
        store.upsert(docs)
        insert_s += time.perf_counter() - t
        done += len(docs)
        progress.update(done)
    store.close()
    gc.collect()
    return StoreBuild(
        insert_s=insert_s,
        rss_mib=rss_mib() - rss0,
        peak_mib=peak_rss_mib() - rss0,
        disk_mib=dir_mib(data_dir),
        built=f"{date.today().isoformat()}, code {machine().revision}",
    )


def open_store(settings: Settings, weights: dict[str, float]) -> SqliteStore:
    return SqliteStore(settings.store_path, text_weights=weights, colour_min_share=settings.search.colour_min_share)


def prepare_store(
    n: int, args: argparse.Namespace, vocab: Sequence[str], p: np.ndarray, tmp: Path
) -> tuple[Settings, StoreBuild]:
    """A built store of `n` documents: from the cache when it holds this corpus, else built now."""
    if args.no_cache:
        settings = Settings(data_dir=tmp / "store")
        return settings, build_store(settings.data_dir, n, args, vocab, p, settings)
    colour_min_share = Settings(data_dir=tmp / "probe").search.colour_min_share
    final = CACHE_DIR / f"{n}-{cache_key(n, args, colour_min_share)}"
    meta = final / "build.json"
    if meta.exists() and not args.rebuild:
        info = StoreBuild(**{**json.loads(meta.read_text()), "cached": True})
        print(f"{n:,} docs: reusing the store built {info.built} ({final.relative_to(ROOT)})")
        return Settings(data_dir=final), info
    for old in CACHE_DIR.glob(f"{n}-*"):  # other corpora or older store code
        shutil.rmtree(old, ignore_errors=True)
    partial = final.with_name(final.name + ".partial")
    settings = Settings(data_dir=partial)
    info = build_store(partial, n, args, vocab, p, settings)
    (partial / "build.json").write_text(json.dumps({k: v for k, v in asdict(info).items() if k != "cached"}))
    partial.rename(final)
    return Settings(data_dir=final), info


def read_files(path: Path) -> None:
    """Read every file once so the store's queries start from the OS page cache, as bm25s starts in RAM."""
    for f in path.rglob("*"):
        if f.is_file():
            with f.open("rb") as fh:
                while fh.read(1 << 24):
                    pass


# -- bm25s -----------------------------------------------------------------------------------------
def porter_stems(words: Sequence[str]) -> dict[str, str]:
    """Each word's term under SQLite FTS5's `porter unicode61 remove_diacritics 2` tokenizer (the store's)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61 remove_diacritics 2')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        words = list(dict.fromkeys(w.lower() for w in words))
        conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", enumerate(words, 1))
        return {words[row - 1]: term for row, term in conn.execute("SELECT doc, term FROM v WHERE offset = 0")}
    finally:
        conn.close()


@dataclass(slots=True)
class PeerBuild:
    tokenize_s: float
    index_s: float
    rss_mib: float
    peak_mib: float
    index_mib: float
    disk_mib: float
    save_s: float

    @property
    def build_s(self) -> float:
        return self.tokenize_s + self.index_s


@dataclass(slots=True)
class Peer:
    tokenizer: Any
    retriever: Any
    doc_ids: list[str]


def build_peer(
    texts: list[str], doc_ids: list[str], stems: dict[str, str], tmp: Path, backend: str = "numpy"
) -> tuple[Peer, PeerBuild]:
    import bm25s
    from bm25s.tokenization import Tokenizer

    gc.collect()
    rss0 = rss_mib()
    reset_peak_rss()
    tokenizer = Tokenizer(lower=True, splitter=r"(?u)\b\w\w+\b", stopwords=None, stemmer=lambda w: stems.get(w, w))
    progress = Progress(f"bm25s tokenize {len(texts):,}", len(texts))
    t = time.perf_counter()
    ids: list[list[int]] = []
    chunk = 50_000
    for start in range(0, len(texts), chunk):
        ids.extend(
            tokenizer.tokenize(texts[start : start + chunk], update_vocab=True, return_as="ids", show_progress=False)
        )
        progress.update(len(ids))
    tokenize_s = time.perf_counter() - t
    print(f"  bm25s index {len(texts):,} docs ...", flush=True)
    retriever = bm25s.BM25(k1=K1, b=B, method="robertson", backend=backend)
    t = time.perf_counter()
    retriever.index((ids, tokenizer.get_vocab_dict()), show_progress=False)
    index_s = time.perf_counter() - t
    del ids
    gc.collect()
    rss, peak = rss_mib() - rss0, peak_rss_mib() - rss0
    arrays = [v for v in retriever.scores.values() if isinstance(v, np.ndarray)]
    t = time.perf_counter()
    retriever.save(str(tmp / "bm25s"))
    tokenizer.save_vocab(str(tmp / "bm25s"))
    save_s = time.perf_counter() - t
    disk = dir_mib(tmp / "bm25s")
    shutil.rmtree(tmp / "bm25s", ignore_errors=True)
    info = PeerBuild(tokenize_s, index_s, rss, peak, sum(a.nbytes for a in arrays) / 2**20, disk, save_s)
    return Peer(tokenizer, retriever, doc_ids), info


def peer_search(peer: Peer, k: int) -> Callable[[str], list[tuple[str, float]]]:
    """Tokenise one query like the corpus, drop repeated words (the engine ORs distinct words), retrieve."""

    def search(query: str) -> list[tuple[str, float]]:
        tokens = peer.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)[0]
        result = peer.retriever.retrieve([list(dict.fromkeys(tokens))], k=k, show_progress=False)
        return [(peer.doc_ids[i], float(s)) for i, s in zip(result.documents[0], result.scores[0], strict=True)]

    return search


# -- measuring -------------------------------------------------------------------------------------
def overlap(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Shared documents over the longer list; None when both are empty."""
    if not a and not b:
        return None
    return len(set(a) & set(b)) / max(len(a), len(b))


def tied_overlap(ref: Sequence[tuple[str, float]], got: Sequence[tuple[str, float]], k: int) -> float | None:
    """`overlap`, counting a document of `got` missing from `ref` as agreeing when its score ties ref's k-th."""
    if not ref and not got:
        return None
    ids = {i for i, _ in ref}
    cutoff = ref[-1][1] if len(ref) >= k else None
    agree = sum(
        1 for i, s in got if i in ids or (cutoff is not None and math.isclose(s, cutoff, rel_tol=1e-5, abs_tol=1e-7))
    )
    return agree / max(len(ref), len(got))


@dataclass(slots=True)
class Measured:
    latency: dict[tuple[str, str], Latency]
    matches: dict[str, float]  # median matching documents per mix
    overlap_engine: dict[str, float]
    overlap_equal: dict[str, float]
    no_match: dict[str, int]  # queries no document matches
    degenerate: dict[str, int]  # queries with matches, none scoring above SCORE_EPS (every word in > half the docs)
    score_ms: dict[str, float]  # bm25s p50 of summing the query words' score columns
    topk_ms: dict[str, float]  # bm25s p50 of selecting the top k of all N scores


def measure(settings: Settings, peer: Peer, mixes: dict[str, list[str]], args: argparse.Namespace) -> Measured:
    store = open_store(settings, settings.text_weights.model_dump())
    equal = open_store(settings, dict.fromkeys(TEXT_FIELDS, 1.0))  # same FTS5 query, all field weights 1
    calls: dict[str, Callable[[str], Any]] = {STORE: engine_search(store, [], args.k), PEER: peer_search(peer, args.k)}
    try:
        read_files(settings.data_dir)
        for query in mixes["frequent"][: args.warmup]:
            for call in calls.values():
                call(query)
        rng = np.random.default_rng(args.seed)
        order = [(mix, q) for mix, qs in mixes.items() for q in qs]
        samples: dict[tuple[str, str], list[float]] = {}
        found: list[tuple[str, str, dict[str, Any]]] = []
        progress = Progress(f"queries x{len(SYSTEMS)}", len(order), every_s=15.0, unit="queries")
        for done, j in enumerate(rng.permutation(len(order)), 1):
            mix, query = order[j]
            out: dict[str, Any] = {}
            for i in rng.permutation(len(SYSTEMS)):
                name = SYSTEMS[i]
                start = time.perf_counter()
                out[name] = calls[name](query)
                samples.setdefault((mix, name), []).append(time.perf_counter() - start)
            found.append((mix, query, out))
            progress.update(done)
        engine_ov: dict[str, list[float]] = {m: [] for m in mixes}
        equal_ov: dict[str, list[float]] = {m: [] for m in mixes}
        matches: dict[str, list[int]] = {m: [] for m in mixes}
        no_match, degenerate = dict.fromkeys(mixes, 0), dict.fromkeys(mixes, 0)
        for mix, query, out in found:  # untimed: agreement and match counts
            o = overlap(out[STORE], [i for i, s in out[PEER] if s > 0])
            if o is not None:
                engine_ov[mix].append(o)
            raw = equal.search_text(query, [], args.k)
            ref = [(h.id, h.score) for h in raw if h.score > SCORE_EPS]
            peer_hits = [(i, s * (K1 + 1)) for i, s in out[PEER] if s * (K1 + 1) > SCORE_EPS]
            t = tied_overlap(ref, peer_hits, args.k)
            if t is not None:
                equal_ov[mix].append(t)
            elif raw:
                degenerate[mix] += 1
            matches[mix].append(store.count_text(query, []))
            no_match[mix] += matches[mix][-1] == 0
        score_ms, topk_ms = peer_breakdown(peer, mixes, args)
    finally:
        store.close()
        equal.close()
    return Measured(
        latency={key: Latency.of(v) for key, v in samples.items()},
        matches={m: statistics.median(v) for m, v in matches.items()},
        overlap_engine={m: statistics.fmean(v) if v else float("nan") for m, v in engine_ov.items()},
        overlap_equal={m: statistics.fmean(v) if v else float("nan") for m, v in equal_ov.items()},
        no_match=no_match,
        degenerate=degenerate,
        score_ms=score_ms,
        topk_ms=topk_ms,
    )


def peer_breakdown(
    peer: Peer, mixes: dict[str, list[str]], args: argparse.Namespace, sample: int = 50
) -> tuple[dict[str, float], dict[str, float]]:
    """Where bm25s's retrieve time goes, on a sample of each mix: scoring vs top-k selection."""
    from bm25s import selection

    score_ms: dict[str, float] = {}
    topk_ms: dict[str, float] = {}
    for mix, queries in mixes.items():
        scoring, selecting = [], []
        for query in queries[:sample]:
            tokens = peer.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)[0]
            t0 = time.perf_counter()
            scores = peer.retriever.get_scores(list(dict.fromkeys(tokens)))
            t1 = time.perf_counter()
            selection.topk(scores, k=args.k, backend="auto", sorted=True)
            t2 = time.perf_counter()
            scoring.append((t1 - t0) * 1000)
            selecting.append((t2 - t1) * 1000)
        score_ms[mix], topk_ms[mix] = statistics.median(scoring), statistics.median(selecting)
    return score_ms, topk_ms


@dataclass(slots=True)
class SizeResult:
    n: int
    store: StoreBuild
    peer: PeerBuild
    measured: Measured
    notes: list[str] = field(default_factory=list)


def run_size(
    n: int, args: argparse.Namespace, vocab: Sequence[str], p: np.ndarray, mixes: dict[str, list[str]]
) -> SizeResult:
    tmp = Path(tempfile.mkdtemp(prefix="imgsearch-bench-peers-"))
    try:
        print(f"\n== {n:,} documents", flush=True)
        settings, store_info = prepare_store(n, args, vocab, p, tmp)
        if not store_info.cached:
            print(
                f"store: {n:,} docs upserted in {store_info.insert_s:.1f}s ({n / store_info.insert_s:,.0f} docs/s), "
                f"{store_info.disk_mib:,.0f} MiB on disk",
                flush=True,
            )
        texts: list[str] = []
        doc_ids: list[str] = []
        progress = Progress(f"generate corpus text {n:,}", n)
        share = settings.search.colour_min_share
        for docs in doc_batches(n, args, vocab, p):
            texts.extend(fts_text(d, share) for d in docs)
            doc_ids.extend(d.id for d in docs)
            progress.update(len(texts))
        stems = porter_stems([*vocab, *COLOUR_NAMES, "img"])  # other corpus words are digits
        peer, peer_info = build_peer(texts, doc_ids, stems, tmp, args.bm25s_backend)
        del texts
        gc.collect()
        print(
            f"bm25s: {n:,} docs tokenised in {peer_info.tokenize_s:.1f}s + indexed in {peer_info.index_s:.1f}s "
            f"({n / peer_info.build_s:,.0f} docs/s), {peer_info.index_mib:,.0f} MiB of index arrays",
            flush=True,
        )
        with sqlite3.connect(settings.store_path) as conn:
            stored = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
            first = conn.execute("SELECT id FROM documents ORDER BY rowid LIMIT 1").fetchone()[0]
        conn.close()
        if stored != n or first != doc_ids[0]:
            raise SystemExit(f"the store holds {stored:,} documents starting {first}, not this corpus: use --rebuild")
        measured = measure(settings, peer, mixes, args)
        del peer
        gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return SizeResult(n, store_info, peer_info, measured)


# -- report ----------------------------------------------------------------------------------------
def latency_rows(results: Sequence[SizeResult]) -> list[list[str]]:
    rows = []
    for r in results:
        for mix in MIXES:
            for system in SYSTEMS:
                s = r.measured.latency[(mix, system)]
                rows.append(
                    [
                        f"{r.n:,}",
                        f"{mix} ({r.measured.matches[mix]:,.0f})",
                        system,
                        fmt(s.p50, 3),
                        fmt(s.p95, 3),
                        fmt(s.p99, 3),
                        fmt(s.mean, 3),
                        fmt(s.qps, 0),
                    ]
                )
    return rows


def build_rows(results: Sequence[SizeResult]) -> list[list[str]]:
    rows = []
    for r in results:
        s, b = r.store, r.peer
        when = f" (cached: {s.built})" if s.cached else ""
        rows.append(
            [
                f"{r.n:,}",
                STORE + when,
                fmt(s.insert_s, 1),
                fmt(r.n / s.insert_s, 0),
                fmt(s.rss_mib, 0),
                fmt(s.peak_mib, 0),
                "(in the file)",
                fmt(s.disk_mib, 0),
            ]
        )
        rows.append(
            [
                f"{r.n:,}",
                PEER,
                f"{fmt(b.build_s, 1)} ({fmt(b.tokenize_s, 1)} + {fmt(b.index_s, 1)})",
                fmt(r.n / b.build_s, 0),
                fmt(b.rss_mib, 0),
                fmt(b.peak_mib, 0),
                fmt(b.index_mib, 0),
                f"{fmt(b.disk_mib, 0)} (save {fmt(b.save_s, 1)}s)",
            ]
        )
    return rows


def agreement_rows(results: Sequence[SizeResult], queries: int) -> list[list[str]]:
    return [
        [
            f"{r.n:,}",
            mix,
            f"{r.measured.overlap_engine[mix]:.3f}",
            f"{r.measured.overlap_equal[mix]:.3f}",
            f"{r.measured.no_match[mix]} / {queries}",
            f"{r.measured.degenerate[mix]} / {queries}",
            fmt(r.measured.score_ms[mix], 3),
            fmt(r.measured.topk_ms[mix], 3),
        ]
        for r in results
        for mix in MIXES
    ]


def ratio_words(a: float, b: float, what: str = "faster") -> str:
    """`a` against `b` as "2.3x faster" (a < b) or "1.5x slower" (a > b), for latencies."""
    if math.isclose(a, b, rel_tol=0.05):
        return "about as fast as"
    if a < b:
        return f"{b / a:.1f}x {what} than"
    return f"{a / b:.1f}x slower than"


def summary(results: Sequence[SizeResult], k: int, backend: str = "numpy") -> list[str]:
    lines = []
    for r in results:
        lat = r.measured.latency
        for mix in MIXES:
            s, b = lat[(mix, STORE)], lat[(mix, PEER)]
            lines.append(
                f"- {r.n:,} docs, {mix}-word queries (median {r.measured.matches[mix]:,.0f} matching docs): "
                f"store p50 / p95 = **{fmt(s.p50, 2)} / {fmt(s.p95, 2)} ms**, bm25s **{fmt(b.p50, 2)} / "
                f"{fmt(b.p95, 2)} ms**: at p50 the store is {ratio_words(s.p50, b.p50)} bm25s."
            )
    if len(results) >= 2:
        a, z = results[0], results[-1]
        for mix in MIXES:
            parts = [
                f"{name} p50 x{z.measured.latency[(mix, name)].p50 / a.measured.latency[(mix, name)].p50:.1f}"
                for name in SYSTEMS
            ]
            lines.append(f"- {z.n // a.n}x more documents, {mix}-word queries: " + ", ".join(parts))
    for r in results:
        sb, pb = r.store, r.peer
        lines.append(
            f"- Building {r.n:,} docs: the store upserts {fmt(r.n / sb.insert_s, 0)} docs/s (documents, facet "
            f"terms and FTS5, on disk: {fmt(sb.disk_mib, 0)} MiB); bm25s tokenises and indexes "
            f"{fmt(r.n / pb.build_s, 0)} docs/s, in RAM ({fmt(pb.rss_mib, 0)} MiB more resident after the build, "
            f"peak +{fmt(pb.peak_mib, 0)} MiB; {fmt(pb.disk_mib, 0)} MiB when saved)."
        )
    big = results[-1]
    for mix in MIXES if backend == "numpy" else ():  # the breakdown times bm25s's NumPy path
        sc, tk = big.measured.score_ms[mix], big.measured.topk_ms[mix]
        lines.append(
            f"- bm25s at {big.n:,} docs, {mix}-word queries (p50): {fmt(sc, 2)} ms summing the query words' score "
            f"columns, {fmt(tk, 2)} ms selecting the top {k} of all "
            f"{big.n:,} scores ({tk / (sc + tk):.0%} of the two)."
        )
    eq = [r.measured.overlap_equal[m] for r in results for m in MIXES]
    en = [r.measured.overlap_engine[m] for r in results for m in MIXES]
    degenerate = sum(r.measured.degenerate[m] for r in results for m in MIXES)
    same = (
        "so both compute the same BM25"
        if min(eq) >= 0.95
        else "less than the same BM25 function would give: check the tokenisation"
    )
    lines.append(
        f"- Agreement: with all field weights 1, the store's top 10 and bm25s's agree on "
        f"{min(eq):.1%}-{max(eq):.1%} of the documents (ties at the 10th score counted), {same}; "
        f"with the engine's field weights the overlap is {min(en):.1%}-{max(en):.1%}."
        + (
            f" {degenerate} queries are left out of the first figure: every word occurs in over half the documents"
            ", where BM25's IDF is negative and both systems floor it (FTS5 at 1e-6, bm25s at 0)."
            if degenerate
            else ""
        )
    )
    return lines


def plot(results: Sequence[SizeResult]) -> None:
    from matplotlib.ticker import FuncFormatter

    with charts.chart(
        CHART, "BM25 latency per query, top 10: store (SQLite FTS5) vs bm25s", width=5.6, height=4.4, ncols=len(results)
    ) as (_, axes):
        axes_list = list(axes) if len(results) > 1 else [axes]
        pcts = ("p50", "p95", "p99")
        labels = [f"{mix}\n{pct}" for mix in MIXES for pct in pcts]
        x = np.arange(len(labels))
        width = 0.4
        for ax, r in zip(axes_list, results, strict=True):
            for j, system in enumerate(SYSTEMS):
                values = [getattr(r.measured.latency[(mix, system)], pct) for mix in MIXES for pct in pcts]
                bars = ax.bar(x + (j - 0.5) * width, values, width, label=system)
                ax.bar_label(
                    bars, labels=[f"{v:.0f}" if v >= 10 else f"{v:.2g}" for v in values], fontsize=7, padding=1
                )
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            top = max(getattr(r.measured.latency[(m, s)], pct) for m in MIXES for s in SYSTEMS for pct in pcts)
            ax.set_ylim(top=top * 2)
            ax.set_xticks(x, labels)
            ax.set_ylabel("ms per query (log scale)")
            ax.set_title(f"{r.n:,} documents")
            ax.legend(loc="upper right", fontsize=8)


NOTES = """How it is measured. One process, one thread, one query at a time; the store's file is read once
before the queries so both systems answer from memory (bm25s keeps its whole index in RAM, the store
reads its file through SQLite's page cache and the OS's). Store latency is `SqliteStore.search_text`
(query parsing, FTS5 `MATCH` of the OR of the words, weighted `bm25()`, join to `documents` for the
ids); bm25s latency is its tokenizer on the query plus `BM25.retrieve(k=10)` (backend below) and the
mapping of row numbers to document ids. Build figures: the store's is `upsert` time only (it also
writes the documents table, facet terms and JSON bodies, i.e. more than a text index); bm25s's is
tokenising plus `BM25.index`; document generation is excluded from both. "RSS after build" is the growth
of this process's resident memory that stays once the build is done (the store keeps only SQLite's
page cache, its data is in the file); "peak" is the highest growth during the build. QPS is
1000 / mean latency for one thread. Overlap@10 is the share of documents the two top-10 lists have in
common (over the longer list; bm25s documents with score 0, i.e. not matching, are dropped).

Known differences. bm25s indexes one field per document (the store's FTS5 columns joined), so it cannot
apply the engine's per-field weights: "vs engine" overlap shows how much the weights reorder the top 10,
"vs FTS5, equal weights" checks that both compute the same BM25 (same query through the store with every
weight 1). Stemming: bm25s uses a table of SQLite's own Porter stems for the corpus vocabulary (PyStemmer
is not installed), so both index identical terms; a stemmer that runs on every word would make bm25s's
tokenising somewhat slower. bm25s scores in float32, FTS5 in double. bm25s backend: "numba" is its compiled
backend (scoring and top-k selection jitted; the first query's compile time is excluded by the warm-up),
"numpy" its pure-NumPy one, which selects the top k with `np.argpartition` over all N document scores
whatever the number of matches. Either way bm25s scores every document, so its latency follows N, not
the matches."""


def main(argv: list[str] | None = None) -> list[SizeResult]:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="documents per corpus")
    parser.add_argument("--queries", type=int, default=200, help="queries per mix")
    parser.add_argument(
        "--bm25s-backend",
        choices=["numba", "numpy"],
        default="numba" if importlib.util.find_spec("numba") else "numpy",
        help="bm25s retrieval backend (default: numba when installed, its fastest)",
    )
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument("--vocab", type=int, default=20_000, help="vocabulary size")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent s of word frequencies")
    parser.add_argument("--batch", type=int, default=2000, help="documents per upsert transaction")
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries per system before measuring")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="build stores in a temporary folder, keep nothing")
    parser.add_argument("--rebuild", action="store_true", help="build stores anew even when cached")
    parser.add_argument("--no-charts", action="store_true", help=f"do not write docs/benchmarks/{CHART}.png")
    add_markdown_args(parser)
    args = parser.parse_args(argv)
    try:
        import bm25s
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("this benchmark needs bm25s: pip install -e '.[bench]'") from exc
    machine()  # snapshot of machine and code revision before measuring

    rng = np.random.default_rng(args.seed)  # the same vocabulary and queries as benchmarks.text_search
    vocab = vocabulary(args.vocab, rng)
    p = zipf_p(len(vocab), args.zipf)
    uniform = np.full(len(vocab), 1.0 / len(vocab))
    mixes = {
        "frequent": make_queries(args.queries, vocab, p, rng),
        "uniform": make_queries(args.queries, vocab, uniform, rng),
    }
    started = time.perf_counter()
    results = [run_size(n, args, vocab, p, mixes) for n in args.sizes]
    print(f"\nmeasured in {time.perf_counter() - started:.0f}s")

    latency_table = table(
        ["docs", "queries (median matches)", "system", "p50 ms", "p95 ms", "p99 ms", "mean ms", "QPS"],
        latency_rows(results),
    )
    build_table = table(
        ["docs", "system", "build s", "docs/s", "RSS after build MiB", "peak MiB", "index in RAM MiB", "on disk MiB"],
        build_rows(results),
    )
    agreement_table = table(
        [
            "docs",
            "queries",
            "overlap@10 vs engine",
            "overlap@10 vs FTS5, equal weights",
            "no match",
            "all IDF <= 0",
            "bm25s NumPy path: scoring p50 ms",
            "top-k p50 ms",
        ],
        agreement_rows(results, args.queries),
    )
    lines = summary(results, args.k, args.bm25s_backend)
    print("\n" + latency_table + "\n\n" + build_table + "\n\n" + agreement_table + "\n\n" + "\n".join(lines))
    if not args.no_charts:
        plot(results)
        print(f"chart: {charts.CHART_DIR / CHART}.png")
    chart = "" if args.no_charts else "\n" + charts.link(CHART, "BM25 latency percentiles, store vs bm25s") + "\n"

    body = f"""## BM25 text search: embedded store vs bm25s

Measured on {machine().one_line()}; SQLite {sqlite3.sqlite_version},
bm25s {bm25s.__version__} ({args.bm25s_backend} backend).
Same generated corpus as the BM25 section (vocabulary of {args.vocab:,} pseudo-words, Zipf(s={args.zipf});
title, caption, tags, file name and colours), indexed by both systems in the same run; bm25s gets the
text the store puts in its FTS5 columns, joined, with the store's Porter stems, `method="robertson"`,
k1={K1}, b={B} (FTS5's `bm25()`). {args.queries} queries per mix, 1-3 words, top {args.k}, interleaved
query by query in random order after {args.warmup} warm-up queries per system ("frequent" draws words
by corpus frequency, "uniform" uniformly from the vocabulary; median matching documents in brackets).

What the numbers say:

{chr(10).join(lines)}
{chart}
Latency per single query:

{latency_table}

Index build and memory:

{build_table}

Result agreement, and where bm25s's time goes. Overlaps are means over the queries with a match; "all IDF
<= 0": queries whose matches all score below {SCORE_EPS:g} because every word occurs in over half the
documents (left out of the equal-weights overlap). bm25s NumPy path, scoring / top-k: medians over the first
50 queries of each mix, timed separately after the run (NumPy {np.__version__}; `get_scores` then
`selection.topk`, the steps of its NumPy backend, whatever backend the latencies above used):

{agreement_table}

{NOTES}
"""
    write_report("text_peers", body, args)
    return results


if __name__ == "__main__":
    main()
