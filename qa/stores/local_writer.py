"""The StoreWriter of the local store: a small change writes a segment, a large one a whole generation.

A change whose rows are a small share of the base (``merge_share``, QA_MERGE_SHARE) costs what the change
costs: its documents' rows go into a new flat segment, the rows they replace or delete are marked dead, and
a new view (qa.stores.segments) is committed by the atomic switch of CURRENT. Small trailing segments are
folded into the new one as they come (as a binary counter: a segment absorbs the ones before it no larger
than itself), so a view holds a handful of segments however many changes it took. A large change writes a
whole generation, as every change did before segments. Folding the segments into a new base is a merge
(qa.stores.merge), run in the background once they outgrow their share.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from qa.errors import IndexCorrupt, IndexMissing
from qa.stores.base import DocRows, model_header
from qa.stores.faiss import IndexData, assemble
from qa.stores.local import (
    FORMAT,
    MANIFEST,
    collect_garbage,
    current_generation,
    load,
    open_generation,
    open_view,
    point_current,
    read_manifest,
    save,
    write_generation,
)
from qa.stores.segments import Layer, SegmentedIndex, ViewStats

log = logging.getLogger(__name__)
# qa.config.Settings.merge_share. Segments are flat: a query scans them whole, 0.055 ms per 1,000 rows of 896
# columns on one core (docs/segments.md). 1 % keeps that under 0.6 ms beside a 1M-row base's ~1 ms, so search
# stays under 2 ms; at 10k rows it merges every ~25 one-document uploads, in the background, in seconds.
DEFAULT_MERGE_SHARE = 0.01
MAX_SEGMENTS = 16  # beyond this many, a new segment absorbs the trailing ones whatever their size
Stored = IndexData | SegmentedIndex


def header_of(index: Stored) -> dict[str, Any]:
    """The manifest entries a writer checks and copies (embedder, chunking, sequence), without the documents."""
    return index.header


def _last_sequence(index_dir: Path, previous: Stored | None) -> int:
    """The number of the commit CURRENT names (commits of the local store are numbered: a server swaps only
    to a newer one, qa.live); a rebuild counts on from it."""
    if previous is not None:
        return previous.sequence
    try:
        return int((read_manifest(index_dir) or {}).get("sequence", 0))
    except IndexCorrupt:
        return 0


def layers_of(index: Stored) -> list[Layer]:
    return index.layers if isinstance(index, SegmentedIndex) else [Layer(index)]


class FaissWriter:
    """Collects what changed, then commits a segment (small change) or a whole generation (large one).

    ``commit`` serves what it wrote from disk, memory-mapped, like any generation: a live re-index never
    keeps the freshly built arrays in memory.
    """

    def __init__(
        self,
        index_dir: Path,
        header: dict[str, Any],
        previous: Stored | None,
        index_kind: str,
        merge_share: float = DEFAULT_MERGE_SHARE,
    ) -> None:
        self.index_dir = index_dir
        self.header = header
        self.previous = previous
        self.index_kind = index_kind
        self.merge_share = merge_share
        self.rebuilt = previous is None
        self.written = False
        self._kept: set[str] = set()
        self._named: frozenset[str] | None = None  # keep_others: the only stored documents not kept unasked
        self._put: dict[str, DocRows] = {}
        self._deleted: set[str] = set()
        self._stored: Mapping[str, str] | None = None
        self.sequence = (previous.sequence if previous is not None else 0) + 1  # what the commit is numbered
        # crash tests only (qa.indexer, QA_DEBUG_SEGMENT_PAUSE): run once a segment's arrays are on disk
        self.pause: Callable[[], None] | None = None

    @classmethod
    def open(
        cls,
        index_dir: Path,
        header: dict[str, Any],
        index_kind: str,
        *,
        rebuild: bool,
        live: Any = None,
        merge_share: float = DEFAULT_MERGE_SHARE,
    ) -> FaissWriter:
        """``live``: what a running server holds; when it is what CURRENT names and built the same way, it is
        the previous one (no second load and checksum pass). One that a merge or another process replaced
        since is not: the change goes on top of what is committed."""
        previous = None
        if not rebuild:
            current = current_generation(index_dir)
            usable = (
                isinstance(live, (IndexData, SegmentedIndex))
                and current is not None
                and live.name == current.name
                and _compatible(header_of(live), header)
            )
            previous = live if usable else _load_compatible(index_dir, header)
        writer = cls(index_dir, header, previous, index_kind, merge_share)
        writer.sequence = _last_sequence(index_dir, previous) + 1
        return writer

    def stored(self) -> Mapping[str, str]:
        """Read-only and not copied: the previous index never changes, and a change that names a few
        documents (keep_others) must not cost a pass over every stored one."""
        if self.previous is None:
            return {}
        if self._stored is None:
            self._stored = self.previous.sha_table()
        return self._stored

    carried: tuple[()] = ()  # every document of a local store has its file in the seeds folder

    def owned(self) -> AbstractSet[str]:
        """The seeds folder is the one origin of a local store: it holds every document."""
        return self.stored().keys()

    def others(self) -> dict[str, frozenset[str]]:
        return {}

    def release(self, doc_id: str) -> bool:
        return True

    def keep(self, doc_id: str) -> None:
        assert self.previous is not None
        self._kept.add(doc_id)

    def keep_others(self, named: Collection[str]) -> None:
        """Every stored document outside ``named`` stays as it is, with no call (nor a set entry) each: the
        segment commit then looks at the named documents alone."""
        self._named = frozenset(named) | (self._named or frozenset())

    def put(self, rows: DocRows) -> None:
        self._put[rows.doc.id] = rows
        self._deleted.discard(rows.doc.id)

    def delete(self, doc_id: str) -> None:
        self._put.pop(doc_id, None)
        self._kept.discard(doc_id)
        self._deleted.add(doc_id)

    def commit(self) -> Stored:
        previous = self.previous
        if previous is not None and not self._put and not self._deleted:
            return previous
        self.written = True
        if previous is not None and self._small(previous):
            return self._commit_segment(previous)
        return self._commit_generation()

    def _small(self, previous: Stored) -> bool:
        """A change of at most ``merge_share`` of the base's rows goes into a segment."""
        if ViewStats.read(previous.stats) is None:  # written without (some) statistics: write them all anew
            return False
        rows = sum(len(rows.chunks) for rows in self._put.values())
        return rows <= self.merge_share * layers_of(previous)[0].live_rows

    def _commit_generation(self) -> IndexData:
        previous = self.previous
        kept = self._kept
        if self._named is not None and previous is not None:  # a whole generation costs the corpus anyway
            kept = kept | {doc_id for doc_id in self.stored() if doc_id not in self._named}
        ids = sorted((kept | set(self._put)) - self._deleted)
        documents = [self._put[i] if i in self._put else previous.document_rows(i) for i in ids]  # type: ignore[union-attr]
        manifest, *parts = assemble(self.header, documents, self.index_kind)
        manifest["sequence"] = self.sequence
        stamp_indexed_at(manifest, previous.manifest["documents"] if previous is not None else {})
        gen = save(self.index_dir, manifest, *parts)
        # served from disk like any generation (we hold the build lock: nothing collects it meanwhile)
        return open_generation(gen, json.loads((gen / MANIFEST).read_text()))

    def _commit_segment(self, previous: Stored) -> SegmentedIndex:
        """The changed documents as a new segment, what they replace or delete dead, one view committed."""
        layers = layers_of(previous)
        killed = self._killed()
        owners = {doc_id: _owner(previous, doc_id) for doc_id in killed}
        stats = ViewStats.read(previous.stats)
        assert stats is not None  # _small
        for doc_id in killed:
            stats.remove(owners[doc_id], doc_id)
        dead = {layer.name: set(layer.dead_docs) for layer in layers}
        for doc_id in killed:
            dead[owners[doc_id].name].add(doc_id)
        kept_layers, absorbed = _fold(layers, sum(len(rows.chunks) for rows in self._put.values()))
        written: dict[str, DocRows] = dict(self._put)
        stamps: dict[str, str] = {}
        for layer in absorbed:  # their live documents move into the new segment, unchanged
            for doc_id in layer.live_documents():
                if doc_id not in killed and doc_id not in written:
                    written[doc_id] = layer.data.document_rows(doc_id)
                    stamps[doc_id] = layer.data.manifest["documents"][doc_id].get("indexed_at", "")
        entries = [{"dir": layer.name, "dead": sorted(dead[layer.name])} for layer in kept_layers]
        reuse = {layer.name: layer.data for layer in kept_layers}
        if written:
            documents = [written[doc_id] for doc_id in sorted(written)]
            manifest, arrays, index, segment_stats = assemble(self.header, documents, "flat")
            for doc_id, entry in manifest["documents"].items():
                entry["indexed_at"] = stamps.get(doc_id) or manifest["built_at"]
            segment = write_generation(
                self.index_dir, manifest, arrays, index, segment_stats, prefix="seg-", pause=self.pause
            )
            entries.append({"dir": segment.name, "dead": []})
            layer = Layer(open_generation(segment, json.loads((segment / MANIFEST).read_text())))
            reuse[segment.name] = layer.data
            for doc_id in self._put:  # the rows as stored, as the statistics of every commit count them
                stats.add(layer, doc_id)
        view = dict(
            {key: value for key, value in self.header.items()},
            format=FORMAT,
            sequence=self.sequence,
            layers=entries,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        return commit_view(self.index_dir, view, stats.to_json(), reuse)

    def _killed(self) -> set[str]:
        """The stored documents whose rows die: those replaced, deleted, or neither kept nor written. Only
        the named ones are looked at after keep_others (the cost of the change, not of the corpus)."""
        live = self.stored()
        asked = live.keys() if self._named is None else self._named | self._deleted
        gone = {doc_id for doc_id in asked if doc_id in live and doc_id not in self._kept}
        return gone | {doc_id for doc_id in self._put if doc_id in live}


def _owner(index: Stored, doc_id: str) -> Layer:
    """The layer holding a live document of ``index``."""
    if isinstance(index, SegmentedIndex):
        layer = index.owner(doc_id)
        assert layer is not None
        return layer
    return Layer(index)


def commit_view(
    index_dir: Path, view: dict[str, Any], stats: dict[str, Any], reuse: dict[str, IndexData]
) -> SegmentedIndex:
    """Write a view, switch CURRENT to it, collect what no view needs any more, and open it."""
    folder = write_generation(index_dir, view, {}, None, stats)
    point_current(index_dir, folder)
    collect_garbage(index_dir, keep={folder.name})
    return open_view(index_dir, folder, json.loads((folder / MANIFEST).read_text()), verify=False, reuse=reuse)


def _fold(layers: list[Layer], rows: int) -> tuple[list[Layer], list[Layer]]:
    """The layers a new segment of ``rows`` rows leaves in place, and the trailing segments it absorbs: each
    one no larger than what the new segment holds so far (or any, past ``MAX_SEGMENTS``)."""
    kept = list(layers)
    absorbed: list[Layer] = []
    if rows == 0:  # a deletion only: no segment to fold into
        return kept, absorbed
    while len(kept) > 1 and (kept[-1].live_rows <= rows or len(kept) > MAX_SEGMENTS):
        layer = kept.pop()
        absorbed.append(layer)
        rows += layer.live_rows
    return kept, absorbed


def stamp_indexed_at(manifest: dict[str, Any], before: dict[str, Any]) -> None:
    """Each document's ``indexed_at`` (GET /documents): kept from the previous generation while unchanged."""
    for doc_id, entry in manifest["documents"].items():
        old = before.get(doc_id, {})
        same = old.get("sha256") == entry["sha256"] and old.get("indexed_at")
        entry["indexed_at"] = old["indexed_at"] if same else manifest["built_at"]


def _compatible(manifest: dict[str, Any], header: dict[str, Any]) -> bool:
    """Same model and chunking; each generation's rows say by their width how they are packed, and a copied row
    is packed again for the new one."""
    same_model = model_header(manifest.get("embedder")) == model_header(header["embedder"])
    return same_model and manifest.get("chunking") == header["chunking"]


def _load_compatible(index_dir: Path, header: dict[str, Any]) -> Stored | None:
    try:
        manifest = read_manifest(index_dir)
        if manifest is None:
            return None
        if not _compatible(manifest, header):
            log.info("embedder or chunking changed: full rebuild")
            return None
        return load(index_dir)
    except (IndexCorrupt, IndexMissing) as exc:
        log.warning("previous index unusable, rebuilding: %s", exc)
        return None
