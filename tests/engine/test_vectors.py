"""Faiss indexes against exact search: Flat equals numpy, IVF/HNSW recall, filters hold, persistence."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pytest

from engine.vectors import HashIndex, VectorIndex, normalise


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, dim))
    return normalise(centres[rng.integers(0, 32, n)] + 0.3 * rng.standard_normal((n, dim)))


def exact(x: np.ndarray, q: np.ndarray, ids: list[str], k: int, allowed: set[str] | None = None) -> list[list[str]]:
    scores = q @ x.T
    if allowed is not None:
        mask = np.array([i in allowed for i in ids])
        scores[:, ~mask] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[ids[j] for j in row if np.isfinite(scores[r, j])] for r, row in enumerate(order)]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    x = clustered(4000, 48, 0)
    q = clustered(50, 48, 1)
    ids = [secrets.token_hex(16) for _ in range(len(x))]
    return x, q, ids


def build(tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]], **kw: object) -> VectorIndex:
    x, _, ids = data
    index = VectorIndex("f", 48, directory=tmp_path, **kw)  # type: ignore[arg-type]
    index.add(ids, x)
    return index


def recall(found: list[list[tuple[str, float]]], truth: list[list[str]]) -> float:
    hit = sum(len({i for i, _ in f} & set(t)) for f, t in zip(found, truth, strict=True))
    return hit / sum(len(t) for t in truth)


def test_exact_index_equals_numpy(tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    x, q, ids = data
    index = build(tmp_path, data)
    assert index.kind == "exact"
    found = index.search(q, 10)
    assert [[i for i, _ in row] for row in found] == exact(x, q, ids, 10)
    top_score = float((q[0] @ x.T).max())
    assert found[0][0][1] == pytest.approx(top_score, abs=1e-5)


@pytest.mark.parametrize("factory", ["IVF{nlist},Flat", "HNSW32"])
def test_ann_recall_against_exact(tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]], factory: str) -> None:
    x, q, ids = data
    index = build(tmp_path, data, exact_threshold=1000, factory=factory, nprobe=16)
    assert index.kind in ("ivf", "hnsw")
    assert recall(index.search(q, 10), exact(x, q, ids, 10)) >= 0.9


@pytest.mark.parametrize(
    ("factory", "fraction"), [("Flat", 0.3), ("IVF{nlist},Flat", 0.01), ("IVF{nlist},Flat", 0.5), ("HNSW32", 0.5)]
)
def test_filters_always_hold(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]], factory: str, fraction: float
) -> None:
    x, q, ids = data
    threshold = 10**9 if factory == "Flat" else 1000
    index = build(tmp_path, data, exact_threshold=threshold, factory=factory, nprobe=16, exact_filter_max=100)
    rng = np.random.default_rng(3)
    allowed = {ids[i] for i in rng.choice(len(ids), int(len(ids) * fraction), replace=False)}
    found = index.search(q, 10, allowed=allowed)
    assert all(i in allowed for row in found for i, _ in row)
    assert all(len(row) == 10 for row in found)
    assert recall(found, exact(x, q, ids, 10, allowed)) >= (1.0 if factory == "Flat" or fraction < 0.05 else 0.85)


def test_remove_replace_and_persist(tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    x, _, ids = data
    for factory in ("IVF{nlist},Flat", "HNSW32", "Flat"):
        directory = tmp_path / factory.replace("{nlist}", "n").replace(",", "_")
        index = VectorIndex(
            "f", 48, directory=directory, exact_threshold=1000 if factory != "Flat" else 10**9, factory=factory
        )
        index.add(ids, x)
        assert index.remove(ids[:5]) == 5
        assert index.remove(ids[:5]) == 0
        index.add(ids[10:11], -x[10:11])  # replacing keeps one entry per id
        assert index.ntotal == len(ids) - 5
        index.save(generation=7)
        loaded = VectorIndex("f", 48, directory=directory)
        assert loaded.load()
        assert loaded.ntotal == len(ids) - 5 and loaded.kind == index.kind
        assert loaded.doc_ids() == set(ids[5:])
        top = loaded.search(x[20:21], 1)[0][0]
        assert top[0] == ids[20]
        assert loaded.search(-x[10:11], 1)[0][0][0] == ids[10]


def test_corrupt_files_are_reported_not_loaded(tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    index = build(tmp_path, data)
    index.save()
    (tmp_path / "f.faiss").write_bytes(b"garbage")
    assert not VectorIndex("f", 48, directory=tmp_path).load()
    assert not VectorIndex("f", 48, directory=tmp_path / "missing").load()
    assert not VectorIndex("f", 64, directory=tmp_path).load()


def test_dimension_mismatch_is_an_error(tmp_path: Path) -> None:
    index = VectorIndex("f", 8, directory=tmp_path)
    with pytest.raises(ValueError, match="expected 1 vectors of dim 8"):
        index.add([secrets.token_hex(16)], np.ones((1, 9)))


def test_hash_index_hamming_search() -> None:
    index = HashIndex()
    index.add([("a", "0000000000000000"), ("b", "0000000000000003"), ("c", "ffffffffffffffff")])
    assert index.search(0, max_distance=4, k=10) == [("a", 0), ("b", 2)]
    assert index.search(0, max_distance=4, k=10, allowed={"b"}) == [("b", 2)]
    index.remove(["a"])
    assert index.search(0, max_distance=64, k=1) == [("b", 2)]
    assert len(index) == 2


def test_ivf_is_retrained_as_it_grows(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    index = VectorIndex("f", 16, directory=tmp_path, exact_threshold=500, factory="IVF{nlist},Flat")
    batches = [normalise(rng.standard_normal((500, 16))) for _ in range(6)]
    index.add([secrets.token_hex(16) for _ in range(501)], np.vstack([batches[0], batches[1][:1]]))
    assert index.kind == "ivf" and index.trained_for == 501
    first_spec = index.spec
    for batch in batches[2:]:
        index.add([secrets.token_hex(16) for _ in range(len(batch))], batch)
    assert index.ntotal == 2501
    assert index.trained_for == 2501 and index.spec != first_spec  # retrained past 4x its training size
    assert index.describe()["index"] == index.spec
    index.save()
    loaded = VectorIndex("f", 16, directory=tmp_path)
    assert loaded.load() and (loaded.spec, loaded.trained_for) == (index.spec, index.trained_for)


def test_vector_keys_match_vector_id() -> None:
    from engine.documents import vector_id, vector_keys

    ids = [secrets.token_hex(16) for _ in range(100)] + ["f" * 32, "0" * 32]
    assert vector_keys(ids).tolist() == [vector_id(i) for i in ids]
    assert vector_keys([]).dtype == np.int64


@pytest.mark.parametrize("factory", ["Flat", "IVF{nlist},Flat", "HNSW32"])
def test_allowed_ids_the_index_lacks_are_ignored(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray, list[str]], factory: str
) -> None:
    _, q, ids = data
    threshold = 10**9 if factory == "Flat" else 1000
    index = build(tmp_path, data, exact_threshold=threshold, factory=factory, nprobe=64, exact_filter_max=50)
    strangers = {secrets.token_hex(16) for _ in range(500)}
    allowed = set(ids[:300]) | strangers  # over exact_filter_max: the selector path
    found = index.search(q[:5], 10, allowed=allowed)
    assert all(len(row) == 10 and all(i in set(ids[:300]) for i, _ in row) for row in found)
    assert index.search(q[:2], 10, allowed=strangers) == [[], []]
    small = set(ids[:20]) | set(list(strangers)[:10])  # under it: the exact subset path
    assert all({i for i, _ in row} <= set(ids[:20]) for row in index.search(q[:3], 5, allowed=small))


def test_search_threads_apply_to_the_search_alone() -> None:
    import faiss

    rng = np.random.default_rng(3)
    data = rng.normal(size=(500, 16)).astype(np.float32)
    ids = [secrets.token_hex(32) for _ in range(500)]
    one = VectorIndex("f", 16, search_threads=1)
    every = VectorIndex("f", 16, search_threads=0)
    one.add(ids, data)
    every.add(ids, data)
    before = faiss.omp_get_max_threads()
    assert one.search(data[:5], 3) == every.search(data[:5], 3)  # same answers whatever the thread count
    assert [hits[0][0] for hits in one.search(data[:5], 3)] == ids[:5]
    assert faiss.omp_get_max_threads() == before  # restored for whatever runs next on this thread
