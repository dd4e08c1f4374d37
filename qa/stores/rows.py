"""Compact row encodings of a generation: what is stored on disk, and how a hit reads it back.

- sentence and context rows: int8 at a fixed scale (``ROW_RANGE``): they are only re-scored against the
  question, where 8 bits cost nothing measurable (docs/quality.md);
- latent terms: CSR, uint16 feature ids and float16 weights, only the terms a text has;
- chunk vectors: float16 inside the FAISS index itself (qa.vector_index), stored once.

Every encoding is idempotent: decoding and encoding again gives the same bytes, so an unchanged document
copied from one generation to the next never drifts.
"""

from __future__ import annotations

import numpy as np

from qa.embedding import SPARSE_K

STORED_TERMS = SPARSE_K  # latent terms kept per chunk (a measured variant keeps 128: docs/quality.md)
ROW_RANGE = 0.25  # |component| of a unit row above this is clipped (e5 and USE rows peak near 0.17)
_SCALE = 127 / ROW_RANGE


def encode_rows(rows: np.ndarray) -> np.ndarray:
    """Float rows -> int8 codes."""
    rows = np.asarray(rows, dtype=np.float32)
    return np.clip(np.rint(rows * _SCALE), -127, 127).astype(np.int8)


def decode_rows(codes: np.ndarray) -> np.ndarray:
    """int8 codes -> float32 rows."""
    return np.asarray(codes, dtype=np.float32) / _SCALE


def encode_sparse(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense latent-term rows (ids then weights, zero-padded) -> CSR (row starts, uint16 ids, float16 weights).

    At most ``STORED_TERMS`` terms a row, the heaviest, re-normalized to unit length when any were dropped.
    """
    if rows.shape[1] == 0:
        return np.zeros(len(rows) + 1, np.int64), np.empty(0, np.uint16), np.empty(0, np.float16)
    ids, weights = rows[:, :SPARSE_K], rows[:, SPARSE_K:].copy()
    if STORED_TERMS < SPARSE_K:
        weights[np.arange(len(rows))[:, None], np.argsort(-weights, axis=1)[:, STORED_TERMS:]] = 0
        weights /= np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)
    keep = weights != 0
    ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=ptr[1:])
    return ptr, ids[keep].astype(np.uint16), weights[keep].astype(np.float16)


def decode_sparse(ptr: np.ndarray, ids: np.ndarray, weights: np.ndarray, row: int) -> np.ndarray:
    """One chunk's latent terms as the answerer reads them: ``SPARSE_K`` ids then their weights."""
    a, b = int(ptr[row]), int(ptr[row + 1])
    out = np.zeros(2 * SPARSE_K, np.float32)
    out[: b - a] = ids[a:b]
    out[SPARSE_K : SPARSE_K + b - a] = weights[a:b]
    return out
