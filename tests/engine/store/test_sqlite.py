"""SQLite-specific behaviour: BM25 against a plain Python reference, migrations, file format."""

from __future__ import annotations

import math
import re
import secrets
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from engine.documents import Document
from engine.errors import StoreError
from engine.store.sqlite import SCHEMA_VERSION, SqliteStore, filename_words


def _bm25_reference(docs: list[str], query: list[str], weight: float, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 as SQLite FTS5 defines it: idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6,
    the column weight multiplies the term frequency, and D is the row's length over all columns."""
    tokens = [re.findall(r"\w+", d.lower()) for d in docs]
    avgdl = sum(map(len, tokens)) / len(tokens)
    scores = []
    for toks in tokens:
        tf = Counter(toks)
        score = 0.0
        for term in query:
            n = sum(term in t for t in tokens)
            idf = max(math.log((len(docs) - n + 0.5) / (n + 0.5)), 1e-6)
            f = weight * tf[term]
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(toks) / avgdl))
        scores.append(score)
    return scores


@pytest.mark.parametrize("weight", [1.0, 2.5])
def test_bm25_matches_a_plain_python_reference(tmp_path: Path, weight: float) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3", text_weights={"caption": weight})
    captions = [
        "apple banana apple",
        "banana cherry",
        "cherry cherry cherry date",
        "apple",
        "elder fig grape",
        "banana banana banana banana banana split",
        "kiwi lemon mango",
        "apple cherry",
    ]
    docs = [
        Document(id=secrets.token_hex(16), path=None, width=1, height=1, format="png", bytes=1, caption=c)
        for c in captions
    ]
    store.upsert(docs)
    for query in (["apple"], ["cherry"], ["apple", "cherry"], ["banana", "kiwi"]):
        ref = _bm25_reference(captions, query, weight)
        got = {h.id: h.score for h in store.search_text(" ".join(query), [], 20)}
        matching = [i for i, c in enumerate(captions) if set(query) & set(c.split())]
        assert set(got) == {docs[i].id for i in matching}
        for i in matching:
            assert got[docs[i].id] == pytest.approx(ref[i], rel=1e-6)
    store.close()


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    assert store.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store.close()
    SqliteStore(tmp_path / "s.sqlite3").close()  # reopening migrates nothing and keeps data


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "s.sqlite3").close()
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this imgsearch"):
        SqliteStore(tmp_path / "s.sqlite3")


def test_filename_words() -> None:
    assert filename_words("/a/b/GoldenRetriever_02-final.JPG") == "Golden Retriever 02 final"
    assert filename_words(None) == ""
    assert filename_words("C:\\pics\\red.car.png") == "red car"
