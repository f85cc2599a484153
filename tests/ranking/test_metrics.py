from __future__ import annotations

import math

import pytest

from ranking.metrics import (
    average_precision_at_k,
    mean_average_precision,
    mean_reciprocal_rank,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    summarise,
)

RANKED = ["a", "b", "c", "d"]
RELEVANT = {"a", "c"}


def test_precision_and_recall_match_hand_computation() -> None:
    # top 2 = [a, b]: one relevant (a) of 2 shown, of 2 relevant
    assert precision_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)
    # top 4 holds both relevant: P@4 = 2/4, R@4 = 2/2
    assert precision_at_k(RANKED, RELEVANT, 4) == pytest.approx(2 / 4)
    assert recall_at_k(RANKED, RELEVANT, 4) == pytest.approx(1.0)
    # k past the end of the ranking still divides by k: P@10 = 2/10
    assert precision_at_k(RANKED, RELEVANT, 10) == pytest.approx(2 / 10)


def test_average_precision_matches_hand_computation() -> None:
    # relevant at ranks 1 and 3: P@1 = 1/1, P@3 = 2/3; normalised by min(4, 2) = 2
    assert average_precision_at_k(RANKED, RELEVANT, 4) == pytest.approx((1 / 1 + 2 / 3) / 2)
    # k = 2: only rank 1 counts, normalised by min(2, 2) = 2
    assert average_precision_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / 1) / 2)
    # k = 1 with 2 relevant: normalised by min(1, 2) = 1, so a relevant first hit scores 1
    assert average_precision_at_k(RANKED, RELEVANT, 1) == pytest.approx(1.0)
    # relevant at ranks 2 and 4 of [b, a, d, c]: (1/2 + 2/4) / 2
    assert average_precision_at_k(["b", "a", "d", "c"], RELEVANT, 4) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_map_is_the_mean_of_average_precision() -> None:
    runs = [(RANKED, RELEVANT), (["b", "a", "d", "c"], RELEVANT)]
    # ((1 + 2/3) / 2 + (1/2 + 2/4) / 2) / 2 = (5/6 + 1/2) / 2 = 2/3
    assert mean_average_precision(runs, 4) == pytest.approx(2 / 3)


def test_reciprocal_rank_and_mrr() -> None:
    assert reciprocal_rank(RANKED, RELEVANT) == 1.0  # a at rank 1
    assert reciprocal_rank(["b", "d", "c"], RELEVANT) == pytest.approx(1 / 3)  # c at rank 3
    assert reciprocal_rank(["b", "d"], RELEVANT) == 0.0
    # (1 + 1/3 + 0) / 3 = 4/9
    runs = [(RANKED, RELEVANT), (["b", "d", "c"], RELEVANT), (["b", "d"], RELEVANT)]
    assert mean_reciprocal_rank(runs) == pytest.approx(4 / 9)


def test_ndcg_matches_hand_computation() -> None:
    gains = {"a": 3.0, "b": 0.0, "c": 1.0, "e": 2.0}
    # DCG@4 of [a, b, c, d] = 3/log2(2) + 0/log2(3) + 1/log2(4) + 0/log2(5) = 3 + 0.5 = 3.5
    # ideal order [a(3), e(2), c(1)]: IDCG@4 = 3/1 + 2/log2(3) + 1/log2(4) = 3.5 + 2/log2(3)
    expected = 3.5 / (3.5 + 2 / math.log2(3))
    assert ndcg_at_k(RANKED, gains, 4) == pytest.approx(expected)
    # k = 1: DCG = 3, IDCG = 3
    assert ndcg_at_k(RANKED, gains, 1) == pytest.approx(1.0)
    # k = 2: DCG = 3 + 0, IDCG = 3 + 2/log2(3)
    assert ndcg_at_k(RANKED, gains, 2) == pytest.approx(3 / (3 + 2 / math.log2(3)))
    # the ideal ordering scores exactly 1
    assert ndcg_at_k(["a", "e", "c"], gains, 3) == pytest.approx(1.0)


def test_repeated_ids_only_count_once() -> None:
    # [a, a, c]: the second a earns nothing, so P@2 = 1/2 and AP@3 = (1/1 + 2/3) / 2
    assert precision_at_k(["a", "a", "c"], RELEVANT, 2) == pytest.approx(1 / 2)
    assert average_precision_at_k(["a", "a", "c"], RELEVANT, 3) == pytest.approx((1 + 2 / 3) / 2)
    # DCG@2 of [a, a] with gain a = 1 is 1, IDCG@2 = 1 + 1/log2(3)
    assert ndcg_at_k(["a", "a"], {"a": 1.0, "c": 1.0}, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_degenerate_cases_score_zero() -> None:
    assert precision_at_k([], RELEVANT, 3) == 0.0
    assert recall_at_k([], RELEVANT, 3) == 0.0
    assert average_precision_at_k([], RELEVANT, 3) == 0.0
    assert reciprocal_rank([], RELEVANT) == 0.0
    assert ndcg_at_k([], {"a": 1.0}, 3) == 0.0
    assert recall_at_k(RANKED, set(), 3) == 0.0
    assert average_precision_at_k(RANKED, set(), 3) == 0.0
    assert precision_at_k(RANKED, set(), 3) == 0.0
    assert reciprocal_rank(RANKED, set()) == 0.0
    assert ndcg_at_k(RANKED, {}, 3) == 0.0
    assert ndcg_at_k(RANKED, {"a": 0.0, "b": 0.0}, 3) == 0.0


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_raises_with_a_sentence(k: object) -> None:
    for call in (
        lambda: precision_at_k(RANKED, RELEVANT, k),  # type: ignore[arg-type]
        lambda: recall_at_k(RANKED, RELEVANT, k),  # type: ignore[arg-type]
        lambda: average_precision_at_k(RANKED, RELEVANT, k),  # type: ignore[arg-type]
        lambda: mean_average_precision([(RANKED, RELEVANT)], k),  # type: ignore[arg-type]
        lambda: ndcg_at_k(RANKED, {"a": 1.0}, k),  # type: ignore[arg-type]
        lambda: summarise([(RANKED, RELEVANT)], k),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=r"^k must be a positive integer \(the rank cut-off\), got .+\.$"):
            call()


def test_empty_runs_and_bad_gains_raise() -> None:
    with pytest.raises(ValueError, match="needs at least one run"):
        mean_average_precision([], 3)
    with pytest.raises(ValueError, match="needs at least one run"):
        mean_reciprocal_rank([])
    with pytest.raises(ValueError, match="needs at least one run"):
        summarise([], 3)
    with pytest.raises(ValueError, match=r"gains must be >= 0; negative for \['b'\]\."):
        ndcg_at_k(RANKED, {"a": 1.0, "b": -1.0}, 3)
    with pytest.raises(ValueError, match="one mapping per run: 0 for 1 runs"):
        summarise([(RANKED, RELEVANT)], 3, gains=[])


def test_summarise_means_every_metric() -> None:
    runs = [(RANKED, RELEVANT), (["b", "d"], {"d"})]
    out = summarise(runs, 2)
    assert set(out) == {"P@2", "R@2", "mAP@2", "MRR", "NDCG@2"}
    # run 1: P@2 = 1/2, R@2 = 1/2, AP@2 = 1/2, RR = 1, NDCG@2 = 1 / (1 + 1/log2(3))
    # run 2: P@2 = 1/2, R@2 = 1,   AP@2 = (1/2)/1, RR = 1/2, NDCG@2 = (1/log2(3)) / 1
    assert out["P@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert out["R@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert out["mAP@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert out["MRR"] == pytest.approx((1 + 1 / 2) / 2)
    assert out["NDCG@2"] == pytest.approx((1 / (1 + 1 / math.log2(3)) + 1 / math.log2(3)) / 2)
    graded = summarise(runs, 2, gains=[{"a": 1.0, "c": 1.0}, {"d": 5.0}])
    assert graded["NDCG@2"] == pytest.approx(out["NDCG@2"])  # scale of one run's gains cancels out
    assert {key: v for key, v in graded.items() if key != "NDCG@2"} == {
        key: v for key, v in out.items() if key != "NDCG@2"
    }
