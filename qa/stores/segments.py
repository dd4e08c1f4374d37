"""A segmented view of the local store: a base generation, small segments written since, and dead rows.

A change to a large index writes only the changed documents' rows, as a small flat segment (a generation
of its own, qa.stores.faiss), and marks the rows they replace or delete dead in the layers before it (the
base and older segments). A view names its layers and, for each, the documents dead in it; it is committed
as one small manifest by the same atomic rename of CURRENT as a whole generation (qa.stores.local), so a
reader sees either the view before a change or the one after, never half of one.

Search runs over every layer with its dead rows excluded inside FAISS (an IDSelector), each layer giving
its own top k among live rows, and keeps the k best of them all: exactly the top k one merged index of
the live rows would give, scored the same (flat codes are copied unchanged between layers). Documents are
found in the newest layer that holds them live; every other copy of them is dead.

The per-language statistics the ranking stage corrects with (qa.centering), the whole corpus's and each
collection's (``ViewStats``), are the view's own, kept current by adding a segment's rows and subtracting the
dead ones (sums and counts), never by re-reading the base.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload

import numpy as np

from qa import centering, collections, vector_index
from qa.collections import Scope
from qa.models import Document
from qa.stores.base import DocRows, Hit, Scored
from qa.stores.faiss import IndexData, ScopedStats


@dataclass
class Layer:
    """One layer of a view: a generation read from its folder, and the documents dead in it."""

    data: IndexData
    dead_docs: frozenset[str] = frozenset()
    _live_by_language: dict[tuple[str | None, Scope], np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.data.name

    @cached_property
    def dead(self) -> np.ndarray:
        """The chunk rows of the dead documents, sorted (a document's rows are one run: qa.stores.faiss)."""
        runs = [self.data.chunk_range(doc_id) for doc_id in self.dead_docs if doc_id in self.data.by_id]
        rows = [np.arange(a, b) for a, b in runs if b > a]
        return np.sort(np.concatenate(rows)).astype(np.int64) if rows else np.empty(0, np.int64)

    @property
    def live_rows(self) -> int:
        return self.data.num_chunks - len(self.dead)

    def live_documents(self) -> list[str]:
        return [doc_id for doc_id in self.data.by_id if doc_id not in self.dead_docs]

    def _allowed(self, language: str | None, scope: Scope) -> np.ndarray:
        """The live rows of one language and/or of some collections (cached: a view's dead rows never change)."""
        key = (language, scope)
        rows = self._live_by_language.get(key)
        if rows is None:
            data = self.data
            keep = np.ones(data.num_chunks, bool)
            if language is not None:
                table = data.manifest["languages"]
                codes = np.asarray(data.arrays["chunk_languages"])
                keep &= codes == table.index(language) if language in table else False
            if scope is not None:
                inside = [row for doc_id, row in data.by_id.items() if collections.contains(scope, doc_id)]
                keep &= np.isin(data.chunk_docs, np.asarray(inside, np.int64))
            keep[self.dead] = False
            rows = np.flatnonzero(keep)
            self._live_by_language[key] = rows
        return rows

    def search(
        self, query: np.ndarray, k: int, language: str | None, scope: Scope = None
    ) -> tuple[np.ndarray, np.ndarray]:
        data = self.data
        rows = None if language is None and scope is None else self._allowed(language, scope)
        excluded = self.dead if len(self.dead) else None
        vectors = data.arrays.get("chunk_rows")
        scores, found = vector_index.search(data.index, data.search_info, vectors, query[None, :], k, rows, excluded)
        keep = found[0] >= 0
        return scores[0][keep], found[0][keep]


DEAD = -1  # SegmentedIndex's table: the newest copy of the document is dead


class SegmentedIndex:
    """A base generation and its segments searched as one index (the local store's ``SearchIndex``)."""

    def __init__(self, name: str, view: dict[str, Any], layers: list[Layer], stats: dict[str, Any] | None) -> None:
        self.name = name  # the folder of the view's manifest (what CURRENT names)
        self.view = view  # the view's own manifest: header, sequence, layers and their dead documents
        self.layers = layers
        self.stats = stats
        self._starts = np.cumsum([0, *(layer.data.num_chunks for layer in layers)])
        # document -> the segment holding its newest copy (DEAD: that copy is dead); a document not in it is
        # the base's, live unless dead there. Only the segments' documents are tabled: a view is opened at
        # every commit, and a table of the base's would cost a pass over every document each time.
        top: dict[str, int] = {}
        for position, layer in enumerate(layers[1:], 1):
            top.update(dict.fromkeys(layer.data.by_id, position))  # a later layer's copy wins
        for position, layer in enumerate(layers[1:], 1):
            for doc_id in layer.dead_docs:
                if top.get(doc_id) == position:
                    top[doc_id] = DEAD
        self._top = top
        base = layers[0]
        shadowed = sum(1 for doc_id in top if doc_id in base.data.by_id and doc_id not in base.dead_docs)
        dead_in_base = sum(1 for doc_id in base.dead_docs if doc_id in base.data.by_id)
        above = sum(1 for position in top.values() if position != DEAD)
        self._count = len(base.data.by_id) - dead_in_base - shadowed + above

    @property
    def sequence(self) -> int:
        return int(self.view.get("sequence", 0))

    @property
    def base(self) -> Layer:
        return self.layers[0]

    @property
    def segment_rows(self) -> int:
        """Live rows outside the base: what a merge would fold into it."""
        return sum(layer.live_rows for layer in self.layers[1:])

    @property
    def num_documents(self) -> int:
        return self._count

    @property
    def num_chunks(self) -> int:
        return sum(layer.live_rows for layer in self.layers)

    @property
    def dim(self) -> int:
        return self.base.data.dim

    def live_ids(self) -> Iterator[str]:
        """Every live document id, unordered (the base's table and the segments', nothing copied)."""
        base = self.base
        for doc_id in base.data.by_id:
            if doc_id not in self._top and doc_id not in base.dead_docs:
                yield doc_id
        yield from (doc_id for doc_id, position in self._top.items() if position != DEAD)

    def owner(self, doc_id: str) -> Layer | None:
        """The layer that holds the document's live rows."""
        position = self._top.get(doc_id)
        if position is not None:
            return None if position == DEAD else self.layers[position]
        base = self.base
        return base if doc_id in base.data.by_id and doc_id not in base.dead_docs else None

    def document_shas(self) -> dict[str, str]:
        """Live document id -> the sha256 of its text, each from the layer holding it (the base's table is
        read once per generation, then copied: a commit on a large base costs no pass over its manifest)."""
        found: dict[str, str] = {}
        for layer in self.layers:
            found.update(layer.data.document_shas())
        return {doc_id: found[doc_id] for doc_id in self.live_ids()}

    def sha_table(self) -> Mapping[str, str]:
        """document_shas without building it: each live document's sha looked up in the layer holding it
        when asked for, so a commit on a large base reads only the documents it names."""
        return _LiveShas(self)

    def document(self, doc_id: str) -> Document | None:
        layer = self.owner(doc_id)
        return None if layer is None else layer.data.document(doc_id)

    def document_rows(self, doc_id: str) -> DocRows:
        layer = self.owner(doc_id)
        if layer is None:
            raise KeyError(doc_id)
        return layer.data.document_rows(doc_id)

    @cached_property
    def documents(self) -> Sequence[Document]:
        """Every live document, sorted by id as a generation stores them (read when asked for)."""
        return _Documents(self, self._ids)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The view's manifest with each live document's entry, as a whole generation's reads."""
        entries = {}
        for doc_id in self._ids:
            entries[doc_id] = self.owner(doc_id).data.manifest["documents"][doc_id]  # type: ignore[union-attr]
        return dict(self.view, documents=entries)

    def search_rows(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Scored]:
        """The k live rows of the highest raw inner product over every layer: each layer's own top k among
        its live rows, then the best k of them all (an exact merge of exact per-layer results). Only rows of
        ``language`` and of documents in ``collections`` (qa.collections; None: every one) when given."""
        best: list[tuple[float, int, int, int]] = []  # score, id over the layers, layer, row
        for position, layer in enumerate(self.layers):
            scores, rows = layer.search(query, k, language, collections)
            start = int(self._starts[position])
            best += [(float(score), start + int(row), position, int(row)) for score, row in zip(scores, rows)]
        best.sort(key=lambda item: (-item[0], item[1]))
        found = []
        for score, ident, position, row in best[:k]:  # only the k kept are read back
            data = self.layers[position].data
            vector = data.raw_chunk_vectors(np.array([row]))[0]
            language_of = data.manifest["languages"][int(data.arrays["chunk_languages"][row])]
            found.append(Scored(ident, score, language_of, vector, (position, row)))
        return found

    def search_hits(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Hit]:
        return self.hits(self.search_rows(query, k, language, collections))

    def search_groups(
        self, query: np.ndarray, wanted: Mapping[str | None, int], collections: Scope = None
    ) -> dict[str | None, list[Scored]]:
        return {group: self.search_rows(query, k, group, collections) for group, k in wanted.items()}

    def hits(self, rows: list[Scored]) -> list[Hit]:
        return [self.layers[row.ref[0]].data.hit(row.ref[1], row.score) for row in rows]

    def search(self, queries: np.ndarray, k: int, language: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """IndexData.search's shape (scores, ids), the ids unique over the layers (benchmarks, recall)."""
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for i, query in enumerate(queries):
            rows = self.search_rows(query, k, language)
            scores[i, : len(rows)] = [row.score for row in rows]
            ids[i, : len(rows)] = [row.id for row in rows]
        return scores, ids

    def language_stats(self, collections: Scope = None) -> centering.Stats | None:
        """The view's statistics (kept by its commits), of the rows of ``collections`` when given: combined
        per scope and cached as a generation's are (qa.stores.faiss.ScopedStats)."""
        return self._scoped_stats.of(self._narrowed(collections))

    @cached_property
    def _scoped_stats(self) -> ScopedStats:
        return ScopedStats(self.stats)

    @cached_property
    def _collections(self) -> frozenset[str]:
        """The collections holding a live document."""
        return frozenset(collections.of(doc_id) for doc_id in self.live_ids())

    def _narrowed(self, scope: Scope) -> frozenset[str] | None:
        """The view's collections inside ``scope``; None where that is all of them (as IndexData narrows)."""
        if scope is None:
            return None
        present = frozenset(name for name in scope if name in self._collections)
        return None if present == self._collections else present

    @property
    def header(self) -> dict[str, Any]:
        """The view's entries that describe how it was built (embedder, chunking, sequence)."""
        return self.view

    def document_ids(self, scope: Scope = None) -> list[str]:
        """Every live document id in id order (of ``scope`` when given); no text and no manifest is copied."""
        ids = self._ids
        return list(ids) if scope is None else [doc_id for doc_id in ids if collections.contains(scope, doc_id)]

    @cached_property
    def _ids(self) -> list[str]:
        """Every live document id, sorted once per view (a view never changes)."""
        return sorted(self.live_ids())

    def document_entry(self, doc_id: str) -> dict[str, Any]:
        """A live document's manifest entry, from the layer holding it (KeyError: none does)."""
        layer = self.owner(doc_id)
        if layer is None:
            raise KeyError(doc_id)
        return layer.data.document_entry(doc_id)

    def collection_counts(self) -> dict[str, int]:
        """Collection -> how many live documents it holds."""
        return {name: docs for name, (docs, _) in self.collection_sizes().items()}

    def collection_sizes(self) -> dict[str, tuple[int, int]]:
        """Collection -> (live documents, their chunks) (for /metrics), from the layers' manifests."""
        sizes: dict[str, tuple[int, int]] = {}
        for doc_id in self.live_ids():
            chunks = int(self.document_entry(doc_id).get("chunks", 0))
            docs, rows = sizes.get(collections.of(doc_id), (0, 0))
            sizes[collections.of(doc_id)] = (docs + 1, rows + chunks)
        return sizes


@dataclass
class ViewStats:
    """A view's statistics (stats.json): the whole corpus's and each collection's, as sums and counts of the
    rows as stored, so a commit adds and subtracts documents' rows and gets what a rebuild would fit."""

    whole: centering.Stats
    per: dict[str, centering.Stats]

    @classmethod
    def read(cls, stats: dict[str, Any] | None) -> ViewStats | None:
        """From a generation's or view's stats.json; None where either part is missing (written before)."""
        if not stats or "centering" not in stats or "collections" not in stats:
            return None
        per = {name: centering.Stats.from_json(json.dumps(part)) for name, part in stats["collections"].items()}
        return cls(centering.Stats.from_json(json.dumps(stats["centering"])), per)

    def add(self, layer: Layer, doc_id: str, sign: int = 1) -> None:
        """Count a document's rows as ``layer`` stores them in (``sign=-1``: out) of both."""
        rows, languages = chunk_rows_of(layer, doc_id)
        if not len(rows):
            return
        self.whole.add(rows, languages, sign)
        name = collections.of(doc_id)
        part = self.per.setdefault(name, centering.Stats(dim=self.whole.dim, shrink=self.whole.shrink))
        part.add(rows, languages, sign)
        if not part.counts:  # a collection without rows has no statistics, as in a rebuild
            del self.per[name]

    def remove(self, layer: Layer, doc_id: str) -> None:
        self.add(layer, doc_id, sign=-1)

    def to_json(self) -> dict[str, Any]:
        return {
            "centering": json.loads(self.whole.to_json()),
            "collections": {name: json.loads(part.to_json()) for name, part in sorted(self.per.items())},
        }


class _LiveShas(Mapping[str, str]):
    """A view's live document id -> sha256, read through its owner table (nothing copied)."""

    def __init__(self, view: SegmentedIndex) -> None:
        self._view = view

    def __getitem__(self, doc_id: str) -> str:
        layer = self._view.owner(doc_id)
        if layer is None:
            raise KeyError(doc_id)
        return layer.data.sha_table()[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._view.owner(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._view.live_ids())

    def __len__(self) -> int:
        return self._view.num_documents


class _Documents(Sequence[Document]):
    """A view's documents in id order, each read from its layer when asked for."""

    def __init__(self, view: SegmentedIndex, ids: list[str]) -> None:
        self._view, self._ids = view, ids

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, row: int) -> Document: ...
    @overload
    def __getitem__(self, row: slice) -> list[Document]: ...
    def __getitem__(self, row: int | slice) -> Document | list[Document]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        doc = self._view.document(self._ids[row])
        assert doc is not None
        return doc


def chunk_rows_of(layer: Layer, doc_id: str) -> tuple[np.ndarray, list[str]]:
    """A document's chunk vectors as embedded and their languages: what it adds to the statistics."""
    data = layer.data
    start, end = data.chunk_range(doc_id)
    rows = np.arange(start, end)
    table, codes = data.manifest["languages"], data.arrays["chunk_languages"]
    return data.raw_chunk_vectors(rows), [table[int(code)] for code in np.asarray(codes[start:end])]
