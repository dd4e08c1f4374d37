"""What /metrics reads at scrape time from the live service: the corpus by collection, and the re-indexer.

Collected when scraped rather than counted as things happen: the index is swapped whole by every build, so
its counts are read from the generation that serves now, once per generation (a FAISS generation never
changes; Milvus is asked at each scrape, since other replicas write to it).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from qa import collections
from qa.live import Reindexer

ByCollection = dict[str, tuple[int, int | None]]  # collection -> (documents, chunks; None: not known)


def local_counts(index: Any) -> ByCollection | None:
    """Documents and chunks of each collection in a local generation, exactly (each chunk's document row is
    in memory); None for a store that keeps no such table (Milvus)."""
    by_id: dict[str, int] | None = getattr(index, "by_id", None)
    arrays: dict[str, Any] | None = getattr(index, "arrays", None)
    if by_id is None or arrays is None or "chunks" not in arrays:
        return None
    per_doc = np.bincount(np.asarray(arrays["chunks"][:, 0], dtype=np.int64), minlength=len(by_id))
    docs: Counter[str] = Counter()
    chunks: Counter[str] = Counter()
    for doc_id, row in by_id.items():
        name = collections.of(doc_id)
        docs[name] += 1
        chunks[name] += int(per_doc[row])
    return {name: (docs[name], chunks[name]) for name in docs}


def store_counts(index: Any, documents: dict[str, int]) -> ByCollection:
    """Chunks of each collection from the statistics a shared store keeps current with every write (one small
    query per collection); ``documents``: the library's per-collection document counts."""
    stats = getattr(index, "language_stats", None)
    counts: ByCollection = {}
    for name, docs in documents.items():
        found = stats(frozenset({name})) if stats is not None else None
        counts[name] = (docs, found.total if found is not None else None)
    return counts


class CorpusCollector:
    """``qa_documents`` and ``qa_chunks`` by collection, from the index that serves when scraped.

    ``documents``: the library's per-collection document counts (``Library.collections``), asked where no local
    generation is at hand; a local generation is counted once, chunks included, since it never changes.
    """

    def __init__(self, index: Callable[[], Any], documents: Callable[[], dict[str, int]]) -> None:
        self.index = index
        self.documents = documents
        self._seen: tuple[weakref.ref[Any], ByCollection] | None = None  # the last local generation's counts

    def collect(self) -> Iterator[Metric]:
        documents = GaugeMetricFamily("qa_documents", "Documents in the index, by collection.", labels=["collection"])
        chunks = GaugeMetricFamily("qa_chunks", "Passages in the index, by collection.", labels=["collection"])
        for name, (docs, passages) in sorted(self._counts().items()):
            documents.add_metric([name], docs)
            if passages is not None:
                chunks.add_metric([name], passages)
        yield documents
        yield chunks

    def _counts(self) -> ByCollection:
        index = self.index()
        if index is None:
            return {}
        if self._seen is not None and self._seen[0]() is index:
            return self._seen[1]
        counts = local_counts(index)
        if counts is None:
            return store_counts(index, self.documents())
        self._seen = (weakref.ref(index), counts)
        return counts


class IndexingCollector:
    """The build in progress, builds and files refused since start, and the encoder's throughput."""

    def __init__(self, reindexer: Reindexer) -> None:
        self.reindexer = reindexer

    def collect(self) -> Iterator[Metric]:
        progress = self.reindexer.progress() or {}
        totals = self.reindexer.totals()
        meter = self.reindexer.meter
        yield GaugeMetricFamily("qa_indexing_in_progress", "1 while a build runs, else 0.", value=1 if progress else 0)
        yield GaugeMetricFamily(
            "qa_indexing_files_done", "Files looked at so far by the build in progress (0 when none runs).",
            value=progress.get("files_done") or 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "qa_indexing_files_total", "Files the build in progress looks at (0 until listed, or when none runs).",
            value=progress.get("files_total") or 0,
        )  # fmt: skip
        builds = CounterMetricFamily("qa_index_builds", "Builds finished since start, by outcome.", labels=["outcome"])
        builds.add_metric(["ok"], totals.builds_ok)
        builds.add_metric(["failed"], totals.builds_failed)
        yield builds
        yield CounterMetricFamily(
            "qa_index_failed_documents", "Files refused by builds since start (each build counts its own).",
            value=totals.documents_failed,
        )  # fmt: skip
        yield CounterMetricFamily("qa_encoder_texts", "Texts the model encoded while indexing.", value=meter.texts)
        yield CounterMetricFamily(
            "qa_encoder_characters", "Characters of the texts the model encoded while indexing; per second: "
            "rate(qa_encoder_characters_total) / rate(qa_encoder_seconds_total).", value=meter.characters,
        )  # fmt: skip
        yield CounterMetricFamily(
            "qa_encoder_seconds", "Seconds the model spent encoding while indexing.", value=meter.seconds
        )
