"""The one place where a question becomes an Answer: retrieve passages, pick the answering sentence, cite."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from qa.embedding import Embedder
from qa.errors import DocumentNotFound, IndexMissing, QAError
from qa.highlight import best_sentence
from qa.models import Answer, Citation, Document, Span, Turn
from qa.store import Hit, SearchIndex

CANDIDATES = 30  # chunks scored per question before the top_k are kept


class Answerer:
    """Holds the model and the live index; ``swap`` replaces the index atomically while serving."""

    def __init__(
        self, embedder: Embedder, index: SearchIndex | None, *, min_score: float = 0.0, problem: QAError | None = None
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self._index = index
        self._problem = problem  # why there is no index (e.g. IndexCorrupt), reported instead of "empty"
        self._lock = threading.Lock()

    @property
    def index(self) -> SearchIndex | None:
        """The live index (None before the first build); may be empty."""
        return self._index

    def _live(self) -> SearchIndex:
        index = self._index
        if index is None and self._problem is not None:
            raise self._problem
        if index is None or index.num_chunks == 0:
            raise IndexMissing(
                "the index is empty: put documents in the seeds folder and run `qa index` (or restart `qa serve`)"
            )
        return index

    def swap(self, index: SearchIndex | None) -> None:
        """Readers hold their own reference, so a request in flight finishes on the index it started with."""
        with self._lock:
            self._index = index
            self._problem = None

    def document(self, doc_id: str) -> Document:
        doc = self._live().document(doc_id)
        if doc is None:
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        return doc

    def ask(self, question: str, top_k: int = 5, history: Sequence[Turn] = ()) -> Answer:
        started = time.perf_counter()
        index = self._live()
        query = self.embedder.encode_queries([question])[0]
        hits = index.search_hits(query, max(CANDIDATES, top_k))
        ranked = sorted(((hit, *best_sentence(hit, query)) for hit in hits), key=lambda item: -item[0].score)
        citations = _citations(ranked, top_k)
        best = citations[0] if citations else None
        no_answer = best is None or best.score < self.min_score
        return Answer(
            question=question,
            answer="" if no_answer or best is None else best.highlight.text,
            citations=citations,
            no_answer=no_answer,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _citations(ranked: list[tuple[Hit, Span, float]], top_k: int) -> list[Citation]:
    citations: list[Citation] = []
    seen: set[tuple[str, int]] = set()
    for hit, highlight, _ in ranked:
        chunk = hit.chunk
        if (chunk.doc_id, highlight.start) in seen:  # an overlapping chunk citing the same sentence again
            continue
        seen.add((chunk.doc_id, highlight.start))
        citations.append(
            Citation(
                rank=len(citations) + 1,
                document=chunk.doc_id,
                title=hit.title,
                start=chunk.start,
                end=chunk.end,
                text=chunk.text,
                highlight=highlight,
                score=round(hit.score, 4),
            )
        )
        if len(citations) == top_k:
            break
    return citations
