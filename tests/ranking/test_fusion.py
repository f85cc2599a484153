from __future__ import annotations

import pytest

from ranking.fusion import LegHit, rrf


def hits(*ids: str) -> list[LegHit]:
    return [LegHit(i, 1.0 / (n + 1)) for n, i in enumerate(ids)]


def test_rrf_matches_hand_computation() -> None:
    fused = rrf({"text": hits("a", "b", "c"), "colour": hits("c", "a")}, k=60)
    scores = {h.id: h.score for h in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert [h.id for h in fused] == ["a", "c", "b"]
    a = fused[0]
    assert a.ranks == {"text": 1, "colour": 2}
    assert a.scores == {"text": 1.0, "colour": 0.5}


def test_weights_change_the_order() -> None:
    legs = {"text": hits("a", "b"), "colour": hits("b", "a")}
    assert [h.id for h in rrf(legs, k=60, weights={"text": 1.0, "colour": 2.0})] == ["b", "a"]
    assert [h.id for h in rrf(legs, k=60, weights={"text": 2.0, "colour": 1.0})] == ["a", "b"]


def test_ties_break_by_id_and_degenerate_inputs() -> None:
    fused = rrf({"x": hits("b"), "y": hits("a")}, k=60)
    assert [h.id for h in fused] == ["a", "b"]
    assert rrf({}, k=60) == []
    assert rrf({"text": []}, k=60) == []
    only = rrf({"text": hits("z")}, k=0)
    assert only[0].score == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        rrf({"text": hits("z")}, k=-1)


def test_duplicate_in_one_leg_keeps_best_rank() -> None:
    fused = rrf({"text": [LegHit("a", 3.0), LegHit("a", 1.0), LegHit("b", 0.5)]}, k=60)
    a = next(h for h in fused if h.id == "a")
    assert a.ranks["text"] == 1 and a.scores["text"] == 3.0
    assert a.score == pytest.approx(1 / 61)


def test_zero_weight_leg_reports_but_does_not_score() -> None:
    fused = rrf({"text": hits("a"), "colour": hits("b")}, k=60, weights={"colour": 0.0})
    b = next(h for h in fused if h.id == "b")
    assert b.score == 0.0 and b.ranks == {"colour": 1}


def test_pin_closest_puts_distance_leg_hits_first_closest_first() -> None:
    from ranking.fusion import pin_closest

    legs = {
        "detector": [LegHit("a", 0.9), LegHit("b", 0.8), LegHit("c", 0.7), LegHit("d", 0.6)],
        "colour": [LegHit("a", 0.9), LegHit("b", 0.8)],
        "phash": [LegHit("d", 3.0), LegHit("c", 9.0), LegHit("e", 13.0)],
    }
    fused = rrf(legs, k=60)
    assert [h.id for h in fused][:2] == ["a", "b"]  # plain fusion: the similar images win
    pinned = pin_closest(fused, "phash", 12)
    assert [h.id for h in pinned] == ["d", "c", "a", "b", "e"]  # e: found by the leg, beyond 12, not pinned
    assert [h.pinned for h in pinned] == [True, True, False, False, False]
    scores = [h.score for h in pinned]
    assert scores == sorted(scores, reverse=True)  # scores stay in rank order
    assert pinned[0].score > 1.0 + 12 - 3  # the bonus: 1 + threshold - distance, plus the RRF terms


def test_pin_closest_without_distance_hits_keeps_order() -> None:
    from ranking.fusion import pin_closest

    fused = rrf({"text": [LegHit("x", 2.0), LegHit("y", 1.0)]}, k=60)
    assert [h.id for h in pin_closest(fused, "phash", 12)] == ["x", "y"]
    assert not any(h.pinned for h in fused)
