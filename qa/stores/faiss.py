"""One generation of the local store: documents, chunk and sentence rows in compact encodings, and the FAISS
index over the chunk vectors. ``assemble`` builds one in memory; ``qa.stores.local`` writes it to disk and
memory-maps it back, which is how every generation is served.

Arrays of a generation (FORMAT 5, see qa.stores.rows for the encodings)::

    texts            uint8 (bytes,)      every document's text once, UTF-8, back to back
    doc_bytes        int64 (d, 2)        byte range of each document in ``texts``
    chunks           int32 (n, 5)        doc row, start, end (characters), first sentence row, sentence row end
    chunk_bytes      int64 (n, 2)        byte range of each chunk in ``texts``
    chunk_languages  uint8 (n,)          index into manifest["languages"] (qa.languages.detect; 0: unknown)
    sentences        int32 (m, 2)        start, end (characters in the document)
    sentence_rows    int8  (m, width)    each sentence alone: manifest["embedder"]["fine"] columns at 8 bits, the
                                         rest at 4 bits (qa.stores.rows; width = fine + (dim - fine) / 2)
    contexts         int32 (m,)          row of ``context_rows`` where a sentence has its own reading after a
                                         denial, -1 where that reading is the sentence alone
    context_rows     int8  (c, width)
    sparse_ptr, sparse_ids (uint16), sparse_weights (uint8)    latent terms of each chunk, CSR
    chunk_rows       float16 (n, dim)    only for approximate index kinds: the searched vectors, to re-score
                                         candidates (a flat index holds them itself, as 8-bit codes)

FAISS holds the chunk vectors as embedded (FORMAT 6); the generation's ``stats`` are the per-language sums
and counts of those rows (qa.centering.Stats, stats.json), from which the ranking stage (qa.ranking)
corrects every hit for its language, as it does Milvus's; ``stats["collections"]`` holds the same per
collection, so a search inside some collections is corrected by their rows alone.

Collections (qa.collections) are read from the document ids: each chunk's collection is derived once, at
load, from its document row, so a search restricted to some collections selects their rows inside FAISS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, overload

import numpy as np

from qa import centering, vector_index
from qa import collections as colls
from qa.byte_offsets import utf8_offsets
from qa.collections import Scope
from qa.models import Chunk, Document, Span
from qa.stores import rows as enc
from qa.stores.arrayfile import ArrayFile
from qa.stores.base import DocRows, Hit, Scored, chunk_languages

SCOPES_CACHED = 256  # (language, scope) row selections kept per generation: a few keys' scopes times languages
ARRAYS = (
    "texts", "doc_bytes", "chunks", "chunk_bytes", "chunk_languages", "sentences", "sentence_rows", "contexts",
    "context_rows", "sparse_ptr", "sparse_ids", "sparse_weights",
)  # fmt: skip


class Documents(Sequence[Document]):
    """The generation's documents, each decoded from the shared text bytes when asked for."""

    def __init__(self, meta: list[dict[str, Any]], texts: np.ndarray, doc_bytes: np.ndarray) -> None:
        self._meta, self._texts, self._bytes = meta, texts, doc_bytes

    def __len__(self) -> int:
        return len(self._meta)

    @overload
    def __getitem__(self, row: int) -> Document: ...
    @overload
    def __getitem__(self, row: slice) -> list[Document]: ...
    def __getitem__(self, row: int | slice) -> Document | list[Document]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        meta = self._meta[row]
        start, end = (int(v) for v in self._bytes[row])
        text = bytes(self._texts[start:end]).decode("utf-8")
        return Document(meta["id"], meta["title"], text, meta["sha256"], tuple(meta.get("pages", ())))

    def meta(self, row: int) -> dict[str, Any]:
        return self._meta[row]


class ScopedStats:
    """A stats.json's statistics per scope of collections: its ``collections`` entries combined once per scope
    (qa.centering.combine), the most recent ``SCOPES_CACHED`` scopes kept. Shared by a generation and a view
    (qa.stores.segments), so a scope is corrected the same whichever holds it."""

    def __init__(self, stats: dict[str, Any] | None) -> None:
        self.stats = stats or {}
        self._by_scope: dict[frozenset[str], centering.Stats | None] = {}

    @cached_property
    def whole(self) -> centering.Stats | None:
        """The whole corpus's statistics (None: none were written)."""
        if "centering" not in self.stats:
            return None
        return centering.Stats.from_json(json.dumps(self.stats["centering"]))

    def of(self, scope: frozenset[str] | None) -> centering.Stats | None:
        """The statistics of the rows of ``scope`` (None: every collection). Statistics written before
        collections had their own give the whole corpus's."""
        if scope is None:
            return self.whole
        if scope not in self._by_scope:
            per = self.stats.get("collections")
            whole = self.whole
            if per is None or whole is None:
                found = whole
            else:
                parts = [centering.Stats.from_json(json.dumps(per[name])) for name in sorted(scope) if name in per]
                found = centering.combine(parts, whole.dim, shrink=whole.shrink)
            if len(self._by_scope) >= SCOPES_CACHED:
                self._by_scope.pop(next(iter(self._by_scope)))  # the oldest: scopes are few in practice
            self._by_scope[scope] = found
        return self._by_scope[scope]


@dataclass
class IndexData:
    """A generation: its manifest, arrays (``ARRAYS``, usually memory-mapped) and FAISS index."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray | ArrayFile]  # ArrayFile: read by slices (qa.stores.local.READ_BY_SLICE)
    index: Any
    by_id: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] | None = None  # stats.json: {"centering": the rows' per-language sums and counts}
    name: str = ""  # the generation's folder in the index folder ("" for one never written)

    def __post_init__(self) -> None:
        self.documents = Documents(list(self.manifest["documents"].values()), self.arrays["texts"],
                                   self.arrays["doc_bytes"])  # fmt: skip
        self.by_id = {meta["id"]: row for row, meta in enumerate(self.manifest["documents"].values())}
        self._rows_by_language: dict[str, np.ndarray] = {}
        self._rows_by_scope: dict[tuple[str | None, frozenset[str]], np.ndarray | None] = {}
        vector_index.configure(self.index, self.search_info)

    @property
    def search_info(self) -> dict[str, Any]:
        return self.manifest.get("search_index", {"kind": "flat"})

    @property
    def sequence(self) -> int:
        """The commit's number in its index folder (qa.stores.local_writer): a server swaps only forward."""
        return int(self.manifest.get("sequence", 0))

    @property
    def num_documents(self) -> int:
        return len(self.by_id)

    @property
    def num_chunks(self) -> int:
        return len(self.arrays["chunks"])

    @property
    def dim(self) -> int:
        return int(self.manifest["embedder"]["dim"])

    def document(self, doc_id: str) -> Document | None:
        row = self.by_id.get(doc_id)
        return None if row is None else self.documents[row]

    def document_shas(self) -> dict[str, str]:
        """Document id -> the sha256 of the text it was indexed from (what a writer compares a file with)."""
        return dict(self._shas)

    def sha_table(self) -> Mapping[str, str]:
        """document_shas without the copy: read-only, for a writer that only looks documents up (a commit
        costs what it changes, not a pass over every document)."""
        return MappingProxyType(self._shas)

    @cached_property
    def _shas(self) -> dict[str, str]:
        return {doc_id: meta["sha256"] for doc_id, meta in self.manifest["documents"].items()}

    def document_ids(self, collections: Scope = None) -> list[str]:
        """Every document id in id order (of ``collections`` when given), from the manifest: no text is read."""
        ids = list(self.by_id)
        return ids if collections is None else [doc_id for doc_id in ids if colls.of(doc_id) in collections]

    def collection_counts(self) -> dict[str, int]:
        """Collection -> how many documents it holds."""
        counts: dict[str, int] = {}
        for doc_id in self.by_id:
            name = colls.of(doc_id)
            counts[name] = counts.get(name, 0) + 1
        return counts

    def search(
        self, queries: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by inner product (cosine: all vectors are normalized), of one language if given,
        of documents in ``collections`` if given (selected inside the search: qa.vector_index)."""
        # approximate kinds re-score their candidates against the stored rows (read by pread once loaded)
        rows = self._selected_rows(language, collections)
        return vector_index.search(self.index, self.search_info, self.arrays.get("chunk_rows"), queries, k, rows)

    def search_hits(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Hit]:
        """The k chunks closest to one query vector as embedded, best first (qa.ranking corrects them)."""
        scores, rows = self.search(query[None, :], k, language, collections)
        return [self.hit(int(row), float(score)) for score, row in zip(scores[0], rows[0]) if row >= 0]

    def search_rows(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Scored]:
        scores, rows = self.search(query[None, :], k, language, collections)
        found = rows[0][rows[0] >= 0]
        vectors = self.raw_chunk_vectors(found)
        table, codes = self.manifest["languages"], self.arrays["chunk_languages"]
        return [
            Scored(int(row), float(score), table[int(codes[row])], vector, int(row))
            for row, score, vector in zip(found, scores[0], vectors)
        ]

    def search_groups(
        self, query: np.ndarray, wanted: Mapping[str | None, int], collections: Scope = None
    ) -> dict[str | None, list[Scored]]:
        return {group: self.search_rows(query, k, group, collections) for group, k in wanted.items()}

    def hits(self, rows: list[Scored]) -> list[Hit]:
        return [self.hit(int(row.ref), row.score) for row in rows]

    def language_stats(self, collections: Scope = None) -> centering.Stats | None:
        """The rows' per-language statistics, written with the generation (None: a generation without them);
        of the rows of ``collections`` when given. A generation written before collections had statistics
        of their own gives the whole corpus's."""
        return self._scoped_stats.of(self._narrowed(collections))

    @cached_property
    def _scoped_stats(self) -> ScopedStats:
        return ScopedStats(self.stats)

    @property
    def header(self) -> dict[str, Any]:
        """The manifest's entries that describe how it was built (embedder, chunking, sequence)."""
        return self.manifest

    def document_entry(self, doc_id: str) -> dict[str, Any]:
        """A document's manifest entry (title, pages, chunks, ``indexed_at``): what listing it reads, no text."""
        entry = dict(self.manifest["documents"][doc_id])
        entry["indexed_at"] = entry.get("indexed_at") or self.manifest.get("built_at")
        return entry

    def collection_sizes(self) -> dict[str, tuple[int, int]]:
        """Collection -> (documents, chunks) it holds (for /metrics)."""
        per_doc = np.bincount(np.asarray(self.chunk_docs, dtype=np.int64), minlength=len(self.by_id))
        sizes: dict[str, tuple[int, int]] = {}
        for doc_id, row in self.by_id.items():
            docs, chunks = sizes.get(colls.of(doc_id), (0, 0))
            sizes[colls.of(doc_id)] = (docs + 1, chunks + int(per_doc[row]))
        return sizes

    @cached_property
    def _chunk_collections(self) -> tuple[np.ndarray, dict[str, int]]:
        """Each chunk row's collection as a code into the table returned with it (derived from document ids)."""
        table: dict[str, int] = {}
        doc_codes = np.array([table.setdefault(colls.of(doc_id), len(table)) for doc_id in self.by_id], np.int32)
        doc_rows = np.asarray(self.arrays["chunks"][:, 0]) if self.num_chunks else np.empty(0, np.int32)
        return (doc_codes[doc_rows] if len(doc_codes) else np.empty(0, np.int32)), table

    def _narrowed(self, collections: Scope) -> frozenset[str] | None:
        """The collections of this generation inside ``collections``; None where that is all of them."""
        if collections is None:
            return None
        table = self._chunk_collections[1]
        present = frozenset(name for name in collections if name in table)
        return None if present == frozenset(table) else present

    def _selected_rows(self, language: str | None, collections: Scope) -> np.ndarray | None:
        """The rows a search may return (None: every row): one language's, inside a scope's, or both."""
        scope = self._narrowed(collections)
        if scope is None:
            return None if language is None else self._language_rows(language)
        key = (language, scope)
        if key not in self._rows_by_scope:
            codes, table = self._chunk_collections
            rows = np.flatnonzero(np.isin(codes, [table[name] for name in scope]))
            if language is not None:
                rows = np.intersect1d(rows, self._language_rows(language), assume_unique=True)
            if len(self._rows_by_scope) >= SCOPES_CACHED:
                self._rows_by_scope.pop(next(iter(self._rows_by_scope)))  # the oldest: scopes are few in practice
            self._rows_by_scope[key] = rows
        return self._rows_by_scope[key]

    def _language_rows(self, language: str) -> np.ndarray:
        """The chunk rows of one language (cached per language: a handful per corpus)."""
        rows = self._rows_by_language.get(language)
        if rows is None:
            table = self.manifest["languages"]
            codes = np.asarray(self.arrays["chunk_languages"])
            rows = np.flatnonzero(codes == table.index(language)) if language in table else np.empty(0, np.int64)
            self._rows_by_language[language] = rows
        return rows

    def hit(self, row: int, score: float) -> Hit:
        a = self.arrays
        doc_row, start, end, first, last = (int(v) for v in a["chunks"][row])
        b0, b1 = (int(v) for v in a["chunk_bytes"][row])
        text = bytes(a["texts"][b0:b1]).decode("utf-8")
        meta = self.documents.meta(doc_row)
        spans = [Span(int(s), int(e), text[int(s) - start : int(e) - start]) for s, e in a["sentences"][first:last]]
        alone = enc.decode_rows(a["sentence_rows"][first:last], self.dim)
        return Hit(
            score=score,
            chunk=Chunk(meta["id"], start, end, text),
            title=meta["title"],
            sentences=spans,
            sentence_vectors=alone,
            context_vectors=self._contexts(first, last, alone),
            sparse=self._sparse(row),
            pages=tuple(meta.get("pages", ())),
            language=self.manifest["languages"][int(a["chunk_languages"][row])],
            vector=self.raw_chunk_vectors(np.array([row]))[0],
        )

    def _contexts(self, first: int, last: int, alone: np.ndarray) -> np.ndarray:
        refs = np.asarray(self.arrays["contexts"][first:last])
        if (refs < 0).all():
            return alone
        out = alone.copy()
        own = np.flatnonzero(refs >= 0)
        out[own] = enc.decode_rows(self.arrays["context_rows"][refs[own]], self.dim)
        return out

    def _sparse(self, row: int) -> np.ndarray | None:
        if not self.manifest["embedder"].get("sparse"):
            return None
        a = self.arrays
        return enc.decode_sparse(a["sparse_ptr"], a["sparse_ids"], a["sparse_weights"], row)

    def raw_chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        """Chunk vectors as embedded: the approximate kinds' float16 rows, or decoded from a flat index."""
        if "chunk_rows" in self.arrays:
            return np.asarray(self.arrays["chunk_rows"][rows], dtype=np.float32)
        return np.stack([self.index.reconstruct(int(r)) for r in rows]) if len(rows) else np.empty((0, self.dim))

    def chunk_range(self, doc_id: str) -> tuple[int, int]:
        """The document's chunk rows, ``start:end`` (chunks are stored in document order)."""
        row = self.by_id[doc_id]
        start, end = np.searchsorted(self.chunk_docs, [row, row + 1])
        return int(start), int(end)

    @cached_property
    def chunk_docs(self) -> np.ndarray:
        """Each chunk's document row (ascending)."""
        return np.ascontiguousarray(self.arrays["chunks"][:, 0])

    def document_rows(self, doc_id: str) -> DocRows:
        """A stored document's rows as the writer received them: an unchanged document is copied, not embedded."""
        row = self.by_id[doc_id]
        a = self.arrays
        chunk_rows = np.arange(*self.chunk_range(doc_id))  # the cached column: a merge calls this per document
        doc = self.documents[row]
        if len(chunk_rows) == 0:
            empty = np.empty((0, self.dim), np.float32)
            return DocRows(doc, [], [], empty, empty, empty, np.empty((0, 2 * enc.SPARSE_K * self._has_sparse)))
        first, last = int(a["chunks"][chunk_rows[0], 3]), int(a["chunks"][chunk_rows[-1], 4])
        chunks = [(int(c[1]), int(c[2]), int(c[3]) - first, int(c[4]) - first) for c in a["chunks"][chunk_rows]]
        alone = enc.decode_rows(a["sentence_rows"][first:last], self.dim)
        width = 2 * enc.SPARSE_K * self._has_sparse
        sparse = (
            np.stack([self._sparse(int(r)) for r in chunk_rows]) if self._has_sparse else np.empty((len(chunks), width))
        )
        return DocRows(
            doc,
            chunks,
            [(int(s), int(e)) for s, e in a["sentences"][first:last]],
            self.raw_chunk_vectors(chunk_rows),
            alone,
            self._contexts(first, last, alone),
            sparse.astype(np.float32),
            tuple(self.manifest["languages"][int(c)] for c in a["chunk_languages"][chunk_rows]),
        )

    def dense_rows(self) -> dict[str, np.ndarray]:
        """Every row decoded to float32, for analysis scripts (bench/): chunk, sentence and context vectors,
        latent terms, and the document row of each chunk and sentence. Meant for small corpora."""
        a = self.arrays
        n, m = self.num_chunks, len(a["sentences"])
        sentence_vectors = enc.decode_rows(a["sentence_rows"], self.dim)
        sentence_chunk = np.repeat(np.arange(n), a["chunks"][:, 4] - a["chunks"][:, 3])
        sparse = [self._sparse(r) for r in range(n)] if self._has_sparse else []
        return {
            "vectors": self.raw_chunk_vectors(np.arange(n)),
            "sentence_vectors": sentence_vectors,
            "context_vectors": self._contexts(0, m, sentence_vectors),
            "sparse": np.stack(sparse) if sparse else np.empty((n, 0), np.float32),
            "chunk_doc": np.asarray(a["chunks"][:, 0]),
            "sentence_doc": np.asarray(a["chunks"][sentence_chunk, 0]),
        }

    @property
    def _has_sparse(self) -> int:
        return 1 if self.manifest["embedder"].get("sparse") else 0


def _language_codes(documents: list[DocRows]) -> tuple[np.ndarray, list[str]]:
    """Each chunk's language (qa.stores.base.chunk_languages), as small codes into a table kept in the manifest."""
    table = [""]
    codes = []
    for rows in documents:
        for language in chunk_languages(rows):
            if language not in table:
                table.append(language)
            codes.append(table.index(language))
    return np.array(codes, np.uint8), table


def _collection_stats(documents: list[DocRows], raw: np.ndarray, row_languages: list[str]) -> dict[str, Any]:
    """Per-language statistics of each collection's rows (qa.centering), for searches inside collections."""
    table: dict[str, int] = {}
    codes = [table.setdefault(colls.of(r.doc.id), len(table)) for r in documents]
    owner = np.repeat(np.array(codes, np.int64), [len(r.chunks) for r in documents]) if documents else np.empty(0)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(table) + 1))
    found: dict[str, Any] = {}
    for name, code in sorted(table.items()):
        picked = order[bounds[code] : bounds[code + 1]]
        part = centering.fit(raw[picked], [row_languages[i] for i in picked])
        found[name] = json.loads(part.to_json())
    return found


def rows_arrays(
    header: dict[str, Any], documents: list[DocRows]
) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """The arrays of a generation holding ``documents`` (in the order given), without its FAISS index and
    ``chunk_rows``: also the chunk vectors as embedded (float32) and the table of ``chunk_languages``.
    ``assemble`` builds a whole generation from them; qa.stores.streamed appends them batch by batch."""
    dim = int(header["embedder"]["dim"])
    fine = header["embedder"].get("fine")
    texts = [r.doc.text.encode("utf-8") for r in documents]
    doc_starts = np.cumsum([0, *map(len, texts)])
    chunks, chunk_bytes, sentences, contexts = [], [], [], []
    context_rows = []
    for doc_row, rows in enumerate(documents):
        offset = len(sentences)
        base = int(doc_starts[doc_row])
        at = utf8_offsets(rows.doc.text, (o for s, e, _, _ in rows.chunks for o in (s, e)))
        for s, e, a, b in rows.chunks:
            chunks.append((doc_row, s, e, offset + a, offset + b))
            chunk_bytes.append((base + at[s], base + at[e]))
        sentences.extend(rows.sentences)
        for i in range(len(rows.sentences)):
            if np.array_equal(rows.context_vectors[i], rows.sentence_vectors[i]):
                contexts.append(-1)
            else:
                contexts.append(len(context_rows))
                context_rows.append(rows.context_vectors[i])

    def stack(name: str, width: int = dim) -> np.ndarray:
        parts = [getattr(r, name) for r in documents if len(getattr(r, name))]
        return np.vstack(parts).astype(np.float32) if parts else np.empty((0, width), np.float32)

    raw = np.ascontiguousarray(stack("vectors"), np.float32)
    languages, table = _language_codes(documents)
    ptr, ids, weights = enc.encode_sparse(stack("sparse", header["embedder"]["sparse"]))
    arrays = {
        "texts": np.frombuffer(b"".join(texts), np.uint8),
        "doc_bytes": np.stack([doc_starts[:-1], doc_starts[1:]], axis=1).astype(np.int64).reshape(-1, 2),
        "chunks": np.array(chunks, np.int32).reshape(-1, 5),
        "chunk_bytes": np.array(chunk_bytes, np.int64).reshape(-1, 2),
        "chunk_languages": languages,
        "sentences": np.array(sentences, np.int32).reshape(-1, 2),
        "sentence_rows": enc.encode_rows(stack("sentence_vectors"), fine),
        "contexts": np.array(contexts, np.int32),
        "context_rows": enc.encode_rows(np.array(context_rows, np.float32).reshape(-1, dim), fine),
        "sparse_ptr": ptr,
        "sparse_ids": ids,
        "sparse_weights": weights,
    }
    return arrays, raw, table


def document_entries(documents: list[DocRows]) -> dict[str, dict[str, Any]]:
    """The manifest's ``documents``: what listing a document reads without its rows."""
    return {
        r.doc.id: {"id": r.doc.id, "sha256": r.doc.sha256, "title": r.doc.title, "chunks": len(r.chunks),
                   "pages": list(r.doc.pages)}
        for r in documents
    }  # fmt: skip


def assemble(
    header: dict[str, Any], documents: list[DocRows], index_kind: str = "auto"
) -> tuple[dict[str, Any], dict[str, np.ndarray], Any, dict[str, Any]]:
    """A new generation from documents' rows (in the order given): manifest, arrays, FAISS index and the
    rows' per-language statistics (stats.json), which the ranking stage corrects hits with."""
    arrays, raw, table = rows_arrays(header, documents)
    languages = arrays["chunk_languages"]
    index, info = vector_index.build(raw, index_kind)
    # the statistics of the rows as stored, as every later change adds and subtracts them (qa.stores.segments):
    # then they depend on what is stored, never on which commit read which row as embedded
    stored = vector_index.stored_rows(index, info, raw)
    row_languages = [table[int(c)] for c in languages]
    stats = {
        "centering": json.loads(centering.fit(stored, row_languages).to_json()),
        "collections": _collection_stats(documents, stored, row_languages),
    }
    if info["kind"] != "flat":
        arrays["chunk_rows"] = raw.astype(np.float16)
    manifest = dict(
        header,
        documents=document_entries(documents),
        languages=table,
        search_index=info,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return manifest, arrays, index, stats
