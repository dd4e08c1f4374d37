"""Index types by size: a flat index is the only copy of the chunk vectors, an approximate index is tuned to
the recall target, recorded, survives save/load, and rows copied into the next generation never drift."""

from __future__ import annotations

import numpy as np
import pytest

from qa import store, vector_index
from qa.models import Document
from qa.stores.base import DocRows

HEADER = {"embedder": {"name": "synthetic", "dim": 64, "sparse": 0}, "chunking": {"size": 500}}


def _clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, clusters, n)] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _one_document(vectors: np.ndarray) -> DocRows:
    """One document of one-character chunks, each its own sentence, a chunk vector per row."""
    n = len(vectors)
    doc = Document("d.txt", "d", "x" * n, "0")
    empty = np.empty((n, 0), np.float32)
    return DocRows(doc, [(i, i + 1, i, i + 1) for i in range(n)], [(i, i + 1) for i in range(n)], vectors,
                   vectors, vectors, empty, ("",) * n)  # fmt: skip


def test_auto_picks_exact_while_small_and_ivf_when_large() -> None:
    assert vector_index.choose_kind(vector_index.FLAT_MAX) == "flat"
    assert vector_index.choose_kind(vector_index.FLAT_MAX + 1) == "ivf-sq8"
    with pytest.raises(ValueError, match="unknown index kind"):
        vector_index.choose_kind(10, "lsh")


def test_ivf_sq8_is_tuned_to_recall_recorded_and_reloaded(tmp_path) -> None:
    vectors = _clustered(8000)
    store.save(tmp_path, *store.assemble(HEADER, [_one_document(vectors)], "ivf-sq8"))
    loaded = store.load(tmp_path)
    info = loaded.manifest["search_index"]
    assert info["kind"] == "ivf-sq8" and info["nprobe"] >= 1 and info["tuned_recall_at_10"] >= 0.98
    queries = vector_index.sample_queries(vectors, 100, np.random.default_rng(7))
    truth = vector_index.exact_top_k(vectors, queries, 10)
    assert vector_index.recall_at_k(loaded.search(queries, 10)[1], truth) >= 0.98
    # a query equal to a stored vector finds that row first, with its cosine re-scored from the float16 rows
    hit = loaded.search_hits(vectors[123], 1)[0]
    assert hit.chunk.start == 123 and hit.score == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "hnsw"])
def test_rows_copied_into_the_next_generation_keep_exactly_their_codes(tmp_path, kind: str) -> None:
    vectors = _clustered(2000)
    store.save(tmp_path, *store.assemble(HEADER, [_one_document(vectors)], kind))
    first = store.load(tmp_path)
    copied = first.document_rows("d.txt")
    assert np.abs(copied.vectors - vectors).max() < 1e-3  # float16: close to what was embedded
    store.save(tmp_path, *store.assemble(HEADER, [copied], kind))
    second = store.load(tmp_path)
    again = second.document_rows("d.txt")
    assert np.array_equal(again.vectors, copied.vectors) and np.array_equal(
        again.sentence_vectors, copied.sentence_vectors
    )


def test_a_served_generation_keeps_answering_after_a_new_one_deletes_its_files(tmp_path) -> None:
    vectors = _clustered(500)
    store.save(tmp_path, *store.assemble(HEADER, [_one_document(vectors)]))
    served = store.load(tmp_path)  # memory-mapped
    old = store.current_generation(tmp_path)
    store.save(tmp_path, *store.assemble(HEADER, [_one_document(vectors[:10])]))  # collects the old generation
    assert old is not None and not old.exists()
    hit = served.search_hits(vectors[499], 1)[0]  # a request in flight on the replaced generation
    assert hit.chunk.start == 499 and len(hit.sentence_vectors) == 1
