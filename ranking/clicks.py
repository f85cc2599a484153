"""A position-based click model (PBM) for simulating users over relevance labels.

For a result shown at (1-based, absolute) position p with relevance grade g:

    P(examined)          = exam(p)            (1 / p**decay by default, or a given list)
    P(click | examined)  = noise + (1 - noise) * click_prob[g]
    P(click)             = exam(p) * P(click | examined)

so `noise` is the probability of clicking an examined result whatever its grade: with
click_prob[0] = 0 it is exactly the chance of clicking an examined irrelevant result. Each shown
result is examined and clicked independently of the others (the PBM assumption).

Clicks come out as the API records them (`engine.api.record_click`): the doc was shown in that
impression and the click carries the position it was shown at. Timestamps follow the impression's,
one `delay` apart in position order. Randomness comes from one numpy Generator seeded at
construction, so a model built with the same seed and fed the same impressions in the same order
produces the same clicks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta

import numpy as np

from engine.store.base import Click, Impression

DEFAULT_CLICK_PROB: Mapping[int, float] = {0: 0.0, 1: 0.4, 2: 0.7, 3: 0.9}


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}.")
    return value


class ClickModel:
    """Simulated users: examination decays with position, clicks depend on the relevance grade.

    `examination[i]` is P(examine position i + 1); positions past its end are never examined. Without
    it, P(examine position p) = 1 / p**decay. `click_prob` maps every grade that can occur to
    P(click | examined); a grade missing from it raises ValueError when met. Ids missing from the
    grades passed to `simulate` have grade 0.
    """

    def __init__(
        self,
        examination: Sequence[float] | None = None,
        *,
        decay: float = 1.0,
        click_prob: Mapping[int, float] = DEFAULT_CLICK_PROB,
        noise: float = 0.02,
        seed: int = 0,
        delay: float = 2.0,
    ) -> None:
        if decay < 0:
            raise ValueError(f"decay must be >= 0, got {decay!r}.")
        if delay <= 0:
            raise ValueError(f"delay must be a positive number of seconds, got {delay!r}.")
        self.examination = (
            None
            if examination is None
            else tuple(_check_probability(f"examination[{i}]", p) for i, p in enumerate(examination))
        )
        self.decay = float(decay)
        self.click_prob = {int(g): _check_probability(f"click_prob[{g}]", p) for g, p in click_prob.items()}
        self.noise = _check_probability("noise", noise)
        self.delay = timedelta(seconds=float(delay))
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def examine_prob(self, position: int) -> float:
        """P(a result at this 1-based position is examined)."""
        if position < 1:
            raise ValueError(f"positions start at 1, got {position!r}.")
        if self.examination is not None:
            return self.examination[position - 1] if position <= len(self.examination) else 0.0
        return 1.0 / position**self.decay

    def click_given_examined(self, grade: int) -> float:
        """P(click | examined) for a result of this relevance grade."""
        if grade not in self.click_prob:
            raise ValueError(
                f"no click probability for relevance grade {grade!r}; known grades {sorted(self.click_prob)}."
            )
        return self.noise + (1.0 - self.noise) * self.click_prob[grade]

    def click_prob_at(self, position: int, grade: int) -> float:
        """P(click) for a result of this grade shown at this position: exam(p) * P(click | examined)."""
        return self.examine_prob(position) * self.click_given_examined(grade)

    def simulate(self, impression: Impression, grades: Mapping[str, int]) -> list[Click]:
        """Clicks of one simulated user on one impression, in position order.

        Positions are read from the impression's shown list, exactly as the API validates them (an id
        shown twice keeps its last position, as in `engine.api.record_click`). One uniform draw is
        taken per distinct shown id, in position order, whether or not it is clicked.
        """
        shown = {str(item["id"]): int(item["position"]) for item in impression.shown}
        items = sorted(shown.items(), key=lambda kv: (kv[1], kv[0]))
        if not items:
            return []
        probs = np.array([self.click_prob_at(pos, int(grades.get(doc_id, 0))) for doc_id, pos in items])
        clicked = self._rng.random(len(items)) < probs
        out: list[Click] = []
        for doc_id, position in (item for item, hit in zip(items, clicked, strict=True) if hit):
            out.append(
                Click(
                    query_id=impression.query_id,
                    doc_id=doc_id,
                    position=position,
                    ts=impression.ts + self.delay * (len(out) + 1),
                )
            )
        return out

    def simulate_log(
        self, impressions: Iterable[Impression], grades_for: Callable[[Impression], Mapping[str, int]]
    ) -> list[Click]:
        """Clicks for a log of impressions, one simulated user each, in impression order."""
        clicks: list[Click] = []
        for impression in impressions:
            clicks.extend(self.simulate(impression, grades_for(impression)))
        return clicks
