"""The pure SQL builders: FTS escaping and filter SQL, without a real store where possible."""

from __future__ import annotations

import sqlite3

import pytest

from engine.filters import parse_filters
from engine.store import sqlquery

HOSTILE = [
    "title:secret",
    "a OR b",
    "NEAR(a b)",
    '"unbalanced',
    "x*",
    "-minus",
    "a AND NOT b",
    "col : val",
    "^start",
    "{title caption}: x",
    "'; DROP TABLE documents; --",
    "(((",
    "naïve café",
    "AND",
    "\x00null",
]


def test_fts_match_quotes_each_word() -> None:
    assert sqlquery.fts_match("Red  car, red!") == '"red" OR "car"'
    assert sqlquery.fts_match("   ...  ") is None
    assert sqlquery.fts_match("") is None


def test_dotted_acronyms_also_match_joined() -> None:
    assert sqlquery.query_tokens("MR D.I.Y. (M) SDN") == ["mr", "sdn", "diy"]
    assert sqlquery.query_tokens("costs 3.50") == ["costs", "3", "50"]
    assert sqlquery.query_tokens("a b") == ["a", "b"]  # nothing longer: keep what there is


def test_fts_match_caps_tokens() -> None:
    many = " ".join(f"w{i}" for i in range(100))
    assert sqlquery.fts_match(many).count(" OR ") == sqlquery.MAX_QUERY_TOKENS - 1  # type: ignore[union-attr]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_never_fts_syntax(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE fts USING fts5(title, caption, tokenize='porter unicode61')")
    conn.execute("INSERT INTO fts VALUES ('secret plan', 'red car near the table')")
    match = sqlquery.fts_match(text)
    if match is not None:
        conn.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (match,)).fetchall()  # must not raise


def test_title_column_filter_is_a_plain_word() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE fts USING fts5(title, caption)")
    conn.execute("INSERT INTO fts VALUES ('nothing', 'title words')")
    # As FTS syntax `title:secret` would search the title column for "secret" (no hit); as words it
    # matches "title" in the caption.
    match = sqlquery.fts_match("title:secret")
    assert conn.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (match,)).fetchone()[0] == 1


def test_where_filters_builds_parameterised_sql() -> None:
    where, params = sqlquery.where_filters(
        parse_filters(["colour=red,blue", "width>=100", "label_count.person<2", "has_text=true"]),
        colour_min_share=0.05,
    )
    assert where.count("?") == len(params)
    assert params == ["colour", "red", "blue", 0.05, 100.0, "label", "person", 2.0, 1]
    assert "NOT EXISTS" in where  # a missing label counts as zero persons
    assert sqlquery.where_filters([], colour_min_share=0.1) == ("1", [])


def test_keyed_range_edge_cases() -> None:
    assert sqlquery.where_filters(parse_filters(["label_count.dog>=0"]), colour_min_share=0) == ("1", [])
    assert sqlquery.where_filters(parse_filters(["label_count.dog<0"]), colour_min_share=0) == ("0", [])


def test_bm25_weights_follow_text_fields() -> None:
    expr = sqlquery.bm25_expression({"title": 3, "ocr": 0.5})
    assert expr == "-bm25(fts, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5)"
