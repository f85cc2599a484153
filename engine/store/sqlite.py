"""Embedded document store: SQLite in WAL mode with an FTS5 BM25 index.

Tables: `documents` (one row per image, JSON body for nested data), `terms` (facet/filter
values: colour with share, label with count, format, licence, orientation, tag, source),
`vectors` (float16 bytes per field: the source Faiss is rebuilt from), `fts` (FTS5, rowid =
documents.rowid), `impressions` and `clicks`, `meta` (generation counter). The schema
version is `PRAGMA user_version`; `MIGRATIONS` brings older files forward.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.documents import ColourShare, Document, Label, OcrWord
from engine.errors import StoreError
from engine.filters import Filter
from engine.store import sqlquery
from engine.store.base import TEXT_FIELDS, Click, Impression, TextHit

MIGRATIONS: list[list[str]] = [
    [  # version 1
        """CREATE TABLE documents (
            rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, path TEXT, width INTEGER, height INTEGER,
            format TEXT, bytes INTEGER, orientation TEXT, taken_at TEXT, title TEXT, caption TEXT,
            tags TEXT, licence TEXT, source TEXT, phash TEXT, ocr_text TEXT, has_text INTEGER,
            body TEXT, ingested_at TEXT)""",
        "CREATE INDEX documents_path ON documents(path)",
        "CREATE INDEX documents_ingested ON documents(ingested_at)",
        """CREATE TABLE terms (doc_rowid INTEGER NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, num REAL,
            PRIMARY KEY (field, value, doc_rowid)) WITHOUT ROWID""",
        "CREATE INDEX terms_doc ON terms(doc_rowid)",
        """CREATE TABLE vectors (doc_rowid INTEGER NOT NULL, field TEXT NOT NULL, dim INTEGER NOT NULL,
            data BLOB NOT NULL, PRIMARY KEY (field, doc_rowid))""",
        "CREATE INDEX vectors_doc ON vectors(doc_rowid)",
        "CREATE VIRTUAL TABLE fts USING fts5("
        + ", ".join(TEXT_FIELDS)
        + ", tokenize = 'porter unicode61 remove_diacritics 2')",
        """CREATE TABLE impressions (query_id TEXT PRIMARY KEY, ts TEXT NOT NULL, request TEXT NOT NULL,
            shown TEXT NOT NULL)""",
        """CREATE TABLE clicks (id INTEGER PRIMARY KEY, query_id TEXT NOT NULL, doc_id TEXT NOT NULL,
            position INTEGER NOT NULL, ts TEXT NOT NULL)""",
        "CREATE INDEX clicks_query ON clicks(query_id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta(key, value) VALUES ('generation', '0')",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def filename_words(path: str | None) -> str:
    """Words of a file name without its extension: `GoldenRetriever_02.jpg` -> `Golden Retriever 02`."""
    if not path:
        return ""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return " ".join(re.split(r"[\W_]+", _CAMEL.sub(" ", stem))).strip()


def colour_text(doc: Document, min_share: float) -> str:
    # Repeat a colour name with its share so BM25 ranks redder images higher for "red".
    words: list[str] = []
    for c in doc.colours:
        if c.share >= min_share:
            words.extend([c.name] * max(1, round(c.share * 10)))
    return " ".join(words)


def _vec_to_blob(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype=np.float32).astype("<f2").tobytes()


def _blob_to_vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32)


class SqliteStore:
    """`DocumentStore` on one SQLite file. Thread-safe: a connection per thread, one writer at a time."""

    def __init__(self, path: Path, *, text_weights: Mapping[str, float] | None = None, colour_min_share: float = 0.05):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.weights = dict(text_weights or {})
        self.colour_min_share = colour_min_share
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._migrate()

    # -- connections -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=OFF")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this imgsearch ({SCHEMA_VERSION}); "
                "upgrade imgsearch or point IMGSEARCH_DATA_DIR elsewhere"
            )
        with self._write_lock:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[target - 1]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {target}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._conn_lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _write(self, work: Any) -> Any:
        """Run `work(conn)` in one IMMEDIATE transaction that also bumps the generation counter."""
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path} is busy or read-only: {exc}") from exc
            try:
                result = work(conn)
                conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                conn.execute("COMMIT")
                return result
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- documents ---------------------------------------------------------------------------
    def upsert(self, docs: Sequence[Document]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for doc in docs:
                self._upsert_one(conn, doc)

        if docs:
            self._write(work)

    def _upsert_one(self, conn: sqlite3.Connection, doc: Document) -> None:
        body = {
            "colours": [[c.name, c.share] for c in doc.colours],
            "labels": [lb.to_json() for lb in doc.labels],
            "ocr_words": [[w.text, w.confidence, *w.box] for w in doc.ocr_words],
            "enrichments": doc.enrichments,
            "label_terms": doc.label_terms,
        }
        ingested = (doc.ingested_at or datetime.now()).isoformat(timespec="seconds")
        row = conn.execute(
            """INSERT INTO documents (id, path, width, height, format, bytes, orientation, taken_at, title,
                   caption, tags, licence, source, phash, ocr_text, has_text, body, ingested_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET path=excluded.path, width=excluded.width, height=excluded.height,
                   format=excluded.format, bytes=excluded.bytes, orientation=excluded.orientation,
                   taken_at=excluded.taken_at, title=excluded.title, caption=excluded.caption, tags=excluded.tags,
                   licence=excluded.licence, source=excluded.source, phash=excluded.phash,
                   ocr_text=excluded.ocr_text, has_text=excluded.has_text, body=excluded.body
               RETURNING rowid""",
            (
                doc.id,
                doc.path,
                doc.width,
                doc.height,
                doc.format,
                doc.bytes,
                doc.orientation,
                doc.taken_at.isoformat(timespec="seconds") if doc.taken_at else None,
                doc.title,
                doc.caption,
                json.dumps(doc.tags),
                doc.licence,
                doc.source,
                doc.phash,
                doc.ocr_text,
                int(doc.has_text),
                json.dumps(body),
                ingested,
            ),
        ).fetchone()
        rowid = int(row[0])
        for table, key in (("terms", "doc_rowid"), ("vectors", "doc_rowid"), ("fts", "rowid")):
            conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (rowid,))
        terms: dict[tuple[str, str], float | None] = {}
        for c in doc.colours:
            terms[("colour", c.name)] = c.share
        for lb in doc.labels:
            terms[("label", lb.name.lower())] = float(lb.count)
        for fld, value in (
            ("format", doc.format),
            ("licence", doc.licence),
            ("orientation", doc.orientation),
            ("source", doc.source),
        ):
            if value:
                terms[(fld, value.lower())] = None
        for tag in doc.tags:
            if tag.strip():
                terms[("tag", tag.strip().lower())] = None
        conn.executemany(
            "INSERT INTO terms (doc_rowid, field, value, num) VALUES (?, ?, ?, ?)",
            [(rowid, f, v, n) for (f, v), n in terms.items()],
        )
        conn.executemany(
            "INSERT INTO vectors (doc_rowid, field, dim, data) VALUES (?, ?, ?, ?)",
            [(rowid, name, int(vec.shape[0]), _vec_to_blob(vec)) for name, vec in doc.vectors.items()],
        )
        label_words = " ".join(
            [*(" ".join([lb.name] * max(1, min(lb.count, 5))) for lb in doc.labels), *doc.label_terms]
        )
        conn.execute(
            "INSERT INTO fts (rowid, " + ", ".join(TEXT_FIELDS) + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rowid,
                doc.title,
                doc.caption,
                " ".join(doc.tags),
                filename_words(doc.path),
                colour_text(doc, self.colour_min_share),
                label_words,
                doc.ocr_text,
            ),
        )

    def delete(self, ids: Sequence[str]) -> int:
        def work(conn: sqlite3.Connection) -> int:
            removed = 0
            for doc_id in ids:
                row = conn.execute("SELECT rowid FROM documents WHERE id = ?", (doc_id,)).fetchone()
                if row is None:
                    continue
                for table, key in (
                    ("terms", "doc_rowid"),
                    ("vectors", "doc_rowid"),
                    ("fts", "rowid"),
                    ("documents", "rowid"),
                ):
                    conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (row[0],))
                removed += 1
            return removed

        return int(self._write(work)) if ids else 0

    def _select_docs(self, where: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return (
            self._conn()
            .execute(
                "SELECT rowid, id, path, width, height, format, bytes, orientation, taken_at, title, caption, tags, "
                f"licence, source, phash, ocr_text, body, ingested_at FROM documents WHERE {where}",
                list(params),
            )
            .fetchall()
        )

    def get(self, ids: Sequence[str]) -> dict[str, Document]:
        out: dict[str, Document] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            rows = self._select_docs(f"id IN ({', '.join('?' for _ in chunk)})", chunk)
            vectors: dict[int, dict[str, np.ndarray]] = {}
            rowids = [r[0] for r in rows]
            if rowids:
                for rowid, fld, blob in self._conn().execute(
                    f"SELECT doc_rowid, field, data FROM vectors WHERE doc_rowid IN ({', '.join('?' for _ in rowids)})",
                    rowids,
                ):
                    vectors.setdefault(rowid, {})[fld] = _blob_to_vec(blob)
            for row in rows:
                doc = _row_to_doc(row)
                doc.vectors = vectors.get(row[0], {})
                out[doc.id] = doc
        return out

    def existing(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(ids), 500):
            found.update(
                r[0]
                for r in self._conn().execute(
                    f"SELECT id FROM documents WHERE id IN ({', '.join('?' for _ in chunk)})", chunk
                )
            )
        return found

    def ids_for_path(self, path: str) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT id FROM documents WHERE path = ? ORDER BY id", (path,))]

    # -- search ------------------------------------------------------------------------------
    def count(self, filters: Sequence[Filter] = ()) -> int:
        sql, params = sqlquery.count_sql(filters, colour_min_share=self.colour_min_share)
        return int(self._conn().execute(sql, params).fetchone()[0])

    def search_text(self, query: str, filters: Sequence[Filter], k: int) -> list[TextHit]:
        match = sqlquery.fts_match(query)
        if match is None or k <= 0:
            return []
        sql, params = sqlquery.text_search_sql(
            match, filters, weights=self.weights, colour_min_share=self.colour_min_share, k=k
        )
        return [TextHit(doc_id, float(score)) for doc_id, score in self._conn().execute(sql, params)]

    def count_text(self, query: str, filters: Sequence[Filter]) -> int:
        match = sqlquery.fts_match(query)
        if match is None:
            return 0
        sql, params = sqlquery.count_sql(filters, colour_min_share=self.colour_min_share, match=match)
        return int(self._conn().execute(sql, params).fetchone()[0])

    def browse(self, filters: Sequence[Filter], k: int, offset: int = 0) -> list[str]:
        where, params = sqlquery.where_filters(filters, colour_min_share=self.colour_min_share)
        rows = self._conn().execute(
            f"SELECT d.id FROM documents d WHERE {where} ORDER BY d.ingested_at DESC, d.id LIMIT ? OFFSET ?",
            [*params, int(k), int(offset)],
        )
        return [r[0] for r in rows]

    def facets(
        self, filters: Sequence[Filter], fields: Sequence[str], *, text: str | None = None, size: int = 50
    ) -> dict[str, dict[str, int]]:
        if not fields:
            return {}
        match = sqlquery.fts_match(text) if text else None
        sql, params = sqlquery.facets_sql(fields, filters, colour_min_share=self.colour_min_share, match=match)
        counts: dict[str, list[tuple[str, int]]] = {fld: [] for fld in fields}
        for fld, value, n in self._conn().execute(sql, params):
            counts[fld].append((value, int(n)))
        # most frequent first, ties by value; at most `size` values per field
        return {fld: dict(sorted(pairs, key=lambda p: (-p[1], p[0]))[:size]) for fld, pairs in counts.items()}

    def filter_ids(self, filters: Sequence[Filter]) -> list[str]:
        where, params = sqlquery.where_filters(filters, colour_min_share=self.colour_min_share)
        return [r[0] for r in self._conn().execute(f"SELECT d.id FROM documents d WHERE {where}", params)]

    # -- vectors -----------------------------------------------------------------------------
    def vector_fields(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT field, MAX(dim) FROM vectors GROUP BY field")
        return {fld: int(dim) for fld, dim in rows}

    def vector_ids(self, field: str) -> list[str]:
        rows = self._conn().execute(
            "SELECT d.id FROM vectors v JOIN documents d ON d.rowid = v.doc_rowid WHERE v.field = ?", (field,)
        )
        return [r[0] for r in rows]

    def get_vectors(self, field: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(ids), 500):
            rows = self._conn().execute(
                "SELECT d.id, v.data FROM vectors v JOIN documents d ON d.rowid = v.doc_rowid "
                f"WHERE v.field = ? AND d.id IN ({', '.join('?' for _ in chunk)})",
                [field, *chunk],
            )
            out.update((doc_id, _blob_to_vec(blob)) for doc_id, blob in rows)
        return out

    def iter_vectors(self, field: str, *, batch_size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]:
        cursor = self._conn().execute(
            "SELECT d.id, v.data FROM vectors v JOIN documents d ON d.rowid = v.doc_rowid WHERE v.field = ?",
            (field,),
        )
        while rows := cursor.fetchmany(batch_size):
            ids = [r[0] for r in rows]
            yield ids, np.stack([_blob_to_vec(r[1]) for r in rows])

    def iter_phashes(self) -> Iterator[tuple[str, str]]:
        yield from self._conn().execute("SELECT id, phash FROM documents WHERE phash IS NOT NULL")

    def generation(self) -> int:
        return int(self._conn().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    # -- impressions and clicks --------------------------------------------------------------
    def record_impression(self, impression: Impression) -> None:
        conn = self._conn()
        with self._write_lock:
            conn.execute(
                "INSERT OR REPLACE INTO impressions (query_id, ts, request, shown) VALUES (?, ?, ?, ?)",
                (
                    impression.query_id,
                    impression.ts.isoformat(),
                    json.dumps(impression.request),
                    json.dumps(impression.shown),
                ),
            )

    def get_impression(self, query_id: str) -> Impression | None:
        row = (
            self._conn()
            .execute("SELECT query_id, ts, request, shown FROM impressions WHERE query_id = ?", (query_id,))
            .fetchone()
        )
        return _row_to_impression(row) if row else None

    def record_click(self, click: Click) -> None:
        conn = self._conn()
        with self._write_lock:
            conn.execute(
                "INSERT INTO clicks (query_id, doc_id, position, ts) VALUES (?, ?, ?, ?)",
                (click.query_id, click.doc_id, click.position, click.ts.isoformat()),
            )

    def impressions(self, *, limit: int | None = None) -> list[Impression]:
        rows = self._conn().execute(
            "SELECT query_id, ts, request, shown FROM impressions ORDER BY ts LIMIT ?", (limit or -1,)
        )
        return [_row_to_impression(r) for r in rows]

    def clicks(self, *, limit: int | None = None) -> list[Click]:
        rows = self._conn().execute(
            "SELECT query_id, doc_id, position, ts FROM clicks ORDER BY id LIMIT ?", (limit or -1,)
        )
        return [Click(q, d, int(p), datetime.fromisoformat(ts)) for q, d, p, ts in rows]

    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "schema_version": self.schema_version(),
            "documents": self.count(),
            "vectors": self.vector_fields(),
            "impressions": conn.execute("SELECT COUNT(*) FROM impressions").fetchone()[0],
            "clicks": conn.execute("SELECT COUNT(*) FROM clicks").fetchone()[0],
            "bytes_on_disk": size,
        }


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _row_to_doc(row: tuple[Any, ...]) -> Document:
    (
        _,
        doc_id,
        path,
        width,
        height,
        fmt,
        size,
        orientation,
        taken_at,
        title,
        caption,
        tags,
        licence,
        source,
        phash,
        ocr_text,
        body_json,
        ingested_at,
    ) = row
    body = json.loads(body_json or "{}")
    return Document(
        id=doc_id,
        path=path,
        width=width,
        height=height,
        format=fmt,
        bytes=size,
        orientation=orientation,
        taken_at=datetime.fromisoformat(taken_at) if taken_at else None,
        title=title or "",
        caption=caption or "",
        tags=json.loads(tags or "[]"),
        licence=licence or "",
        source=source or "",
        colours=[ColourShare(n, float(s)) for n, s in body.get("colours", [])],
        phash=phash,
        ocr_text=ocr_text or "",
        ocr_words=[OcrWord(w[0], float(w[1]), (w[2], w[3], w[4], w[5])) for w in body.get("ocr_words", [])],
        labels=[Label.from_json(lb) for lb in body.get("labels", [])],
        enrichments=dict(body.get("enrichments", {})),
        label_terms=list(body.get("label_terms", [])),
        ingested_at=datetime.fromisoformat(ingested_at) if ingested_at else None,
    )


def _row_to_impression(row: tuple[Any, ...]) -> Impression:
    query_id, ts, request, shown = row
    return Impression(query_id, datetime.fromisoformat(ts), json.loads(request), json.loads(shown))
