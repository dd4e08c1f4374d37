"""Compact row encodings of a generation: what is stored on disk, and how a hit reads it back.

- sentence and context rows: only re-scored against the question. The leading ``fine`` columns (the
  heaviest model of a fused embedder: e5) as int8 at a fixed scale (``ROW_RANGE``), where 8 bits cost
  nothing measurable; the columns after them (USE) as 4-bit codes, two a byte, at a step set by the energy
  the fine columns leave (rows are unit length), so it needs no stored scale and a block a language's gate
  zeroed (Greek has no USE block) decodes to zeros. 4 bits there moved no recall@1, recall@5 or highlight
  figure beyond noise, 4 bits on the e5 columns did (docs/performance.md, "Index size");
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
COARSE_CLIP = 3.0  # 4-bit columns: 16 steps spanning +-3 times their root mean square
_EMPTY = 1e-2  # energy left to the coarse columns below which they are a zeroed block, not noise


def encode_rows(rows: np.ndarray, fine: int | None = None) -> np.ndarray:
    """Unit float rows -> int8 codes: ``fine`` columns at 8 bits (all when None), then the rest at 4 bits."""
    rows = np.asarray(rows, dtype=np.float32)
    fine = rows.shape[1] if fine is None else fine
    head = np.clip(np.rint(rows[:, :fine] * _SCALE), -127, 127).astype(np.int8)
    if fine >= rows.shape[1]:
        return head
    if (rows.shape[1] - fine) % 2:
        raise ValueError(f"the 4-bit columns of a row come in pairs: {rows.shape[1]} - {fine} is odd")
    step = _coarse_step(head, rows.shape[1] - fine)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.where(step > 0, np.floor(rows[:, fine:] / step), 0)
    nibbles = (np.clip(levels, -8, 7) + 8).astype(np.uint8)
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return np.hstack([head, packed.view(np.int8)])


def decode_rows(codes: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Codes -> float32 rows of ``dim`` columns (the codes' width when None: all 8-bit)."""
    codes = np.asarray(codes)
    dim = codes.shape[1] if dim is None else dim
    fine = 2 * codes.shape[1] - dim  # width = fine + (dim - fine) / 2
    head = codes[:, :fine].astype(np.float32) / _SCALE
    if fine >= dim:
        return head
    packed = codes[:, fine:].view(np.uint8)
    levels = np.empty((len(codes), dim - fine), np.float32)
    levels[:, 0::2], levels[:, 1::2] = packed >> 4, packed & 15
    return np.hstack([head, (levels - 7.5) * _coarse_step(codes[:, :fine], dim - fine)])


def _coarse_step(head: np.ndarray, width: int) -> np.ndarray:
    """The 4-bit step of each row, from the fine codes alone: what encodes a row is what decodes it, and a
    decoded row encodes to the same bytes."""
    fine = head.astype(np.float32) / _SCALE
    left = np.maximum(1.0 - np.einsum("ij,ij->i", fine, fine), 0.0)
    step = 2 * COARSE_CLIP * np.sqrt(left / width) / 16
    return np.where(left > _EMPTY, step, 0.0).astype(np.float32)[:, None]


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
