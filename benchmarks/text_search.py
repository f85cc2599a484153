"""BM25 text search latency on the SQLite/FTS5 store, at 10k and 100k generated documents.

Documents are generated (no images): title, caption and tags are words drawn from a synthetic
vocabulary with Zipf-distributed frequencies (rank r has probability proportional to 1/r^s), plus a
format (jpeg 70%, png 20%, webp 10%) and 1-4 named colours with random shares. They go in through
`SqliteStore.upsert` in batches, which gives the insert throughput.

Two query mixes of 1-3 words each: "frequent" draws words by their corpus frequency (so common,
unselective words are frequent, as in real logs), "uniform" draws them uniformly from the vocabulary
(mostly rare, selective words). Every query runs as: text only (k=200, the engine's candidate depth),
text only k=10, and text + a filter (`format=jpeg`, `colour=red`, `format=webp`), in a random order per
query so the variants see the same machine noise. One more variant runs the `format=jpeg` query with the
filter written as a correlated `EXISTS` instead of the engine's `rowid IN (subquery)`, checks that it
returns exactly the same ids, and shows what that form would cost (it is not the engine's SQL).

    .venv/bin/python -m benchmarks.text_search [--sizes 10000 100000] [--queries 300] [--no-markdown]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.report import Latency, add_markdown_args, fmt, machine, table, write_report
from engine.documents import ColourShare, Document, content_id
from engine.filters import Filter, parse_filters
from engine.settings import Settings
from engine.store import sqlquery
from engine.store.sqlite import SqliteStore
from enrichers.colour import COLOUR_NAMES

FORMATS = ("jpeg", "png", "webp")
FORMAT_P = (0.7, 0.2, 0.1)
VARIANTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("text k=200", 200, ()),
    ("text k=10", 10, ()),
    ("text + format=jpeg (70%)", 200, ("format=jpeg",)),
    ("text + colour=red", 200, ("colour=red",)),
    ("text + format=webp (10%)", 200, ("format=webp",)),
)
EXISTS_VARIANT = "text + format=jpeg, EXISTS form"


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """`size` distinct pronounceable pseudo-words of 2-4 syllables."""
    consonants, vowels = list("bdfgklmnprstvz"), list("aeiou")
    words: dict[str, None] = {}
    while len(words) < size:
        n = int(rng.integers(2, 5))
        words.setdefault("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)), None)
    return list(words)


def zipf_p(size: int, s: float) -> np.ndarray:
    p: np.ndarray = 1.0 / np.arange(1, size + 1, dtype=np.float64) ** s
    p /= p.sum()
    return p


def generate_docs(
    n: int, vocab: Sequence[str], p: np.ndarray, rng: np.random.Generator, start: int = 0
) -> list[Document]:
    """`n` text-only documents numbered from `start` (no vectors, no images)."""
    lengths = np.stack([rng.integers(3, 9, n), rng.integers(8, 21, n), rng.integers(2, 7, n)], axis=1)
    words = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    formats = rng.choice(len(FORMATS), size=n, p=FORMAT_P)
    docs: list[Document] = []
    pos = 0
    for i in range(n):
        title_n, caption_n, _ = (int(x) for x in lengths[i])
        title = [vocab[w] for w in words[pos : pos + title_n]]
        caption = [vocab[w] for w in words[pos + title_n : pos + title_n + caption_n]]
        tags = list(dict.fromkeys(vocab[w] for w in words[pos + title_n + caption_n : pos + lengths[i].sum()]))
        pos += int(lengths[i].sum())
        k = int(rng.integers(1, 5))
        shares = rng.dirichlet(np.ones(k))
        names = rng.choice(len(COLOUR_NAMES), size=k, replace=False)
        colours = sorted(
            (ColourShare(COLOUR_NAMES[c], float(s)) for c, s in zip(names, shares, strict=True)),
            key=lambda c: -c.share,
        )
        num = start + i
        docs.append(
            Document(
                id=content_id(f"text-bench-{num}".encode()),
                path=f"/photos/IMG_{num:07d}.jpg",
                width=int(rng.integers(320, 4000)),
                height=int(rng.integers(240, 3000)),
                format=FORMATS[formats[i]],
                bytes=int(rng.integers(20_000, 5_000_000)),
                title=" ".join(title).capitalize(),
                caption=" ".join(caption),
                tags=tags,
                colours=colours,
            )
        )
    return docs


def make_queries(n: int, vocab: Sequence[str], p: np.ndarray, rng: np.random.Generator) -> list[str]:
    lengths = rng.integers(1, 4, n)
    return [" ".join(vocab[w] for w in rng.choice(len(vocab), size=int(m), p=p)) for m in lengths]


@dataclass(slots=True)
class SizeResult:
    n: int
    insert_s: float
    disk_mib: float
    rows: list[list[str]]
    p50: dict[tuple[str, str], float]
    p95: dict[tuple[str, str], float]


def build_store(
    path: Path, n: int, batch: int, vocab: Sequence[str], p: np.ndarray, seed: int
) -> tuple[SqliteStore, float]:
    settings = Settings(data_dir=path)
    store = SqliteStore(
        settings.store_path,
        text_weights=settings.text_weights.model_dump(),
        colour_min_share=settings.search.colour_min_share,
    )
    rng = np.random.default_rng(seed)
    insert_s = 0.0
    for start in range(0, n, batch):
        docs = generate_docs(min(batch, n - start), vocab, p, rng, start)
        t = time.perf_counter()
        store.upsert(docs)
        insert_s += time.perf_counter() - t
    return store, insert_s


def engine_search(store: SqliteStore, filters: list[Filter], k: int) -> Callable[[str], list[str]]:
    return lambda query: [hit.id for hit in store.search_text(query, filters, k)]


def exists_search(store: SqliteStore, field: str, value: str, k: int) -> Callable[[str], list[str]]:
    """The engine's text query with a term filter as a correlated EXISTS (for comparison only)."""
    sql = (
        f"SELECT d.id, {sqlquery.bm25_expression(store.weights)} AS score FROM fts "
        "JOIN documents d ON d.rowid = fts.rowid WHERE fts MATCH ? AND EXISTS (SELECT 1 FROM terms t "
        "WHERE t.field = ? AND t.value = ? AND t.doc_rowid = d.rowid) ORDER BY score DESC, d.id LIMIT ?"
    )

    def search(query: str) -> list[str]:
        match = sqlquery.fts_match(query)
        conn = store._conn()  # the store has no public raw-SQL entry point
        return [row[0] for row in conn.execute(sql, (match, field, value, k))] if match else []

    return search


def measure(
    store: SqliteStore, mixes: dict[str, list[str]], warmup: int, seed: int
) -> dict[tuple[str, str], list[float]]:
    calls = {name: engine_search(store, parse_filters(list(exprs)), k) for name, k, exprs in VARIANTS}
    calls[EXISTS_VARIANT] = exists_search(store, "format", "jpeg", 200)
    for query in next(iter(mixes.values()))[:warmup]:
        store.search_text(query, [], 200)
    rng = np.random.default_rng(seed)
    names = list(calls)
    samples: dict[tuple[str, str], list[float]] = {}
    for mix, queries in mixes.items():
        for query in queries:
            found: dict[str, list[str]] = {}
            for i in rng.permutation(len(names)):
                start = time.perf_counter()
                found[names[i]] = calls[names[i]](query)
                samples.setdefault((mix, names[i]), []).append(time.perf_counter() - start)
            if found[EXISTS_VARIANT] != found["text + format=jpeg (70%)"]:
                raise SystemExit(f"EXISTS form disagrees with the engine for {query!r}")
    return samples


def run_size(
    n: int, args: argparse.Namespace, vocab: Sequence[str], p: np.ndarray, mixes: dict[str, list[str]]
) -> SizeResult:
    tmp = Path(tempfile.mkdtemp(prefix="imgsearch-bench-text-"))
    try:
        store, insert_s = build_store(tmp, n, args.batch, vocab, p, args.seed + n)
        disk = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()) / 2**20
        print(f"{n:,} docs inserted in {insert_s:.1f}s ({n / insert_s:,.0f} docs/s), {disk:.0f} MiB on disk")
        matches = {mix: statistics.median(store.count_text(q, []) for q in qs) for mix, qs in mixes.items()}
        samples = measure(store, mixes, args.warmup, args.seed)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows: list[list[str]] = []
    p50: dict[tuple[str, str], float] = {}
    p95: dict[tuple[str, str], float] = {}
    for mix in mixes:
        for name in [v[0] for v in VARIANTS] + [EXISTS_VARIANT]:
            lat = Latency.of(samples[(mix, name)])
            p50[(mix, name)], p95[(mix, name)] = lat.p50, lat.p95
            ratio = lat.p50 / p50[(mix, "text k=200")]
            rows.append(
                [
                    f"{n:,}",
                    f"{mix} ({matches[mix]:,.0f})",
                    name,
                    fmt(lat.p50, 3),
                    fmt(lat.p95, 3),
                    fmt(lat.mean, 3),
                    f"{ratio:.2f}x",
                ]
            )
    return SizeResult(n, insert_s, disk, rows, p50, p95)


NOTES = """What it means: FTS5 ranks every document that matches any query word (the engine ORs the
words), so latency follows the number of matching documents rather than the collection size: queries
of selective words stay well under a millisecond at 100k documents, while a query containing a very
common word ranks a large share of the collection (tens of ms at 100k, growing linearly with it). k
hardly matters, since all matches are scored and sorted either way.

Filters behave in two ways. With many matches, a filter that rejects most documents makes the query
cheaper (fewer rows to rank: `format=webp`), a broad one adds a little (`format=jpeg`). With few
matches, every filter adds a fixed cost that grows with the number of documents *passing the filter*:
SQLite evaluates `d.rowid IN (SELECT doc_rowid FROM terms ...)` by first materialising the whole
subquery into a temporary B-tree ("LIST SUBQUERY" in the query plan), i.e. ~70,000 rowids per query for
`format=jpeg` at 100k, before it checks the handful of text matches. The same filter written as a
correlated `EXISTS (... AND t.doc_rowid = d.rowid)` is a primary-key probe per match: same results (the
script checks), and the fixed cost disappears for selective queries (see the "EXISTS form" rows); for
queries with tens of thousands of matches it is about the same at p50 and can be slower at p95, since
it pays one B-tree probe per match."""


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="documents per store")
    parser.add_argument("--queries", type=int, default=300, help="queries per mix")
    parser.add_argument("--vocab", type=int, default=20_000, help="vocabulary size")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent s of word frequencies")
    parser.add_argument("--batch", type=int, default=2000, help="documents per upsert transaction")
    parser.add_argument("--warmup", type=int, default=30, help="untimed queries before measuring")
    parser.add_argument("--seed", type=int, default=1)
    add_markdown_args(parser)
    args = parser.parse_args(argv)
    machine()  # snapshot of machine and code revision before measuring

    rng = np.random.default_rng(args.seed)
    vocab = vocabulary(args.vocab, rng)
    p = zipf_p(len(vocab), args.zipf)
    uniform = np.full(len(vocab), 1.0 / len(vocab))
    mixes = {
        "frequent": make_queries(args.queries, vocab, p, rng),
        "uniform": make_queries(args.queries, vocab, uniform, rng),
    }
    results = [run_size(n, args, vocab, p, mixes) for n in args.sizes]

    headers = ["docs", "queries (median matches)", "variant", "p50 ms", "p95 ms", "mean ms", "p50 vs k=200"]
    latency_table = table(headers, [row for r in results for row in r.rows])
    insert_table = table(
        ["docs", "insert s", "docs/s", "on disk MiB"],
        [[f"{r.n:,}", fmt(r.insert_s, 1), fmt(r.n / r.insert_s, 0), fmt(r.disk_mib, 0)] for r in results],
    )
    print("\n" + insert_table + "\n\n" + latency_table)

    summary = []
    for r in results:
        f, u = ("frequent", "text k=200"), ("uniform", "text k=200")
        summary.append(
            f"- {r.n:,} docs: BM25 p50 / p95 = **{fmt(r.p50[f], 2)} / {fmt(r.p95[f], 2)} ms** "
            f"(frequent-word queries), **{fmt(r.p50[u], 2)} / {fmt(r.p95[u], 2)} ms** (uniform)"
        )
    if len(results) >= 2:
        a, b = results[0], results[-1]
        key = ("frequent", "text k=200")
        summary.append(
            f"- {b.n // a.n}x more documents -> p50 {b.p50[key] / a.p50[key]:.1f}x, "
            f"p95 {b.p95[key] / a.p95[key]:.1f}x (frequent-word queries)"
        )
    body = f"""## BM25 text search (SQLite FTS5)

Measured on {machine().one_line()}. Generated documents: vocabulary of {args.vocab:,} pseudo-words with
Zipf(s={args.zipf}) frequencies; title 3-8 words, caption 8-20, tags 2-6; format jpeg/png/webp at
70/20/10%; 1-4 colours. Inserted with `SqliteStore.upsert` in batches of {args.batch:,}.
{args.queries} queries per mix, 1-3 words each (`search_text`, OR of the words, BM25 with the default
field weights). "frequent" draws query words by corpus frequency, so many queries contain a word
that occurs in a large share of all documents; "uniform" draws them uniformly from the vocabulary
(median number of matching documents in brackets). Each query runs every variant, in random order.

{chr(10).join(summary)}

Insert throughput (one transaction per batch, FTS5 + terms index maintained):

{insert_table}

Query latency per single query:

{latency_table}

{NOTES}
"""
    write_report("text_search", body, args)


if __name__ == "__main__":
    main()
