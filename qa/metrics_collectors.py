"""What /metrics reads at scrape time from the live service: the corpus by collection, and the re-indexer.

Collected when scraped rather than counted as things happen: the index is swapped whole by every build, so
its counts are read from the generation that serves now, once per generation (a FAISS generation never
changes; Milvus is asked each time, since other replicas write to it).
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

ByCollection = dict[str, tuple[int, int | None]]  # collection -> (documents, chunks; None: not known cheaply)


def by_collection(index: Any) -> ByCollection:
    """Documents and chunks of each collection in ``index`` (qa.collections.of on each document id).

    A local generation knows each chunk's document row, so chunks are counted exactly; a store that keeps no
    such table in memory (Milvus) is asked for its document ids only, and its chunks go uncounted here.
    """
    by_id: dict[str, int] | None = getattr(index, "by_id", None)
    arrays: dict[str, Any] | None = getattr(index, "arrays", None)
    if by_id is not None and arrays is not None and "chunks" in arrays:
        per_doc = np.bincount(np.asarray(arrays["chunks"][:, 0], dtype=np.int64), minlength=len(by_id))
        docs: Counter[str] = Counter()
        chunks: Counter[str] = Counter()
        for doc_id, row in by_id.items():
            name = collections.of(doc_id)
            docs[name] += 1
            chunks[name] += int(per_doc[row])
        return {name: (docs[name], chunks[name]) for name in docs}
    ids = getattr(index, "document_ids", None)
    if ids is None:
        return {}
    return {name: (count, None) for name, count in Counter(collections.of(doc_id) for doc_id in ids()).items()}


class CorpusCollector:
    """``qa_documents`` and ``qa_chunks`` by collection, from the index that serves when scraped."""

    def __init__(self, index: Callable[[], Any]) -> None:
        self.index = index
        self._seen: tuple[weakref.ref[Any], ByCollection] | None = None  # the last generation and its counts

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
        counts = by_collection(index)
        if hasattr(index, "by_id"):  # a local generation never changes once built: count it once
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
