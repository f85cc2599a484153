"""Offline ranking metrics over one ranked list of ids and its relevance labels. Pure functions.

Conventions shared by every function here:

* `ranked` is best-first; ranks start at 1. An id repeated in `ranked` counts only at its first
  (best) rank, so a ranking cannot earn credit twice for one document.
* `relevant` is the set of ids judged relevant (binary labels); `gains` maps ids to graded
  relevance (missing ids have gain 0).
* `k` is a cut-off and must be a positive integer; anything else raises ValueError.
* An empty ranking scores 0. A query with no relevant items scores 0 on every metric (there is
  nothing to find, so nothing was found); callers who prefer to drop such queries from a mean, as
  trec_eval does, should filter them out before calling the `mean_*` functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

Run = tuple[Sequence[str], AbstractSet[str]]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"k must be a positive integer (the rank cut-off), got {k!r}.")


def _top(ranked: Sequence[str], k: int | None = None) -> list[str | None]:
    """The first k entries of `ranked`, with later repeats of an id replaced by None."""
    seen: set[str] = set()
    out: list[str | None] = []
    for doc_id in ranked if k is None else ranked[:k]:
        out.append(None if doc_id in seen else doc_id)
        seen.add(doc_id)
    return out


def _check_runs(runs: Sequence[object]) -> None:
    if len(runs) == 0:
        raise ValueError("a mean over queries needs at least one run (ranked ids, relevant ids).")


def precision_at_k(ranked: Sequence[str], relevant: AbstractSet[str], k: int) -> float:
    """P@k = |relevant ∩ top k| / k.

    The denominator is always k, so a ranking shorter than k is penalised for the missing ranks.
    """
    _check_k(k)
    return sum(1 for d in _top(ranked, k) if d is not None and d in relevant) / k


def recall_at_k(ranked: Sequence[str], relevant: AbstractSet[str], k: int) -> float:
    """R@k = |relevant ∩ top k| / |relevant|; 0 when nothing is relevant."""
    _check_k(k)
    if not relevant:
        return 0.0
    return sum(1 for d in _top(ranked, k) if d is not None and d in relevant) / len(relevant)


def average_precision_at_k(ranked: Sequence[str], relevant: AbstractSet[str], k: int) -> float:
    """AP@k = (sum over ranks i <= k holding a relevant id of P@i) / min(k, |relevant|).

    Normalising by min(k, |relevant|) rather than |relevant| lets a perfect top k score 1 even when
    more than k items are relevant. 0 when nothing is relevant.
    """
    _check_k(k)
    if not relevant:
        return 0.0
    hits = 0
    total = 0.0
    for rank, doc_id in enumerate(_top(ranked, k), start=1):
        if doc_id is not None and doc_id in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def mean_average_precision(runs: Sequence[Run], k: int) -> float:
    """mAP@k: the arithmetic mean of `average_precision_at_k` over runs of (ranked, relevant)."""
    _check_k(k)
    _check_runs(runs)
    return sum(average_precision_at_k(ranked, relevant, k) for ranked, relevant in runs) / len(runs)


def reciprocal_rank(ranked: Sequence[str], relevant: AbstractSet[str]) -> float:
    """RR = 1 / (rank of the first relevant id), over the whole ranking; 0 when none is ranked."""
    for rank, doc_id in enumerate(ranked, start=1):
        if doc_id in relevant:
            return 1.0 / rank
    return 0.0


def mean_reciprocal_rank(runs: Sequence[Run]) -> float:
    """MRR: the arithmetic mean of `reciprocal_rank` over runs of (ranked, relevant)."""
    _check_runs(runs)
    return sum(reciprocal_rank(ranked, relevant) for ranked, relevant in runs) / len(runs)


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """NDCG@k = DCG@k / IDCG@k, with DCG@k = sum over ranks i <= k of gain(id_i) / log2(i + 1).

    Gains are linear (a grade-2 document is worth twice a grade-1 one) and ids missing from `gains`
    have gain 0. IDCG@k is the DCG@k of the ideal ordering: all positive gains sorted descending.
    0 when no id has a positive gain. Negative gains raise ValueError.
    """
    _check_k(k)
    negative = sorted(d for d, g in gains.items() if g < 0)
    if negative:
        raise ValueError(f"gains must be >= 0; negative for {negative[:5]}.")
    ideal = sorted((float(g) for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    if idcg == 0.0:
        return 0.0
    dcg = sum(
        float(gains.get(d, 0.0)) / math.log2(rank + 1)
        for rank, d in enumerate(_top(ranked, k), start=1)
        if d is not None
    )
    return dcg / idcg


def summarise(runs: Sequence[Run], k: int, *, gains: Sequence[Mapping[str, float]] | None = None) -> dict[str, float]:
    """Means over runs of P@k, R@k, mAP@k, MRR and NDCG@k, keyed by those names (with k filled in).

    NDCG uses binary gains (1 for each relevant id) unless `gains` gives one graded mapping per run,
    in the same order as `runs`.
    """
    _check_k(k)
    _check_runs(runs)
    if gains is not None and len(gains) != len(runs):
        raise ValueError(f"gains must hold one mapping per run: {len(gains)} for {len(runs)} runs.")
    graded: Sequence[Mapping[str, float]] = (
        gains if gains is not None else [dict.fromkeys(relevant, 1.0) for _, relevant in runs]
    )
    n = len(runs)
    return {
        f"P@{k}": sum(precision_at_k(r, rel, k) for r, rel in runs) / n,
        f"R@{k}": sum(recall_at_k(r, rel, k) for r, rel in runs) / n,
        f"mAP@{k}": mean_average_precision(runs, k),
        "MRR": mean_reciprocal_rank(runs),
        f"NDCG@{k}": sum(ndcg_at_k(r, g, k) for (r, _), g in zip(runs, graded, strict=True)) / n,
    }
