"""Documents -> the rows a store writes: chunks, sentences and their vectors, embedding each text at most once.

The one place where texts meet the model while indexing: ``plan`` splits a document, ``embed`` turns a
group of plans into ``DocRows`` (texts deduplicated across the group, looked up in the persistent cache,
the rest sent in length-sorted batches). A model that yields a chunk's vector, its sentences' vectors and
its latent terms from one pass replaces ``embed`` alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.chunking import ChunkingParams, chunk_document, make_splitter
from qa.embed_cache import EmbeddingCache, text_key
from qa.embedding import SPARSE_K, Embedder, sparse_encoder
from qa.encode_meter import EncodeMeter
from qa.models import Document
from qa.negation import is_negated
from qa.parts import one_pass, passage_parts
from qa.sentences import split_sentences
from qa.stores.base import DocRows


@dataclass
class Plan:
    """A document chunked and split, waiting for its vectors."""

    doc: Document
    chunks: list[tuple[int, int, int, int]]  # start, end, first sentence, sentence end
    sentences: list[tuple[int, int]]
    chunk_texts: list[str]
    sentence_texts: list[str]
    contexts: list[str]

    @property
    def size(self) -> int:
        return len(self.chunk_texts) + len(self.sentence_texts) + len(self.contexts)


def sparse_width(embedder: Embedder) -> int:
    """Columns of a chunk's sparse row: ids then weights, or 0 when the model has no sparse head."""
    return 2 * SPARSE_K if sparse_encoder(embedder) is not None else 0


class Builder:
    """Chunks, splits and embeds documents; a context manager that closes its caches."""

    def __init__(
        self,
        embedder: Embedder,
        params: ChunkingParams,
        batch_size: int,
        cache_dir: Path,
        *,
        read_cache: bool = True,
        meter: EncodeMeter | None = None,
    ) -> None:
        self.embedder = embedder
        self.meter = meter if meter is not None else EncodeMeter()  # every model call: texts, characters, time
        self.params = params
        self.splitter = make_splitter(params)
        self.batch_size = batch_size
        self.read_cache = read_cache
        self.embedded = 0  # texts actually sent to the model (cache misses)
        self.cache = EmbeddingCache(cache_dir, embedder.name, embedder.dim)
        self.encode_sparse = sparse_encoder(embedder)
        self.sparse_width = sparse_width(embedder)
        self.sparse_cache = (
            EmbeddingCache(cache_dir, f"{embedder.name}#sparse{SPARSE_K}", self.sparse_width)
            if self.encode_sparse is not None
            else None
        )
        # sentence vectors pooled from their chunk's pass depend on the chunk: cached under (chunk, span)
        self.one_pass = one_pass(embedder)
        late = self.one_pass and getattr(embedder, "late_chunking", False)
        self.late_cache = EmbeddingCache(cache_dir, f"{embedder.name}#late", embedder.dim) if late else None

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for cache in (self.cache, self.sparse_cache, self.late_cache):
            if cache is not None:
                cache.close()

    def plan(self, doc: Document) -> Plan:
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
        return Plan(
            doc, chunk_rows, sentences, [c.text for c in chunks], [doc.text[s:e] for s, e in sentences], contexts
        )

    def embed(self, plans: list[Plan]) -> list[DocRows]:
        """Embed every plan's texts in one pass (deduplicated, cached, batched), then split them back."""
        if self.one_pass:
            return self._embed_one_pass(plans)
        texts = [t for p in plans for t in (*p.chunk_texts, *p.sentence_texts, *p.contexts)]
        vectors = self._encode(texts, self.embedder.encode_passages, self.cache, self.embedder.dim)
        chunk_texts = [t for p in plans for t in p.chunk_texts]
        sparse = np.empty((len(chunk_texts), 0), np.float32)
        if self.encode_sparse is not None:  # latent terms of the chunks only: they rerank passages
            sparse = self._encode(chunk_texts, self.encode_sparse, self.sparse_cache, self.sparse_width, count=False)
        rows, at, at_sparse = [], 0, 0
        for p in plans:
            n, m = len(p.chunk_texts), len(p.sentences)
            block = vectors[at : at + n + 2 * m]
            rows.append(
                DocRows(
                    p.doc, p.chunks, p.sentences, block[:n], block[n : n + m], block[n + m :],
                    sparse[at_sparse : at_sparse + n],
                )
            )  # fmt: skip
            at += n + 2 * m
            at_sparse += n
        return rows

    def _embed_one_pass(self, plans: list[Plan]) -> list[DocRows]:
        """Each chunk read once for its vector and latent terms (qa.parts), its sentences as texts of their own.

        With a late-chunking embedder the sentences' vectors come from the chunk's pass too (cached under
        (chunk, span): they depend on the chunk); a sentence's context reading (after a denial) is still read
        on its own, elsewhere it is the sentence's own vector.
        """
        late = bool(getattr(self.embedder, "late_chunking", False))
        chunks = [
            (text, [(s - c[0], e - c[0]) for s, e in p.sentences[c[2] : c[3]]] if late else [])
            for p in plans
            for c, text in zip(p.chunks, p.chunk_texts)
        ]
        keys = [text_key(text) for text, _ in chunks]
        span_keys = [[text_key(f"{text}\x1f{s}:{e}") for s, e in spans] for text, spans in chunks]
        unique = list(dict.fromkeys(keys))
        found = self.cache.get_many(unique) if self.read_cache else {}
        found_sparse = self.sparse_cache.get_many(unique) if self.read_cache and self.sparse_cache else {}
        every_span = list(dict.fromkeys(k for ks in span_keys for k in ks))
        found_late = self.late_cache.get_many(every_span) if self.read_cache and self.late_cache else {}
        todo: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            known = key in found and (self.sparse_cache is None or key in found_sparse)
            if not (known and all(k in found_late for k in span_keys[i])):
                todo.setdefault(key, i)
        missing = sorted(todo.values(), key=lambda i: len(chunks[i][0]))  # similar lengths in one batch
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            texts = [chunks[i][0] for i in batch]
            started = time.perf_counter()
            parts = passage_parts(self.embedder, texts, [chunks[i][1] for i in batch])
            self.meter.add(texts, time.perf_counter() - started)
            fresh = {keys[i]: parts.vectors[j] for j, i in enumerate(batch)}
            found.update(fresh)
            self.cache.put_many(fresh.items())
            if late and self.late_cache is not None:
                fresh_late = {k: v for j, i in enumerate(batch) for k, v in zip(span_keys[i], parts.sentences[j])}
                found_late.update(fresh_late)
                self.late_cache.put_many(fresh_late.items())
            if self.sparse_cache is not None:
                fresh_sparse = {keys[i]: parts.sparse[j] for j, i in enumerate(batch)}
                found_sparse.update(fresh_sparse)
                self.sparse_cache.put_many(fresh_sparse.items())
            self.embedded += len(batch)
        dim = self.embedder.dim
        if late:  # only the context readings after a denial are texts of their own
            read = [(p, i) for p in plans for i, (c, t) in enumerate(zip(p.contexts, p.sentence_texts)) if c != t]
        else:
            read = [(p, i) for p in plans for i in range(len(p.sentences))]
        texts = [t for p, i in read for t in ((p.contexts[i],) if late else (p.sentence_texts[i], p.contexts[i]))]
        alone = self._encode(texts, self.embedder.encode_passages, self.cache, dim)
        rows, at, at_alone = [], 0, 0
        for p in plans:
            n, m = len(p.chunk_texts), len(p.sentences)
            vectors = np.array([found[k] for k in keys[at : at + n]], np.float32).reshape(n, dim)
            sparse = np.array([found_sparse[k] for k in keys[at : at + n]], np.float32).reshape(n, self.sparse_width)
            if late:
                sentence_vectors = np.array([found_late[k] for ks in span_keys[at : at + n] for k in ks], np.float32)
                sentence_vectors = sentence_vectors.reshape(m, dim)
                context_vectors = sentence_vectors.copy()
                for i, (c, t) in enumerate(zip(p.contexts, p.sentence_texts)):
                    if c != t:
                        context_vectors[i] = alone[at_alone]
                        at_alone += 1
            else:
                sentence_vectors, context_vectors = (
                    alone[at_alone : at_alone + 2 * m : 2],
                    alone[at_alone + 1 : at_alone + 2 * m : 2],
                )
                at_alone += 2 * m
            rows.append(DocRows(p.doc, p.chunks, p.sentences, vectors, sentence_vectors, context_vectors, sparse))
            at += n
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
        # (unchanged documents never get here: the store keeps their rows)
        found = cache.get_many(list(dict.fromkeys(keys))) if self.read_cache and cache is not None else {}
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        # similar lengths in one batch: a padded encoder then wastes little work on padding
        missing.sort(key=len)
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            started = time.perf_counter()
            encoded = encode(batch)
            self.meter.add(batch, time.perf_counter() - started)
            fresh = [(text_key(text), vector) for text, vector in zip(batch, encoded)]
            found.update(fresh)
            if cache is not None:
                cache.put_many(fresh)
            if count:
                self.embedded += len(batch)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
