"""Clustered synthetic embeddings and exact ground truth for the vector benchmarks.

Uniform random vectors in 512 dimensions are nearly orthogonal to each other, so "nearest
neighbours" are barely nearer than any other point and ANN recall says nothing. Real image
embeddings are clustered and have a low intrinsic dimension, so the generator is a Gaussian mixture
in a low-dimensional latent space, embedded at random into 512 dimensions, plus noise:

    y ~ N(centre_c, spread_c^2 I_latent),  c drawn with uneven (log-normal) mixture weights
    x = A y / sqrt(latent) + noise * e,    A: random orthonormal latent -> dim map, e ~ N(0, I / dim)
    x = x / |x|

Centres are N(0, I_latent), so clusters overlap and neighbourhoods cross IVF cell boundaries as in
real data. Defaults: 1000 centres, latent 32, spread 0.5-1.0 per cluster, noise 0.3. Queries are
fresh samples of the same mixture (another seed), never rows of the indexed set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from engine.documents import content_id


@dataclass(frozen=True, slots=True)
class Mixture:
    centres: np.ndarray  # (c, latent)
    spreads: np.ndarray  # (c,)
    weights: np.ndarray  # (c,), sums to 1
    embed: np.ndarray  # (latent, dim), orthonormal rows
    noise: float

    @property
    def dim(self) -> int:
        return int(self.embed.shape[1])

    @property
    def latent(self) -> int:
        return int(self.embed.shape[0])

    @classmethod
    def make(
        cls,
        dim: int = 512,
        centres: int = 1000,
        latent: int = 32,
        spread: tuple[float, float] = (0.5, 1.0),
        noise: float = 0.3,
        seed: int = 0,
    ) -> Mixture:
        rng = np.random.default_rng(seed)
        c = rng.standard_normal((centres, latent)).astype(np.float32)
        w = rng.lognormal(0.0, 0.5, centres)
        embed = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T.astype(np.float32)
        return cls(
            c,
            rng.uniform(*spread, centres).astype(np.float32),
            w / w.sum(),
            np.ascontiguousarray(embed),
            noise,
        )

    def describe(self) -> str:
        return (
            f"{len(self.weights)} centres, latent {self.latent}, spread "
            f"{self.spreads.min():.1f}-{self.spreads.max():.1f}, noise {self.noise}"
        )

    def sample(self, n: int, seed: int, chunk: int = 100_000) -> np.ndarray:
        """`n` L2-normalised float32 rows of dimension `dim` (generated in chunks to bound memory)."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            labels = rng.choice(len(self.weights), size=m, p=self.weights)
            y = (
                self.centres[labels]
                + rng.standard_normal((m, self.latent), dtype=np.float32) * self.spreads[labels, None]
            )
            x = (y * np.float32(1 / math.sqrt(self.latent))) @ self.embed
            x += rng.standard_normal((m, self.dim), dtype=np.float32) * np.float32(self.noise / math.sqrt(self.dim))
            out[start : start + m] = x
        faiss.normalize_L2(out)
        return out


def doc_ids(n: int, prefix: str = "vec") -> list[str]:
    """Content-hash-like document ids (the index keys are their first 63 bits)."""
    return [content_id(f"{prefix}-{i}".encode()) for i in range(n)]


def exact_neighbours(data: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the exact top-`k` by inner product (optionally only among `rows`), per query."""
    subset = data if rows is None else data[rows]
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(subset)
    _, found = flat.search(queries, k)
    return found if rows is None else rows[found]


def recall_at_k(found: list[list[str]], truth: list[set[str]], k: int) -> float:
    """Mean share of the true top-k found in the returned top-k."""
    return float(np.mean([len(set(f[:k]) & t) / k for f, t in zip(found, truth, strict=True)]))
