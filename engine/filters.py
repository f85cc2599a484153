"""Filters and facets: parsed at the edge into typed objects, the same for every backend.

Syntax (CLI `--filter`, `GET /search?filter=`):
  colour=red            term (comma = any of: `colour=red,blue`); `!=` excludes
  width>=800            range on width, height, bytes, date (`date>=2020-01-01`)
  label_count.person>=2 per-label count (a missing label counts as 0)
  colour_share.red>=0.3 per-colour share of the image (0..1)
  has_text=true         whether OCR found text
POST bodies may also give a mapping: {"colour": ["red"], "width": {"gte": 800}, "has_text": true}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from engine.errors import InvalidFilter

TERM_FIELDS = ("colour", "label", "format", "licence", "orientation", "tag", "source")
RANGE_FIELDS = ("width", "height", "bytes", "date")
KEYED_RANGE_FIELDS = ("label_count", "colour_share")
BOOL_FIELDS = ("has_text",)
FACET_FIELDS = (*TERM_FIELDS, "has_text")
_ALIASES = {
    "color": "colour",
    "labels": "label",
    "tags": "tag",
    "license": "licence",
    "taken": "date",
    "color_share": "colour_share",
}
_OPS = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}
_EXPR = re.compile(r"^\s*([A-Za-z_]+)(?:\.([^=<>!]+?))?\s*(>=|<=|!=|=|:|>|<)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class TermFilter:
    field: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class RangeFilter:
    field: str
    op: str  # gte | gt | lte | lt
    value: float | str  # str only for date (ISO 8601)
    key: str | None = None  # label or colour name for keyed ranges


@dataclass(frozen=True, slots=True)
class BoolFilter:
    field: str
    value: bool


Filter = TermFilter | RangeFilter | BoolFilter


def _field(name: str) -> str:
    name = name.strip().lower()
    return _ALIASES.get(name, name)


def _known() -> str:
    return ", ".join((*TERM_FIELDS, *RANGE_FIELDS, *(f"{k}.NAME" for k in KEYED_RANGE_FIELDS), *BOOL_FIELDS))


def _number(field: str, raw: str) -> float | str:
    if field == "date":
        return _iso_date(raw)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidFilter(f"filter {field!r} needs a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidFilter(f"filter {field!r} needs a finite number, got {raw!r}")
    return value


def _iso_date(raw: str) -> str:
    text = raw.strip()
    for parse in (datetime.fromisoformat, lambda s: datetime.combine(date.fromisoformat(s), datetime.min.time())):
        try:
            return parse(text).replace(tzinfo=None).isoformat(timespec="seconds")
        except ValueError:
            continue
    raise InvalidFilter(f"filter 'date' needs an ISO date like 2024-05-31 or 2024-05-31T12:00:00, got {raw!r}")


def _bool(field: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidFilter(f"filter {field!r} takes true or false, got {raw!r}")


def _term_values(field: str, raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    values = tuple(str(v).strip().lower() for v in items if str(v).strip())
    if not values:
        raise InvalidFilter(f"filter {field!r} has no value; write {field}=VALUE")
    return values


def parse_filter(expr: str) -> Filter:
    """Parse one `FIELD OP VALUE` expression; raises InvalidFilter naming the problem."""
    match = _EXPR.match(expr or "")
    if not match:
        raise InvalidFilter(f"cannot parse filter {expr!r}; write FIELD=VALUE or FIELD>=NUMBER (fields: {_known()})")
    name, key, op, raw = match.groups()
    field = _field(name)
    if op == ":":
        op = "="
    if key is not None:
        if field not in KEYED_RANGE_FIELDS:
            raise InvalidFilter(f"unknown filter {name}.{key!r}; only {', '.join(KEYED_RANGE_FIELDS)} take a .NAME")
        if op in ("=", "!="):
            raise InvalidFilter(f"filter {field}.{key} compares a number: use >=, >, <= or <")
        return RangeFilter(field, _OPS[op], _number(field, raw), key=key.strip().lower())
    if field in TERM_FIELDS:
        if op not in ("=", "!="):
            raise InvalidFilter(f"filter {field!r} matches values: use {field}=VALUE or {field}!=VALUE")
        return TermFilter(field, _term_values(field, raw), negate=op == "!=")
    if field in RANGE_FIELDS:
        if op in ("=", "!="):
            raise InvalidFilter(f"filter {field!r} is a range: use >=, >, <= or < (e.g. {field}>=100)")
        return RangeFilter(field, _OPS[op], _number(field, raw))
    if field in BOOL_FIELDS:
        if op != "=":
            raise InvalidFilter(f"filter {field!r} takes {field}=true or {field}=false")
        return BoolFilter(field, _bool(field, raw))
    raise InvalidFilter(f"unknown filter field {name!r}; choose from {_known()}")


def parse_filter_mapping(spec: Mapping[str, Any]) -> list[Filter]:
    """Parse the JSON mapping form used by POST /search."""
    out: list[Filter] = []
    for name, raw in spec.items():
        base, _, key = str(name).partition(".")
        field = _field(base)
        if isinstance(raw, Mapping):
            unknown = set(raw) - set(_OPS.values())
            if unknown or not raw:
                raise InvalidFilter(f"range filter {name!r} takes keys gte, gt, lte, lt; got {sorted(raw)}")
            for op, value in raw.items():
                symbol = next(s for s, o in _OPS.items() if o == op)
                out.append(parse_filter(f"{name}{symbol}{value}"))
        elif field in BOOL_FIELDS:
            out.append(BoolFilter(field, _bool(field, raw)))
        elif field in TERM_FIELDS and not key:
            out.append(TermFilter(field, _term_values(field, raw)))
        else:
            out.append(parse_filter(f"{name}={raw}"))
    return out


def parse_filters(exprs: Iterable[str] | Mapping[str, Any] | None) -> list[Filter]:
    if not exprs:
        return []
    if isinstance(exprs, Mapping):
        return parse_filter_mapping(exprs)
    if isinstance(exprs, str):
        raise InvalidFilter("filters must be a list of FIELD=VALUE strings or an object, not one string")
    return [parse_filter(str(e)) for e in exprs]


def parse_facets(names: Iterable[str] | None) -> list[str]:
    """Validate facet field names; raises InvalidFilter for an unknown one."""
    out: list[str] = []
    for raw in names or ():
        for part in str(raw).split(","):
            if not part.strip():
                continue
            field = _field(part)
            if field not in FACET_FIELDS:
                raise InvalidFilter(f"unknown facet {part!r}; choose from {', '.join(FACET_FIELDS)}")
            if field not in out:
                out.append(field)
    return out


def filter_to_dict(f: Filter) -> dict[str, Any]:
    """JSON form, as recorded in impressions."""
    if isinstance(f, TermFilter):
        return {"field": f.field, "values": list(f.values), "negate": f.negate}
    if isinstance(f, RangeFilter):
        return {"field": f.field, "key": f.key, "op": f.op, "value": f.value}
    return {"field": f.field, "value": f.value}
