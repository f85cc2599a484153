"""Fusion of ranked legs into one list. Pure functions with deterministic tie-breaks (by id).

Reciprocal rank fusion (Cormack et al., 2009): score(d) = sum over legs of w_leg / (k + rank),
rank starting at 1. It needs no score calibration across legs, which is why it is the default
until a ranker learned from clicks exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LegHit:
    id: str
    score: float


@dataclass(slots=True)
class FusedHit:
    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    pinned: bool = False


def rrf(
    legs: Mapping[str, Sequence[LegHit]], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> list[FusedHit]:
    """Fuse legs (each already best-first) by weighted reciprocal rank.

    A document appearing twice in one leg keeps its best rank there. Legs with weight 0 still
    report their rank and score but add nothing. Ties in fused score break by id, ascending.
    """
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    fused: dict[str, FusedHit] = {}
    for leg, hits in legs.items():
        weight = 1.0 if weights is None else float(weights.get(leg, 1.0))
        for rank, hit in enumerate(hits, start=1):
            entry = fused.get(hit.id)
            if entry is None:
                entry = fused[hit.id] = FusedHit(hit.id, 0.0)
            if leg in entry.ranks:
                continue
            entry.ranks[leg] = rank
            entry.scores[leg] = hit.score
            entry.score += weight / (k + rank)
    return sorted(fused.values(), key=lambda h: (-h.score, h.id))


def pin_closest(fused: Sequence[FusedHit], leg: str, max_distance: float) -> list[FusedHit]:
    """Move the hits that distance leg `leg` found within `max_distance` ahead of the rest.

    The leg's score is a distance (smaller is closer). Pinned hits are ordered closest first, ties by
    fused score; each one's score gains `1 + max_distance - distance`, which exceeds any sum of RRF
    terms, so scores stay in rank order. Used for near-duplicates: an upload whose pHash is that close
    to an indexed image is almost surely that image, whatever the similarity legs say.
    """
    pinned = [h for h in fused if leg in h.scores and h.scores[leg] <= max_distance]
    if not pinned:
        return list(fused)
    for hit in pinned:
        hit.score += 1.0 + max_distance - hit.scores[leg]
        hit.pinned = True
    rest = [h for h in fused if not h.pinned]
    return sorted(pinned, key=lambda h: (h.scores[leg], -h.score, h.id)) + rest
