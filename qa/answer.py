"""The one place where a question becomes an Answer: retrieve passages, pick the answering sentence, cite."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from qa.embedding import Embedder
from qa.errors import DocumentNotFound, IndexMissing
from qa.highlight import best_sentence
from qa.models import Answer, Citation, Document, Span, Turn
from qa.store import IndexData

CANDIDATES = 30  # chunks scored per question before the top_k are kept


class Answerer:
    """Holds the model and the live index; ``swap`` replaces the index atomically while serving."""

    def __init__(self, embedder: Embedder, data: IndexData | None, *, min_score: float = 0.0) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self._data = data
        self._lock = threading.Lock()

    @property
    def data(self) -> IndexData:
        data = self._data
        if data is None or not data.documents or len(data.chunks) == 0:
            raise IndexMissing(
                "the index is empty: put documents in the seeds folder and run `qa index` (or restart `qa serve`)"
            )
        return data

    def swap(self, data: IndexData | None) -> None:
        """Readers hold their own reference, so a request in flight finishes on the index it started with."""
        with self._lock:
            self._data = data

    def document(self, doc_id: str) -> Document:
        data = self.data
        row = data.by_id.get(doc_id)
        if row is None:
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        return data.documents[row]

    def ask(self, question: str, top_k: int = 5, history: Sequence[Turn] = ()) -> Answer:
        started = time.perf_counter()
        data = self.data
        query = self.embedder.encode_queries([question])[0]
        scores, rows = data.search(query[None, :], max(CANDIDATES, top_k))
        ranked = []
        for chunk_score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            highlight, sentence_score = best_sentence(data, int(row), query)
            ranked.append((float(chunk_score), int(row), highlight, sentence_score))
        ranked.sort(key=lambda item: -item[0])
        citations = _citations(data, ranked, top_k)
        best = citations[0] if citations else None
        no_answer = best is None or best.score < self.min_score
        return Answer(
            question=question,
            answer="" if no_answer or best is None else best.highlight.text,
            citations=citations,
            no_answer=no_answer,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _citations(data: IndexData, ranked: list[tuple[float, int, Span, float]], top_k: int) -> list[Citation]:
    citations: list[Citation] = []
    seen: set[tuple[str, int]] = set()
    for score, row, highlight, _ in ranked:
        chunk = data.chunk(row)
        if (chunk.doc_id, highlight.start) in seen:  # an overlapping chunk citing the same sentence again
            continue
        seen.add((chunk.doc_id, highlight.start))
        doc = data.documents[data.by_id[chunk.doc_id]]
        citations.append(
            Citation(
                rank=len(citations) + 1,
                document=doc.id,
                title=doc.title,
                start=chunk.start,
                end=chunk.end,
                text=chunk.text,
                highlight=highlight,
                score=round(score, 4),
            )
        )
        if len(citations) == top_k:
            break
    return citations
