"""Faiss vector indexes, one per vector field, plus an in-memory pHash index.

Every vector is L2-normalised, so inner product = cosine. A field is searched exactly (Flat)
below `exact_threshold` vectors and with the ANN factory (default IVF) above it. Faiss keys
are `documents.vector_id(doc_id)`; the index keeps the key -> id map and saves it beside the
index file. Filtered search takes the allowed document ids: a small allowed set is scored
exactly from the index's stored vectors, a large one goes through Faiss with an ID selector,
so a filter can never be violated and a selective filter never starves recall.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from engine.documents import vector_keys

log = logging.getLogger(__name__)
# faiss's bundled stubs are partial and wrong (no SearchParametersHNSW, DirectMap, `sel=`): use it untyped.
faiss: Any = _faiss

Neighbour = tuple[str, float]
# An IVF index is retrained once it holds this many times the vectors it was trained on, so its
# list count keeps pace with sqrt(n) as a collection grows past the exact threshold.
RETRAIN_GROWTH = 4


def normalise(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32))).copy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def gpu_count() -> int:
    try:
        return int(faiss.get_num_gpus())
    except Exception:
        return 0


class VectorIndex:
    """One field's Faiss index: add/remove by document id, search with an optional allowed set."""

    def __init__(
        self,
        field: str,
        dim: int,
        *,
        directory: Path | None = None,
        exact_threshold: int = 50_000,
        factory: str = "IVF{nlist},Flat",
        nprobe: int = 32,
        hnsw_ef_search: int = 128,
        exact_filter_max: int = 5_000,
        use_gpu: bool = True,
        search_threads: int = 1,
    ) -> None:
        self.field = field
        self.dim = int(dim)
        self.directory = directory
        self.exact_threshold = exact_threshold
        self.factory = factory
        self.nprobe = nprobe
        self.hnsw_ef_search = hnsw_ef_search
        self.exact_filter_max = exact_filter_max
        self.use_gpu = use_gpu and gpu_count() > 0
        self.search_threads = search_threads
        self._ids: dict[int, str] = {}
        self._index: Any = self._new_exact()
        self.kind = "exact"
        self.spec = "Flat"
        self.trained_for = 0
        self._gpu_replica: Any = None

    # -- construction ------------------------------------------------------------------------
    def _new_exact(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _factory_string(self, n: int) -> str:
        nlist = int(min(65_536, max(16, round(4 * math.sqrt(max(n, 1))))))
        return self.factory.replace("{nlist}", str(nlist))

    def _new_ann(self, train: np.ndarray) -> tuple[Any, str]:
        """A trained, empty ANN index for `train`-like data and its kind; sets `spec` and `trained_for`."""
        spec = self.spec = self._factory_string(len(train))
        self.trained_for = len(train)
        index = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = _as_ivf(index)
        if ivf is not None:
            if not index.is_trained:
                nlist = ivf.nlist
                sample = train
                if len(train) > max(64 * nlist, 100_000):
                    rng = np.random.default_rng(0)
                    sample = train[rng.choice(len(train), max(64 * nlist, 100_000), replace=False)]
                index.train(sample)
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            ivf.nprobe = self.nprobe
            return index, "ivf"
        if not index.is_trained:
            index.train(train)
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = self.hnsw_ef_search
        return faiss.IndexIDMap2(index), "hnsw" if hasattr(index, "hnsw") else "other"

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def doc_ids(self) -> set[str]:
        return set(self._ids.values())

    def describe(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "dim": self.dim,
            "count": self.ntotal,
            "kind": self.kind,
            "index": self.spec,
            "gpu": self.use_gpu,
        }

    # -- mutation ----------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add (or replace) the vectors of `ids`; switches to the ANN index past the threshold."""
        if len(ids) == 0:
            return
        x = normalise(vectors)
        if x.shape != (len(ids), self.dim):
            raise ValueError(f"{self.field}: expected {len(ids)} vectors of dim {self.dim}, got {x.shape}")
        keys = vector_keys(ids)
        present = [k for k in keys.tolist() if k in self._ids]
        if present:
            self._remove_keys(present)
        self._index.add_with_ids(x, keys)
        self._ids.update(zip(keys.tolist(), ids, strict=True))
        self._gpu_replica = None
        outgrown_exact = self.kind == "exact" and self.ntotal > self.exact_threshold
        outgrown_training = self.kind in ("ivf", "other") and self.ntotal > RETRAIN_GROWTH * self.trained_for
        if outgrown_exact or outgrown_training:
            self._rebuild_ann()

    def remove(self, ids: Iterable[str]) -> int:
        keys = [k for k in vector_keys(list(ids)).tolist() if k in self._ids]
        if keys:
            self._remove_keys(keys)
        return len(keys)

    def _remove_keys(self, keys: list[int]) -> None:
        arr = np.array(keys, dtype=np.int64)
        if self.kind == "hnsw":
            # HNSW cannot delete in place: rebuild from the vectors that stay.
            keep = np.array([k for k in self._ids if k not in set(keys)], dtype=np.int64)
            vectors = self._reconstruct(keep) if len(keep) else np.zeros((0, self.dim), np.float32)
            for k in keys:
                self._ids.pop(k, None)
            self._index, self.kind = self._new_ann(vectors if len(vectors) else np.zeros((1, self.dim), np.float32))
            if len(keep):
                self._index.add_with_ids(vectors, keep)
        else:
            self._index.remove_ids(faiss.IDSelectorArray(arr.size, faiss.swig_ptr(arr)))
            for k in keys:
                self._ids.pop(k, None)
        self._gpu_replica = None

    def _rebuild_ann(self) -> None:
        keys = np.fromiter(self._ids.keys(), dtype=np.int64, count=len(self._ids))
        vectors = self._reconstruct(keys)
        index, kind = self._new_ann(vectors)
        index.add_with_ids(vectors, keys)
        self._index, self.kind = index, kind
        log.info("%s: %d vectors, (re)built as %s", self.field, len(keys), self.spec)

    def _reconstruct(self, keys: np.ndarray) -> np.ndarray:
        if len(keys) == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._index.reconstruct_batch(np.ascontiguousarray(keys, dtype=np.int64)), np.float32)

    # -- search ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, allowed: Collection[str] | None = None) -> list[list[Neighbour]]:
        """Top-`k` (doc id, cosine) per query row, best first; only ids in `allowed` when given."""
        if self.search_threads <= 0:
            return self._search(queries, k, allowed)
        # OpenMP's thread count is per calling thread, so this touches this search alone; restored after,
        # so a build later on the same thread gets every core again.
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.search_threads)
        try:
            return self._search(queries, k, allowed)
        finally:
            faiss.omp_set_num_threads(before)

    def _search(self, queries: np.ndarray, k: int, allowed: Collection[str] | None) -> list[list[Neighbour]]:
        q = normalise(queries)
        if q.shape[1] != self.dim:
            raise ValueError(f"{self.field}: query has dim {q.shape[1]}, index has {self.dim}")
        if self.ntotal == 0 or k <= 0:
            return [[] for _ in range(len(q))]
        if allowed is None:
            scores, keys = self._search_all(q, min(k, self.ntotal))
            return [self._pairs(s, i) for s, i in zip(scores, keys, strict=True)]
        candidates = vector_keys(list(allowed))
        if len(candidates) == 0:
            return [[] for _ in range(len(q))]
        if self.kind != "exact" and len(candidates) <= self.exact_filter_max:
            present = np.array([key for key in candidates.tolist() if key in self._ids], np.int64)
            return self._search_subset(q, present, k) if len(present) else [[] for _ in range(len(q))]
        # Ids the index does not hold are harmless in a selector: no per-id Python work on big sets.
        selector = faiss.IDSelectorBatch(candidates.size, faiss.swig_ptr(candidates))
        params = self._params(selector)
        kk = min(k, len(candidates), self.ntotal)
        scores, keys = self._index.search(q, kk, params=params)
        return [self._pairs(s, i) for s, i in zip(scores, keys, strict=True)]

    def _params(self, selector: Any) -> Any:
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.hnsw_ef_search)
        return faiss.SearchParameters(sel=selector)

    def _search_all(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.use_gpu and self.kind == "exact":
            try:
                if self._gpu_replica is None:
                    self._gpu_replica = faiss.index_cpu_to_all_gpus(self._index)
                return self._gpu_replica.search(q, k)
            except Exception as exc:  # a GPU that cannot take the index is not fatal
                log.warning("%s: GPU search failed (%s); using the CPU", self.field, exc)
                self.use_gpu = False
        return self._index.search(q, k)

    def _search_subset(self, q: np.ndarray, keys: np.ndarray, k: int) -> list[list[Neighbour]]:
        vectors = self._reconstruct(keys)
        scores = q @ vectors.T
        out: list[list[Neighbour]] = []
        kk = min(k, len(keys))
        for row in scores:
            top = np.argpartition(-row, kk - 1)[:kk] if kk < len(row) else np.arange(len(row))
            top = top[np.lexsort((keys[top], -row[top]))]
            out.append([(self._ids[int(keys[j])], float(row[j])) for j in top])
        return out

    def _pairs(self, scores: np.ndarray, keys: np.ndarray) -> list[Neighbour]:
        return [(self._ids[int(key)], float(s)) for s, key in zip(scores, keys, strict=True) if key >= 0]

    # -- persistence -------------------------------------------------------------------------
    def _paths(self) -> tuple[Path, Path, Path]:
        if self.directory is None:
            raise ValueError(f"vector index {self.field!r} has no directory to save to")
        base = self.directory / self.field
        return base.with_suffix(".faiss"), base.with_suffix(".ids.npz"), base.with_suffix(".json")

    def save(self, generation: int | None = None) -> None:
        """Write index, id map and metadata atomically (temp file + rename)."""
        index_path, ids_path, meta_path = self._paths()
        index_path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.fromiter(self._ids.keys(), dtype=np.int64, count=len(self._ids))
        ids = np.array(list(self._ids.values()), dtype="S32")
        tmp = index_path.with_suffix(".faiss.tmp")
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, index_path)
        with open(ids_path.with_suffix(".tmp"), "wb") as fh:
            np.savez(fh, keys=keys, ids=ids)
        os.replace(ids_path.with_suffix(".tmp"), ids_path)
        meta = {
            "field": self.field,
            "dim": self.dim,
            "kind": self.kind,
            "index": self.spec,
            "trained_for": self.trained_for,
            "count": self.ntotal,
            "generation": generation,
        }
        meta_path.with_suffix(".tmp").write_text(json.dumps(meta))
        os.replace(meta_path.with_suffix(".tmp"), meta_path)

    def load(self) -> bool:
        """Load from disk; False (and an empty index) when files are missing, corrupt or inconsistent."""
        index_path, ids_path, meta_path = self._paths()
        if not (index_path.exists() and ids_path.exists() and meta_path.exists()):
            return False
        try:
            meta = json.loads(meta_path.read_text())
            index = faiss.read_index(str(index_path))
            with np.load(ids_path) as records:
                ids = {int(k): v.decode() for k, v in zip(records["keys"], records["ids"], strict=True)}
        except Exception as exc:
            log.warning("%s: vector index files unreadable (%s); it will be rebuilt from the store", self.field, exc)
            return False
        if int(meta.get("dim", -1)) != self.dim or index.d != self.dim or index.ntotal != len(ids):
            log.warning("%s: vector index on disk disagrees with itself; it will be rebuilt", self.field)
            return False
        self._index, self._ids, self.kind = index, ids, str(meta.get("kind", "exact"))
        self.spec, self.trained_for = str(meta.get("index", "Flat")), int(meta.get("trained_for", 0))
        ivf = _as_ivf(index)
        if ivf is not None:
            ivf.nprobe = self.nprobe
        self._gpu_replica = None
        return True

    def reset(self) -> None:
        self._index, self._ids, self.kind, self._gpu_replica = self._new_exact(), {}, "exact", None
        self.spec, self.trained_for = "Flat", 0


def _as_ivf(index: Any) -> Any:
    try:
        return faiss.extract_index_ivf(index) if isinstance(index, faiss.IndexIVF) else None
    except Exception:
        return None


class HashIndex:
    """Near-duplicate search over 64-bit perceptual hashes by Hamming distance (in memory)."""

    def __init__(self) -> None:
        self._hashes: dict[str, int] = {}
        self._ids: list[str] = []
        self._values = np.zeros(0, dtype=np.uint64)
        self._dirty = False

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        for doc_id, hex_hash in pairs:
            self._hashes[doc_id] = int(hex_hash, 16)
            self._dirty = True

    def remove(self, ids: Iterable[str]) -> None:
        for doc_id in ids:
            if self._hashes.pop(doc_id, None) is not None:
                self._dirty = True

    def _arrays(self) -> tuple[list[str], np.ndarray]:
        if self._dirty:
            self._ids = list(self._hashes)
            self._values = np.fromiter(self._hashes.values(), dtype=np.uint64, count=len(self._hashes))
            self._dirty = False
        return self._ids, self._values

    def search(
        self, value: int, *, max_distance: int, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, int]]:
        """Documents within `max_distance` bits of `value`, nearest first (ties by id)."""
        ids, values = self._arrays()
        if not ids:
            return []
        distances = np.bitwise_count(values ^ np.uint64(value))
        candidates = np.flatnonzero(distances <= max_distance)
        hits = [(ids[i], int(distances[i])) for i in candidates]
        if allowed is not None:
            allowed_set = allowed if isinstance(allowed, set | frozenset) else set(allowed)
            hits = [h for h in hits if h[0] in allowed_set]
        hits.sort(key=lambda h: (h[1], h[0]))
        return hits[:k]
