"""Compact row encodings of a generation: what is stored on disk, and how a hit reads it back.

- sentence and context rows: int8 at a fixed scale (``ROW_RANGE``): they are only re-scored against the
  question, where 8 bits cost nothing measurable (docs/quality.md);
- latent terms: CSR, uint16 feature ids and one byte per weight (the square root of the weight in 1/255
  steps: 1-2 % of a weight, finest where weights are small), only the ``STORED_TERMS`` heaviest a text has;
- chunk vectors: 8-bit codes inside the FAISS index itself (qa.vector_index), stored once.

Every encoding is idempotent: decoding and encoding again gives the same bytes, so an unchanged document
copied from one generation to the next never drifts.
"""

from __future__ import annotations

import numpy as np

from qa.embedding import SPARSE_K

# latent terms kept per chunk, the heaviest: all 256 by default. Keeping 128 saves 384 bytes a chunk and meets
# 4 KiB a chunk on XQuAD, but cost Chinese 0.8 points of recall@1 (docs/performance.md, "Index size")
STORED_TERMS = SPARSE_K
ROW_RANGE = 0.25  # |component| of a unit row above this is clipped (e5 and USE rows peak near 0.17)
_SCALE = 127 / ROW_RANGE


def encode_rows(rows: np.ndarray) -> np.ndarray:
    """Float rows -> int8 codes."""
    rows = np.asarray(rows, dtype=np.float32)
    return np.clip(np.rint(rows * _SCALE), -127, 127).astype(np.int8)


def decode_rows(codes: np.ndarray) -> np.ndarray:
    """int8 codes -> float32 rows."""
    return np.asarray(codes, dtype=np.float32) / _SCALE


def encode_weights(weights: np.ndarray) -> np.ndarray:
    """Non-negative weights (at most 1: rows are unit length) -> one byte each, the square root in 1/255 steps."""
    return np.rint(np.sqrt(np.clip(weights, 0.0, 1.0)) * 255).astype(np.uint8)


def decode_weights(codes: np.ndarray) -> np.ndarray:
    return (np.asarray(codes, np.float32) / 255) ** 2


def encode_sparse(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense latent-term rows (ids then weights, zero-padded) -> CSR (row starts, uint16 ids, uint8 weights).

    At most ``STORED_TERMS`` terms a row, the heaviest, re-normalized to unit length when any were dropped
    (only then: a row read back from a generation is encoded to the same bytes again).
    """
    if rows.shape[1] == 0:
        return np.zeros(len(rows) + 1, np.int64), np.empty(0, np.uint16), np.empty(0, np.uint8)
    ids, weights = rows[:, :SPARSE_K], rows[:, SPARSE_K:].copy()
    over = (weights != 0).sum(axis=1) > STORED_TERMS
    if over.any():
        cut = weights[over]
        cut[np.arange(len(cut))[:, None], np.argsort(-cut, axis=1)[:, STORED_TERMS:]] = 0
        weights[over] = cut / np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)
    codes = encode_weights(weights)
    keep = codes != 0
    ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=ptr[1:])
    return ptr, ids[keep].astype(np.uint16), codes[keep]


def decode_sparse(ptr: np.ndarray, ids: np.ndarray, weights: np.ndarray, row: int) -> np.ndarray:
    """One chunk's latent terms as the answerer reads them: ``SPARSE_K`` ids then their weights."""
    a, b = int(ptr[row]), int(ptr[row + 1])
    out = np.zeros(2 * SPARSE_K, np.float32)
    out[: b - a] = ids[a:b]
    out[SPARSE_K : SPARSE_K + b - a] = decode_weights(weights[a:b])
    return out
