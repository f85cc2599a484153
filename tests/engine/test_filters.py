from __future__ import annotations

import pytest

from engine.errors import InvalidFilter
from engine.filters import (
    BoolFilter,
    RangeFilter,
    TermFilter,
    parse_facets,
    parse_filter,
    parse_filters,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("colour=red", TermFilter("colour", ("red",))),
        ("color=Red,Blue", TermFilter("colour", ("red", "blue"))),
        ("label!=dog", TermFilter("label", ("dog",), negate=True)),
        ("format:jpeg", TermFilter("format", ("jpeg",))),
        ("width>=800", RangeFilter("width", "gte", 800.0)),
        ("bytes<1000", RangeFilter("bytes", "lt", 1000.0)),
        ("date>=2020-01-31", RangeFilter("date", "gte", "2020-01-31T00:00:00")),
        ("label_count.person>=2", RangeFilter("label_count", "gte", 2.0, key="person")),
        ("colour_share.red > 0.3", RangeFilter("colour_share", "gt", 0.3, key="red")),
        ("has_text=true", BoolFilter("has_text", True)),
        ("has_text=no", BoolFilter("has_text", False)),
    ],
)
def test_parse(expr: str, expected: object) -> None:
    assert parse_filter(expr) == expected


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ("shape=round", "unknown filter field 'shape'"),
        ("width=800", "is a range"),
        ("width>=wide", "needs a number"),
        ("width>=nan", "finite number"),
        ("colour>=3", "matches values"),
        ("colour=", "has no value"),
        ("date>=yesterday", "ISO date"),
        ("has_text=maybe", "true or false"),
        ("label_count.person=2", "compares a number"),
        ("width.x>=2", "only label_count, colour_share take a .NAME"),
        ("just words", "cannot parse filter"),
    ],
)
def test_bad_filters_say_what_is_wrong(expr: str, needle: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_filter(expr)
    assert needle in info.value.message
    assert info.value.status == 400


def test_mapping_form() -> None:
    filters = parse_filters(
        {"colour": ["red", "blue"], "width": {"gte": 10, "lt": 20}, "has_text": True, "label_count.dog": {"gte": 1}}
    )
    assert filters == [
        TermFilter("colour", ("red", "blue")),
        RangeFilter("width", "gte", 10.0),
        RangeFilter("width", "lt", 20.0),
        BoolFilter("has_text", True),
        RangeFilter("label_count", "gte", 1.0, key="dog"),
    ]
    with pytest.raises(InvalidFilter, match="takes keys gte, gt, lte, lt"):
        parse_filters({"width": {"between": 3}})
    with pytest.raises(InvalidFilter, match="not one string"):
        parse_filters("colour=red")


def test_facets() -> None:
    assert parse_facets(["colour,label", "colour", "format"]) == ["colour", "label", "format"]
    with pytest.raises(InvalidFilter, match="unknown facet 'size'"):
        parse_facets(["size"])
