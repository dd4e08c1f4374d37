"""One generation of the local store in memory: documents, chunk and sentence rows, their vectors and the
FAISS index over the chunk vectors. ``qa.stores.local`` writes it to disk and reads it back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa import vector_index
from qa.models import Chunk, Document, Span
from qa.stores.base import DocRows, Hit


@dataclass
class IndexData:
    """Everything a generation holds. Rows of ``chunks`` are FAISS ids; chunks are stored document by document."""

    manifest: dict[str, Any]
    documents: list[Document]
    chunks: np.ndarray  # int64 (n, 5): doc row, start, end, first sentence row, sentence row end
    sentences: np.ndarray  # int64 (m, 3): doc row, start, end
    vectors: np.ndarray  # float32 (n, dim): chunk vectors
    sentence_vectors: np.ndarray  # float32 (m, dim): each sentence alone
    context_vectors: np.ndarray  # float32 (m, dim): each sentence after a denial before it, else alone
    sparse: np.ndarray  # float32 (n, 2 * SPARSE_K): chunk latent terms, ids then weights; (n, 0) if none
    index: Any = None
    by_id: dict[str, int] = field(default_factory=dict)
    index_kind: str = "auto"  # requested kind when the index is built here (see qa.vector_index)
    row_file: vector_index.RowFile | None = None  # vectors.npy of a loaded generation, for re-scoring

    def __post_init__(self) -> None:
        self.by_id = {doc.id: row for row, doc in enumerate(self.documents)}
        if self.index is None:
            self.index, info = vector_index.build(self.vectors, self.index_kind)
            self.manifest = dict(self.manifest, search_index=info)
        else:
            vector_index.configure(self.index, self.search_info)

    @property
    def search_info(self) -> dict[str, Any]:
        return self.manifest.get("search_index", {"kind": "flat"})

    @property
    def num_documents(self) -> int:
        return len(self.documents)

    @property
    def num_chunks(self) -> int:
        return len(self.chunks)

    @property
    def dim(self) -> int:
        return int(self.manifest["embedder"]["dim"])

    def document(self, doc_id: str) -> Document | None:
        row = self.by_id.get(doc_id)
        return None if row is None else self.documents[row]

    def search_hits(self, query: np.ndarray, k: int) -> list[Hit]:
        """The k chunks closest to one query vector, best first."""
        scores, rows = self.search(query[None, :], k)
        hits = []
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            chunk = self.chunk(int(row))
            doc = self.documents[self.by_id[chunk.doc_id]]
            sentences = self.chunk_sentences(int(row))
            hits.append(
                Hit(
                    score=float(score),
                    chunk=chunk,
                    title=doc.title,
                    sentences=[self.sentence(i) for i in sentences],
                    sentence_vectors=self.sentence_vectors[sentences.start : sentences.stop],
                    context_vectors=self.context_vectors[sentences.start : sentences.stop],
                    sparse=self.sparse[row] if self.sparse.shape[1] else None,
                    pages=doc.pages,
                )
            )
        return hits

    def chunk(self, row: int) -> Chunk:
        doc_row, start, end = (int(v) for v in self.chunks[row, :3])
        doc = self.documents[doc_row]
        return Chunk(doc.id, start, end, doc.text[start:end])

    def chunk_sentences(self, row: int) -> range:
        return range(int(self.chunks[row, 3]), int(self.chunks[row, 4]))

    def sentence(self, row: int) -> Span:
        doc_row, start, end = (int(v) for v in self.sentences[row])
        return Span(start, end, self.documents[doc_row].text[start:end])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by inner product (cosine: all vectors are normalized)."""
        rows = self.row_file if self.row_file is not None else self.vectors
        return vector_index.search(self.index, self.search_info, rows, queries, k)

    def document_rows(self, doc_id: str) -> DocRows:
        """A stored document's rows, as the writer received them: an unchanged document is copied, not embedded."""
        row = self.by_id[doc_id]
        chunk_rows = np.arange(*np.searchsorted(self.chunks[:, 0], [row, row + 1]))
        if len(chunk_rows) == 0:
            empty = np.empty((0, self.dim), np.float32)
            return DocRows(self.documents[row], [], [], empty, empty, empty, self.sparse[:0])
        first = int(self.chunks[chunk_rows[0], 3])
        last = int(self.chunks[chunk_rows[-1], 4])
        chunks = [(int(c[1]), int(c[2]), int(c[3]) - first, int(c[4]) - first) for c in self.chunks[chunk_rows]]
        return DocRows(
            self.documents[row],
            chunks,
            [(int(s[1]), int(s[2])) for s in self.sentences[first:last]],
            self.vectors[chunk_rows],
            self.sentence_vectors[first:last],
            self.context_vectors[first:last],
            self.sparse[chunk_rows],
        )


def assemble(header: dict[str, Any], documents: list[DocRows], index_kind: str = "auto") -> IndexData:
    """A new generation from documents' rows (in the order given) and the embedder/chunking header."""
    dim = int(header["embedder"]["dim"])
    chunks, sentences = [], []
    for doc_row, rows in enumerate(documents):
        offset = len(sentences)
        chunks.extend((doc_row, s, e, offset + a, offset + b) for s, e, a, b in rows.chunks)
        sentences.extend((doc_row, s, e) for s, e in rows.sentences)

    def stack(name: str, width: int = dim) -> np.ndarray:
        parts = [getattr(r, name) for r in documents if len(getattr(r, name))]
        return np.ascontiguousarray(np.vstack(parts) if parts else np.empty((0, width)), dtype=np.float32)

    manifest = dict(
        header,
        documents={
            r.doc.id: {"sha256": r.doc.sha256, "title": r.doc.title, "chunks": len(r.chunks)} for r in documents
        },
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return IndexData(
        manifest=manifest,
        documents=[r.doc for r in documents],
        chunks=np.array(chunks, dtype=np.int64).reshape(-1, 5),
        sentences=np.array(sentences, dtype=np.int64).reshape(-1, 3),
        vectors=stack("vectors"),
        sentence_vectors=stack("sentence_vectors"),
        context_vectors=stack("context_vectors"),
        sparse=stack("sparse", header["embedder"]["sparse"]),
        index_kind=index_kind,
    )
