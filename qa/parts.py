"""What one encoder pass over a text gives, whichever model and engine produced it.

A chunk needs its dense vector, its latent terms and a vector per sentence; a question its dense vector and
latent terms. The torch engine gets all of them from one pass (qa.engine); :func:`passage_parts` and
:func:`query_parts` fall back to separate calls for any other Embedder, so callers need no special case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Spans = Sequence[tuple[int, int]]  # (start, end) character ranges inside one text


@dataclass(frozen=True)
class PassageParts:
    vectors: np.ndarray  # (texts, dim) unit rows
    sparse: np.ndarray  # (texts, 2 * SPARSE_K) latent-term rows (qa.latent_terms), or (texts, 0) for none
    sentences: list[np.ndarray]  # per text: (len(spans), dim) unit rows


@dataclass(frozen=True)
class QueryParts:
    vectors: np.ndarray
    sparse: np.ndarray


def one_pass(embedder) -> bool:
    """Whether the embedder reads a chunk once for all its parts (then worth calling over separate calls)."""
    return bool(getattr(embedder, "one_pass", False))


def passage_parts(embedder, texts: Sequence[str], spans: Sequence[Spans]) -> PassageParts:
    """``embedder.encode_passage_parts`` when it has one, else a pass for the texts and one for the spans."""
    own = getattr(embedder, "encode_passage_parts", None)
    if own is not None:
        return own(texts, spans)
    alone = [t[s:e] for t, text_spans in zip(texts, spans) for s, e in text_spans]
    vectors = embedder.encode_passages(list(texts) + alone)
    bounds = len(texts) + np.cumsum([0, *(len(s) for s in spans)])
    sparse = getattr(embedder, "encode_sparse", None)
    return PassageParts(
        vectors[: len(texts)],
        sparse(list(texts)) if sparse is not None else np.empty((len(texts), 0), np.float32),
        [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
    )


def query_parts(embedder, texts: Sequence[str]) -> QueryParts:
    """``embedder.encode_query_parts`` when it has one, else the dense vectors and latent terms apart."""
    own = getattr(embedder, "encode_query_parts", None)
    if own is not None:
        return own(texts)
    sparse = getattr(embedder, "encode_sparse", None)
    vectors = embedder.encode_queries(list(texts))
    return QueryParts(vectors, sparse(list(texts)) if sparse is not None else np.empty((len(texts), 0), np.float32))
