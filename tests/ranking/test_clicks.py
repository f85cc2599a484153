from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np
import pytest

from engine.api import record_click
from engine.engine import Engine
from engine.store.base import Click, Impression
from ranking.clicks import ClickModel

TS = datetime(2026, 1, 1, 12, 0, 0)


def impression(query_id: str, ids: list[str], offset: int = 0) -> Impression:
    """An impression shaped like engine/search.py records: 1-based absolute positions."""
    return Impression(
        query_id=query_id,
        ts=TS,
        request={
            "text": "cat",
            "like": None,
            "image": None,
            "filters": [],
            "facets": [],
            "k": len(ids),
            "offset": offset,
        },
        shown=[{"id": i, "position": offset + n, "signals": {}} for n, i in enumerate(ids, start=1)],
    )


def log(n: int, per_page: int = 10, seed: int = 7) -> tuple[list[Impression], dict[str, dict[str, int]]]:
    """n impressions of per_page docs each, with random grades 0..3 (fixed seed)."""
    rng = np.random.default_rng(seed)
    imps, grades = [], {}
    for q in range(n):
        ids = [f"q{q}d{i}" for i in range(per_page)]
        imps.append(impression(f"q{q}", ids))
        grades[f"q{q}"] = {d: int(g) for d, g in zip(ids, rng.integers(0, 4, per_page), strict=True)}
    return imps, grades


def test_examination_and_click_probabilities() -> None:
    model = ClickModel(decay=1.0, click_prob={0: 0.0, 1: 0.5}, noise=0.1)
    assert model.examine_prob(1) == 1.0
    assert model.examine_prob(4) == pytest.approx(1 / 4)
    # P(click | examined, grade 1) = 0.1 + 0.9 * 0.5 = 0.55; at position 2: 0.55 / 2
    assert model.click_prob_at(2, 1) == pytest.approx(0.55 / 2)
    assert model.click_given_examined(0) == pytest.approx(0.1)
    given = ClickModel([0.9, 0.5])
    assert [given.examine_prob(p) for p in (1, 2, 3)] == [0.9, 0.5, 0.0]
    with pytest.raises(ValueError, match="no click probability for relevance grade 7"):
        model.click_given_examined(7)
    with pytest.raises(ValueError, match="positions start at 1"):
        model.examine_prob(0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise": 1.5}, r"noise must be a probability in \[0, 1\]"),
        ({"click_prob": {1: -0.1}}, r"click_prob\[1\] must be a probability"),
        ({"examination": [1.0, 2.0]}, r"examination\[1\] must be a probability"),
        ({"decay": -1.0}, "decay must be >= 0"),
        ({"delay": 0.0}, "delay must be a positive number of seconds"),
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClickModel(**kwargs)  # type: ignore[arg-type]


def test_same_seed_same_clicks_and_other_seed_differs() -> None:
    imps, grades = log(200)
    first = ClickModel(seed=3).simulate_log(imps, lambda imp: grades[imp.query_id])
    again = ClickModel(seed=3).simulate_log(imps, lambda imp: grades[imp.query_id])
    other = ClickModel(seed=4).simulate_log(imps, lambda imp: grades[imp.query_id])
    assert first and first == again
    assert first != other


def test_clicks_are_on_shown_ids_at_their_positions_after_the_impression() -> None:
    imps = [impression(f"p{n}", [f"x{n}-{i}" for i in range(5)], offset=5 * n) for n in range(40)]
    model = ClickModel(decay=0.5, noise=0.3, seed=1)
    clicks = model.simulate_log(imps, lambda imp: {item["id"]: 1 for item in imp.shown[::2]})
    assert clicks
    by_query = {imp.query_id: imp for imp in imps}
    for click in clicks:
        shown = {item["id"]: item["position"] for item in by_query[click.query_id].shown}
        assert click.doc_id in shown
        assert click.position == shown[click.doc_id]
        assert click.ts > by_query[click.query_id].ts
    assert max(c.position for c in clicks) > 5  # absolute positions on later pages are kept
    for query_id in by_query:
        mine = [c for c in clicks if c.query_id == query_id]
        assert [c.position for c in mine] == sorted(c.position for c in mine)
        assert len({c.ts for c in mine}) == len(mine)


def test_no_irrelevant_clicks_without_noise() -> None:
    imps, grades = log(500)
    model = ClickModel(decay=0.0, click_prob={0: 0.0, 1: 0.5, 2: 0.7, 3: 0.9}, noise=0.0, seed=2)
    clicks = model.simulate_log(imps, lambda imp: grades[imp.query_id])
    assert clicks
    assert all(grades[c.query_id][c.doc_id] > 0 for c in clicks)


def test_unknown_ids_are_grade_zero_and_an_empty_impression_gets_no_clicks() -> None:
    model = ClickModel(examination=[1.0] * 5, click_prob={0: 0.0}, noise=0.0)
    assert model.simulate(impression("q", ["a", "b", "c"]), {}) == []
    assert model.simulate(impression("q", []), {}) == []
    always = ClickModel(examination=[1.0] * 5, click_prob={0: 1.0}, noise=0.0)
    assert [c.doc_id for c in always.simulate(impression("q", ["a", "b"]), {})] == ["a", "b"]


def test_ctr_decays_with_position_and_relevant_docs_are_clicked_more() -> None:
    n, per_page = 5000, 10
    imps, grades = log(n, per_page)
    model = ClickModel(decay=1.0, noise=0.02, seed=11)
    clicks = model.simulate_log(imps, lambda imp: grades[imp.query_id])
    ctr = Counter(c.position for c in clicks)
    rate = [ctr[p] / n for p in range(1, per_page + 1)]
    # Expected P(click | examined) averaged over grades 0..3 uniformly with default click_prob
    # {0: 0, 1: .4, 2: .7, 3: .9} and noise .02: .02 + .98 * (0 + .4 + .7 + .9) / 4 = 0.51, so
    # CTR(p) ~ 0.51 / p: 0.51, 0.255, 0.17, 0.1275, 0.102, ...
    for p in range(1, 6):
        assert rate[p - 1] == pytest.approx(0.51 / p, abs=0.03)
    for p in range(1, 5):
        assert rate[p - 1] > rate[p] + 0.01
    assert rate[0] > 3 * rate[-1]
    # Per shown doc: grade >= 1 docs are clicked far more than grade 0 ones (only noise clicks them).
    shown_by_grade = Counter(g for per_query in grades.values() for g in per_query.values())
    clicked_by_grade = Counter(grades[c.query_id][c.doc_id] for c in clicks)
    click_rate = {g: clicked_by_grade[g] / shown_by_grade[g] for g in range(4)}
    # mean exam over positions 1..10 = H(10) / 10 ~ 0.293; grade 0: ~0.293 * 0.02 ~ 0.006
    assert click_rate[0] < 0.015
    assert click_rate[1] > 5 * click_rate[0] + 0.05
    assert click_rate[3] > click_rate[2] > click_rate[1]


def test_every_simulated_click_passes_the_api_validation(engine: Engine) -> None:
    imps, grades = log(50, per_page=8)
    imps.append(impression("paged", [f"pg{i}" for i in range(8)], offset=16))
    grades["paged"] = {f"pg{i}": 3 for i in range(8)}
    for imp in imps:
        engine.store.record_impression(imp)
    clicks = ClickModel(decay=0.5, noise=0.1, seed=5).simulate_log(imps, lambda imp: grades[imp.query_id])
    assert any(c.query_id == "paged" for c in clicks)
    recorded = [record_click(engine, {"query_id": c.query_id, "id": c.doc_id, "position": c.position}) for c in clicks]
    assert [(r.query_id, r.doc_id, r.position) for r in recorded] == [
        (c.query_id, c.doc_id, c.position) for c in clicks
    ]
    stored = engine.store.clicks()
    assert len(stored) == len(clicks)
    assert all(isinstance(c, Click) for c in stored)
