"""The persisted index: documents, chunks, sentences, their vectors and a FAISS index, with a manifest.

Layout of ``index_dir``::

    CURRENT            name of the live generation (replaced atomically with os.replace)
    gen-<id>/          one complete, immutable generation
        manifest.json  format, embedder, dim, chunking, per-document hashes, per-file checksums
        documents.jsonl, chunks.npy, sentences.npy, vectors.npy, sentence_vectors.npy,
        context_vectors.npy, sparse.npy, index.faiss

A build writes a new generation beside the live one and only then points CURRENT at it, so a crash
at any moment leaves the previous generation loadable.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from qa import vector_index
from qa.errors import IndexCorrupt, IndexMissing
from qa.hashing import file_sha256
from qa.models import Chunk, Document, Span

FORMAT = 2  # 2: sparse.npy (latent terms of each chunk)
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
_ARRAYS = ("chunks", "sentences", "vectors", "sentence_vectors", "context_vectors", "sparse")
REBUILD_HINT = "run `qa index --rebuild` to build it again"

# One thread per search: a single query gains nothing from OpenMP and pays for its wake-ups
# (measured 5.4 ms with one thread vs 40 ms with two at 100k flat vectors).
faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with what the answerer needs to pick its answering sentence."""

    score: float
    chunk: Chunk
    title: str
    sentences: list[Span]
    sentence_vectors: np.ndarray  # (len(sentences), dim): each sentence alone
    context_vectors: np.ndarray  # (len(sentences), dim): each sentence read after a denial before it, else alone
    sparse: np.ndarray | None = None  # (2 * SPARSE_K,): the chunk's latent terms (qa.embedding.sparse_scores)


class SearchIndex(Protocol):
    """What the answerer reads; implemented by the local FAISS IndexData (and any scale-out backend)."""

    @property
    def num_documents(self) -> int: ...

    @property
    def num_chunks(self) -> int: ...

    def document(self, doc_id: str) -> Document | None: ...

    def search_hits(self, query: np.ndarray, k: int) -> list[Hit]: ...


@dataclass
class IndexData:
    """Everything a generation holds, in memory. Rows of ``chunks`` are FAISS ids."""

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
            sentences = self.chunk_sentences(int(row))
            hits.append(
                Hit(
                    score=float(score),
                    chunk=chunk,
                    title=self.documents[self.by_id[chunk.doc_id]].title,
                    sentences=[self.sentence(i) for i in sentences],
                    sentence_vectors=self.sentence_vectors[sentences.start : sentences.stop],
                    context_vectors=self.context_vectors[sentences.start : sentences.stop],
                    sparse=self.sparse[row] if self.sparse.shape[1] else None,
                )
            )
        return hits

    @property
    def dim(self) -> int:
        return int(self.manifest["embedder"]["dim"])

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


def build_faiss(vectors: np.ndarray) -> Any:
    """An exact index (kept for callers that want one regardless of size)."""
    return vector_index.build(vectors, "flat")[0]


def current_generation(index_dir: Path) -> Path | None:
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    return index_dir / name


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The live manifest, or None when there is no index yet."""
    gen = current_generation(index_dir)
    if gen is None:
        return None
    try:
        return json.loads((gen / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"the index manifest in {gen} cannot be read ({exc}); {REBUILD_HINT}") from exc


def load(index_dir: Path, *, verify: bool = True) -> IndexData:
    """Load the live generation; IndexMissing if none, IndexCorrupt if any file fails its checksum."""
    gen = current_generation(index_dir)
    if gen is None or not gen.is_dir():
        raise IndexMissing(f"no index in {index_dir}: run `qa index` to build it from the seeds folder")
    manifest = read_manifest(index_dir)
    assert manifest is not None
    if manifest.get("format") != FORMAT:
        raise IndexCorrupt(f"index format {manifest.get('format')} is not {FORMAT}; {REBUILD_HINT}")
    files = manifest.get("files", {})
    if verify:
        for name, expected in files.items():
            path = gen / name
            if not path.is_file() or file_sha256(path) != expected:
                raise IndexCorrupt(f"index file {path} is missing or damaged (checksum mismatch); {REBUILD_HINT}")
    try:
        with (gen / "documents.jsonl").open(encoding="utf-8") as handle:
            documents = [Document(**json.loads(line)) for line in handle]
        # memory-mapped: the FAISS index holds what search scans; these rows are read only for the hits
        # (and for re-use by the next build), so they cost page cache, not a second copy in memory
        arrays = {name: np.load(gen / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _ARRAYS}
        index = faiss.read_index(str(gen / "index.faiss"))
    except Exception as exc:  # any damage the checksums did not catch
        raise IndexCorrupt(f"index in {gen} cannot be read ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from exc
    if index.ntotal != len(arrays["chunks"]) or index.d != int(manifest["embedder"]["dim"]):
        raise IndexCorrupt(f"index in {gen} is inconsistent with its manifest; {REBUILD_HINT}")
    row_file = vector_index.RowFile(gen / "vectors.npy")
    return IndexData(manifest=manifest, documents=documents, index=index, row_file=row_file, **arrays)


def save(index_dir: Path, data: IndexData) -> Path:
    """Write a new generation beside the live one, fsync it, then switch CURRENT to it atomically."""
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = index_dir / f"gen-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = index_dir / f".tmp-{gen.name}"
    tmp.mkdir()
    try:
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as handle:
            for doc in data.documents:
                handle.write(json.dumps(doc.__dict__, ensure_ascii=False) + "\n")
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(data, name), allow_pickle=False)
        faiss.write_index(data.index, str(tmp / "index.faiss"))
        files = sorted(p.name for p in tmp.iterdir())
        manifest = dict(data.manifest, format=FORMAT, files={name: file_sha256(tmp / name) for name in files})
        _write_synced(tmp / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        for name in files:
            _fsync(tmp / name)
        os.replace(tmp, gen)
        _fsync(index_dir)
        pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        _write_synced(pointer_tmp, gen.name)
        os.replace(pointer_tmp, index_dir / CURRENT)
        _fsync(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    data.manifest = manifest
    _collect_garbage(index_dir, keep={gen.name})
    return gen


def _collect_garbage(index_dir: Path, keep: set[str]) -> None:
    """Remove old generations and leftovers of interrupted builds (never the live one)."""
    for path in index_dir.iterdir():
        if path.name in keep or not path.name.startswith(("gen-", ".tmp-gen-", f".{CURRENT}.")):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
