"""Snippets: a window of OCR text around the words a query matched, HTML-escaped, matches marked."""

from __future__ import annotations

import html
import re

from engine.store.sqlquery import query_tokens

_WORD = re.compile(r"\w+", re.UNICODE)


def _stem(word: str) -> str:
    # Light plural folding so "receipts" marks "receipt"; the index's Porter stemmer did the matching.
    word = word.lower()
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


def snippet(text: str, query: str, *, width: int = 160, mark: tuple[str, str] = ("<mark>", "</mark>")) -> str | None:
    """About `width` characters of `text` around its first query match, matches wrapped in `mark`.

    The text is HTML-escaped (OCR output is untrusted); None when no query word occurs in it.
    """
    wanted = {_stem(t) for t in query_tokens(query)}
    if not wanted or not text:
        return None
    flat = " ".join(text.split())
    matches = [m for m in _WORD.finditer(flat) if _stem(m.group()) in wanted]
    if not matches:
        return None
    first = matches[0]
    start = max(0, first.start() - width // 3)
    end = min(len(flat), start + width)
    if start > 0 and " " in flat[start : first.start()]:
        start = flat.index(" ", start) + 1
    out, cursor = [], start
    for m in matches:
        if m.start() < start or m.end() > end:
            continue
        out.append(html.escape(flat[cursor : m.start()]))
        out.append(f"{mark[0]}{html.escape(m.group())}{mark[1]}")
        cursor = m.end()
    out.append(html.escape(flat[cursor:end]))
    return ("…" if start > 0 else "") + "".join(out) + ("…" if end < len(flat) else "")
