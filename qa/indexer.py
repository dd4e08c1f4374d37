"""seeds/ -> documents -> chunks and sentences -> vectors -> a new index generation, incrementally.

Unchanged documents (same id and content hash) keep their rows and vectors; changed ones are re-chunked
and only texts never embedded before are sent to the model: a persistent cache keyed by embedder and
text hash (``index/cache/``, see qa.embed_cache) is looked up first. A different embedder or chunking
rebuilds the index (the cache still serves the texts it knows).
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa import loader, store
from qa.chunking import ChunkingParams, chunk_document, make_splitter
from qa.config import Settings
from qa.embed_cache import EmbeddingCache, text_key
from qa.embedding import SPARSE_K, Embedder, make_embedder, sparse_encoder
from qa.errors import IndexCorrupt, IndexMissing
from qa.hashing import file_sha256
from qa.highlight import is_negated
from qa.loader import Failure
from qa.models import Document
from qa.sentences import split_sentences

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (file id, files done, files total)
FLUSH_TEXTS = 512  # texts planned before the model runs: many files share full, length-sorted batches
CACHE_DIR = "cache"  # under index_dir, beside the generations (never garbage-collected with them)


@dataclass
class IndexReport:
    """What `qa index` prints: which files changed, which failed and why, and what it cost."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    embedded: int = 0  # texts actually sent to the model (cache misses)
    rebuilt: bool = False  # full rebuild forced (new embedder/chunking, or no usable previous index)
    written: bool = False  # a new generation was swapped in
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class _Plan:
    """A document chunked and split, waiting for its vectors."""

    doc: Document
    chunks: list[tuple[int, int, int, int]]
    sentences: list[tuple[int, int]]
    chunk_texts: list[str]
    sentence_texts: list[str]
    contexts: list[str]

    @property
    def size(self) -> int:
        return len(self.chunk_texts) + len(self.sentence_texts) + len(self.contexts)


@dataclass
class _DocRows:
    doc: Document
    chunks: list[tuple[int, int, int, int]]  # start, end, first sentence (relative), sentence end (relative)
    sentences: list[tuple[int, int]]
    vectors: np.ndarray
    sentence_vectors: np.ndarray
    context_vectors: np.ndarray
    sparse: np.ndarray  # (len(chunks), 2 * SPARSE_K) latent terms, or (len(chunks), 0) for a dense-only model


def sparse_width(embedder: Embedder) -> int:
    """Columns of a chunk's sparse row: ids then weights, or 0 when the model has no sparse head."""
    return 2 * SPARSE_K if sparse_encoder(embedder) is not None else 0


def manifest_header(embedder: Embedder, params: ChunkingParams) -> dict:
    return {
        "embedder": {"name": embedder.name, "dim": embedder.dim, "sparse": sparse_width(embedder)},
        "chunking": {"size": params.size, "overlap": params.overlap, "splitter": "recursive-sentence-v1"},
    }


def chunking_params(settings: Settings) -> ChunkingParams:
    return ChunkingParams(settings.chunk_size, settings.chunk_overlap)


@contextmanager
def _exclusive(index_dir: Path) -> Iterator[None]:
    """One builder at a time per index folder (a second `qa index` waits)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    live: store.SearchIndex | None = None,
) -> tuple[IndexReport, store.SearchIndex | None]:
    """Bring the index in line with the seeds folder; returns the report and the live data (None if empty).

    ``live`` is the index a running server already holds: when it was built with the same embedder and
    chunking it serves as the previous generation, instead of loading (and checksumming) it from disk again.
    """
    if settings.store == "milvus":  # the scale-out backend: same rules, state kept in Milvus
        from qa import milvus_store

        return milvus_store.build_index(settings, embedder=embedder, rebuild=rebuild, progress=progress)
    started = time.perf_counter()
    embedder = embedder or make_embedder(settings.embedder, settings.device)
    params = chunking_params(settings)
    header = manifest_header(embedder, params)
    report = IndexReport()
    with _exclusive(settings.index_dir):
        previous = None if rebuild else _reusable(live, header) or _load_compatible(settings.index_dir, header)
        report.rebuilt = previous is None
        old_rows = {doc.id: row for row, doc in enumerate(previous.documents)} if previous else {}
        paths = loader.discover(settings.seeds_dir)
        cache = EmbeddingCache(settings.index_dir / CACHE_DIR, embedder.name, embedder.dim)
        builder = _Builder(embedder, params, settings.batch_size, previous, cache, read_cache=not rebuild)
        slots: list[_DocRows | None] = []  # in discovery order; changed documents are filled in by flush()
        pending: list[tuple[int, _Plan, bool]] = []  # (slot, plan, was indexed before)
        seen: set[str] = set()

        def flush() -> None:
            """Embed the pending documents together: full batches even when files are small."""
            plans = [plan for _, plan, _ in pending]
            try:
                rows = builder.finish(plans)
            except Exception as exc:  # noqa: BLE001 - the model failed on this group: report, keep the rest
                report.failed.extend(Failure(plan.doc.id, f"{type(exc).__name__}: {exc}") for plan in plans)
            else:
                for (slot, plan, existed), doc_rows in zip(pending, rows):
                    slots[slot] = doc_rows
                    (report.updated if existed else report.added).append(plan.doc.id)
            pending.clear()

        for done, path in enumerate(paths, 1):
            doc_id = loader.doc_id(settings.seeds_dir, path)
            seen.add(doc_id)
            try:
                sha = file_sha256(loader.check_source(settings.seeds_dir, path))
                old = old_rows.get(doc_id)
                if previous is not None and old is not None and previous.documents[old].sha256 == sha:
                    slots.append(builder.reuse(old))
                    report.unchanged.append(doc_id)
                else:
                    doc = loader.load_document(settings.seeds_dir, path, sha)
                    pending.append((len(slots), builder.plan(doc), old is not None))
                    slots.append(None)
                    if sum(plan.size for _, plan, _ in pending) >= FLUSH_TEXTS:
                        flush()
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
                reason = str(exc) if isinstance(exc, loader.BadDocument) else f"{type(exc).__name__}: {exc}"
                report.failed.append(Failure(doc_id, reason))
            if progress:
                progress(doc_id, done, len(paths))
        flush()
        kept = [rows for rows in slots if rows is not None]
        report.added.sort()
        report.updated.sort()
        # a file indexed before that now fails is dropped from the index too
        report.removed = sorted((set(old_rows) - seen) | {f.path for f in report.failed if f.path in old_rows})
        cache.close()
        builder.close()
        report.embedded = builder.embedded
        report.documents = len(kept)
        report.chunks = sum(len(rows.chunks) for rows in kept)
        if previous is not None and not report.changed:
            report.seconds = time.perf_counter() - started
            return report, previous
        data = _assemble(header, kept, embedder.dim, settings.index_kind)
        store.save(settings.index_dir, data)
        report.written = True
    report.seconds = time.perf_counter() - started
    return report, data


def _compatible(manifest: dict, header: dict) -> bool:
    return manifest.get("embedder") == header["embedder"] and manifest.get("chunking") == header["chunking"]


def _reusable(live: store.SearchIndex | None, header: dict) -> store.IndexData | None:
    """The server's in-memory generation, when it is a local one built the same way."""
    return live if isinstance(live, store.IndexData) and _compatible(live.manifest, header) else None


def _load_compatible(index_dir: Path, header: dict) -> store.IndexData | None:
    try:
        manifest = store.read_manifest(index_dir)
        if manifest is None:
            return None
        if not _compatible(manifest, header):
            log.info("embedder or chunking changed: full rebuild")
            return None
        return store.load(index_dir)
    except (IndexCorrupt, IndexMissing) as exc:
        log.warning("previous index unusable, rebuilding: %s", exc)
        return None


class _Builder:
    """Chunks, splits and embeds documents, reusing every vector it can."""

    def __init__(
        self,
        embedder: Embedder,
        params: ChunkingParams,
        batch_size: int,
        previous: store.IndexData | None,
        cache: EmbeddingCache | None = None,
        *,
        read_cache: bool = True,
    ):
        self.embedder = embedder
        self.persistent = cache
        self.read_cache = read_cache
        self.params = params
        self.splitter = make_splitter(params)
        self.batch_size = batch_size
        self.previous = previous
        self.embedded = 0
        self.encode_sparse = sparse_encoder(embedder)
        self.sparse_width = sparse_width(embedder)
        self.sparse_cache = (
            EmbeddingCache(cache.path.parent, f"{embedder.name}#sparse{SPARSE_K}", self.sparse_width)
            if cache is not None and self.encode_sparse is not None
            else None
        )

    def reuse(self, row: int) -> _DocRows:
        prev = self.previous
        assert prev is not None
        doc_rows = prev.chunks[:, 0]  # sorted: a generation stores its chunks document by document
        chunk_rows = np.arange(np.searchsorted(doc_rows, row, "left"), np.searchsorted(doc_rows, row, "right"))
        if len(chunk_rows) == 0:
            empty = np.empty((0, prev.dim), np.float32)
            return _DocRows(prev.documents[row], [], [], empty, empty, empty, prev.sparse[:0])
        first_sentence = int(prev.chunks[chunk_rows[0], 3])
        last_sentence = int(prev.chunks[chunk_rows[-1], 4])
        chunks = [
            (int(c[1]), int(c[2]), int(c[3]) - first_sentence, int(c[4]) - first_sentence)
            for c in prev.chunks[chunk_rows]
        ]
        sentence_slice = slice(first_sentence, last_sentence)
        return _DocRows(
            prev.documents[row],
            chunks,
            [(int(s[1]), int(s[2])) for s in prev.sentences[sentence_slice]],
            prev.vectors[chunk_rows],
            prev.sentence_vectors[sentence_slice],
            prev.context_vectors[sentence_slice],
            prev.sparse[chunk_rows],
        )

    def embed(self, doc: Document) -> _DocRows:
        return self.finish([self.plan(doc)])[0]

    def plan(self, doc: Document) -> _Plan:
        """Chunks and sentences of a document, and the texts to embed for them."""
        chunks = chunk_document(doc, self.params, self.splitter)
        chunk_rows: list[tuple[int, int, int, int]] = []
        sentences: list[tuple[int, int]] = []
        contexts: list[str] = []
        for chunk in chunks:
            first = len(sentences)
            previous = ""
            for span in split_sentences(doc.text, chunk.start, chunk.end):
                sentences.append((span.start, span.end))
                # after a denial the sentence is also read after it ("X has no authority. Y commands."), the
                # only place highlight.best_sentence looks at that reading; elsewhere it is the sentence alone,
                # which the encoder deduplicates, so those readings cost nothing
                contexts.append(f"{previous} {span.text}" if previous and is_negated(previous) else span.text)
                previous = span.text
            chunk_rows.append((chunk.start, chunk.end, first, len(sentences)))
        return _Plan(
            doc, chunk_rows, sentences, [c.text for c in chunks], [doc.text[s:e] for s, e in sentences], contexts
        )

    def finish(self, plans: list[_Plan]) -> list[_DocRows]:
        """Embed every plan's texts in one pass (deduplicated, cached, batched), then split them back."""
        texts = [t for p in plans for t in (*p.chunk_texts, *p.sentence_texts, *p.contexts)]
        vectors = self._encode(texts, self.embedder.encode_passages, self.persistent, self.embedder.dim)
        chunk_texts = [t for p in plans for t in p.chunk_texts]
        sparse = np.empty((len(chunk_texts), 0), np.float32)
        if self.encode_sparse is not None:  # latent terms of the chunks only: they rerank passages
            sparse = self._encode(chunk_texts, self.encode_sparse, self.sparse_cache, self.sparse_width, count=False)
        rows, at, at_sparse = [], 0, 0
        for p in plans:
            n, m = len(p.chunk_texts), len(p.sentences)
            block = vectors[at : at + n + 2 * m]
            rows.append(
                _DocRows(
                    p.doc, p.chunks, p.sentences, block[:n], block[n : n + m], block[n + m :],
                    sparse[at_sparse : at_sparse + n],
                )
            )  # fmt: skip
            at += n + 2 * m
            at_sparse += n
        return rows

    def _encode(
        self,
        texts: list[str],
        encode: Callable[[list[str]], np.ndarray],
        cache: EmbeddingCache | None,
        width: int,
        *,
        count: bool = True,
    ) -> np.ndarray:
        if not texts:
            return np.empty((0, width), np.float32)
        keys = [text_key(t) for t in texts]
        # vectors already known to the persistent cache, which holds every text this embedder has embedded
        # (unchanged documents never get here: ``reuse`` copies their rows from the previous generation)
        found = cache.get_many(list(dict.fromkeys(keys))) if self.read_cache and cache is not None else {}
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        # similar lengths in one batch: a padded encoder then wastes little work on padding
        missing.sort(key=len)
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            fresh = [(text_key(text), vector) for text, vector in zip(batch, encode(batch))]
            found.update(fresh)
            if cache is not None:
                cache.put_many(fresh)
            if count:
                self.embedded += len(batch)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        if self.sparse_cache is not None:
            self.sparse_cache.close()


def _assemble(header: dict, kept: list[_DocRows], dim: int, index_kind: str = "auto") -> store.IndexData:
    chunks, sentences = [], []
    for doc_row, rows in enumerate(kept):
        offset = len(sentences)
        chunks.extend((doc_row, s, e, offset + a, offset + b) for s, e, a, b in rows.chunks)
        sentences.extend((doc_row, s, e) for s, e in rows.sentences)

    def stack(name: str, width: int = dim) -> np.ndarray:
        parts = [getattr(r, name) for r in kept if len(getattr(r, name))]
        return np.ascontiguousarray(np.vstack(parts) if parts else np.empty((0, width)), dtype=np.float32)

    documents = [r.doc for r in kept]
    manifest = dict(
        header,
        documents={
            d.id: {"sha256": d.sha256, "title": d.title, "chunks": len(r.chunks)} for d, r in zip(documents, kept)
        },
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return store.IndexData(
        manifest=manifest,
        documents=documents,
        chunks=np.array(chunks, dtype=np.int64).reshape(-1, 5),
        sentences=np.array(sentences, dtype=np.int64).reshape(-1, 3),
        vectors=stack("vectors"),
        sentence_vectors=stack("sentence_vectors"),
        context_vectors=stack("context_vectors"),
        sparse=stack("sparse", header["embedder"]["sparse"]),
        index_kind=index_kind,
    )
