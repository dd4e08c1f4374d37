"""Synthetic documents in collections, written through the real store code: thousands of rows in a second.

Vectors are clustered (around random centres, like real embeddings) and normalized; each chunk is one
character of its document and its own sentence, so a hit names its row. Used by the collection tests to
check that a small collection inside a large corpus gets the top k it would get alone.
"""

from __future__ import annotations

import numpy as np

from qa.models import Document
from qa.stores.base import DocRows

DIM = 64
HEADER = {"embedder": {"name": "synthetic", "dim": DIM, "sparse": 0}, "chunking": {"size": 500}}
CENTRES = 40


def centres(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(CENTRES, DIM)).astype(np.float32)


def documents(
    prefix: str, count: int, chunks: int, seed: int, languages: tuple[str, ...] = ("en", "de")
) -> list[DocRows]:
    """``count`` documents ``<prefix>doc-NNNN.txt`` of ``chunks`` rows each; document i's rows are in
    ``languages[i % len(languages)]`` (so the ranking stage corrects for language, as on a real corpus)."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(count):
        x = centres()[rng.integers(0, CENTRES, chunks)] + rng.normal(scale=0.7, size=(chunks, DIM)).astype(np.float32)
        vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        doc = Document(f"{prefix}doc-{i:04d}.txt", f"{prefix}{i}", "x" * chunks, f"{prefix}{i}")
        language = languages[i % len(languages)]
        found.append(
            DocRows(
                doc,
                [(j, j + 1, j, j + 1) for j in range(chunks)],
                [(j, j + 1) for j in range(chunks)],
                vectors,
                vectors,
                vectors,
                np.empty((chunks, 0), np.float32),
                (language,) * chunks,
            )  # fmt: skip
        )
    return found


def queries(count: int, seed: int) -> np.ndarray:
    """Questions near the corpus's centres, unrelated to any one collection."""
    rng = np.random.default_rng(seed)
    x = centres()[rng.integers(0, CENTRES, count)] + rng.normal(scale=0.7, size=(count, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
