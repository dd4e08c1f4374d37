"""Index types by size: an approximate index is tuned to the recall target, recorded, and survives save/load."""

from __future__ import annotations

import numpy as np
import pytest

from qa import store, vector_index
from qa.models import Document


def _clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, clusters, n)] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_auto_picks_exact_while_small_and_ivf_when_large() -> None:
    assert vector_index.choose_kind(vector_index.FLAT_MAX) == "flat"
    assert vector_index.choose_kind(vector_index.FLAT_MAX + 1) == "ivf-sq8"
    with pytest.raises(ValueError, match="unknown index kind"):
        vector_index.choose_kind(10, "lsh")


def test_ivf_sq8_is_tuned_to_recall_recorded_and_reloaded(tmp_path) -> None:
    vectors = _clustered(8000)
    n = len(vectors)
    data = store.IndexData(
        manifest={"embedder": {"name": "synthetic", "dim": 64}},
        documents=[Document("d.txt", "d", "x" * (n + 1), "0")],
        chunks=np.array([(0, i, i + 1, i, i + 1) for i in range(n)], dtype=np.int64),
        sentences=np.array([(0, i, i + 1) for i in range(n)], dtype=np.int64),
        vectors=vectors,
        sentence_vectors=vectors,
        context_vectors=vectors,
        sparse=np.empty((n, 0), np.float32),
        index_kind="ivf-sq8",
    )
    info = data.manifest["search_index"]
    assert info["kind"] == "ivf-sq8" and info["nprobe"] >= 1 and info["tuned_recall_at_10"] >= 0.98

    store.save(tmp_path, data)
    loaded = store.load(tmp_path)
    assert loaded.manifest["search_index"] == info
    queries = vector_index.sample_queries(vectors, 100, np.random.default_rng(7))
    truth = vector_index.exact_top_k(vectors, queries, 10)
    found = loaded.search(queries, 10)[1]
    assert vector_index.recall_at_k(found, truth) >= 0.98
    # a query equal to a stored vector finds that row first, with its exact (re-scored) cosine
    hit = loaded.search_hits(vectors[123], 1)[0]
    assert hit.chunk.start == 123 and hit.score == pytest.approx(1.0, abs=1e-5)


def test_rescoring_rows_are_read_exactly_even_after_their_generation_is_deleted(tmp_path) -> None:
    vectors = _clustered(500)
    np.save(tmp_path / "vectors.npy", vectors)
    rows = vector_index.RowFile(tmp_path / "vectors.npy")
    wanted = np.array([499, 0, 17, 17])
    assert np.array_equal(rows[wanted], vectors[wanted])
    (tmp_path / "vectors.npy").unlink()  # a live re-index removes the old generation under a request in flight
    assert np.array_equal(rows[wanted], vectors[wanted])
