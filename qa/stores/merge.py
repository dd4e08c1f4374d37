"""Folding a view's segments into a new base, in the background, while changes keep committing.

1. Under the merge lock only (``.merge.lock``: one merge at a time), take the committed view as a snapshot
   and write every live document of it into a new base, in a ``.merge-`` folder beside the serving one.
   Changes commit meanwhile as segments: the build lock is not held.
2. Under the build lock, read the view committed now. Each document of the new base stays live only if
   that view still holds it where the snapshot did; one replaced or deleted during the merge is dead in the
   new base (so a delete that arrived while the merge ran stays deleted). The segments written since the
   snapshot are kept on top, the statistics (whole and per collection) are the new base's as fitted, less its
   documents dead now, plus the live rows kept on top (a full rebuild's), and the new view is committed by
   the atomic switch of CURRENT, as every change is.

A kill at any point leaves CURRENT naming the last committed view; the ``.merge-`` folder is garbage once no
merge holds the lock. A full rebuild committed during the merge (another base) makes the merge give up.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from qa.stores.faiss import IndexData
from qa.stores.local import (
    FORMAT,
    MANIFEST,
    MERGE_LOCK,
    current_generation,
    load,
    new_name,
    open_generation,
)
from qa.stores.local_writer import commit_view, stamp_indexed_at
from qa.stores.segments import Layer, SegmentedIndex, ViewStats
from qa.stores.streamed import write_streamed

log = logging.getLogger(__name__)


def merge_due(index: Any, share: float) -> bool:
    """Whether the segments' live rows have outgrown ``share`` of the base's."""
    return (
        isinstance(index, SegmentedIndex)
        and len(index.layers) > 1
        and index.segment_rows > share * max(index.base.live_rows, 1)
    )


def merge(
    index_dir: Path,
    index_kind: str,
    build_lock: Path,
    *,
    live: Any = None,
    pause: Callable[[], None] | None = None,
) -> SegmentedIndex | None:
    """Merge the committed view's segments into a new base; the view committed, or None when there was
    nothing to merge, another merge runs, or a full rebuild replaced the base meanwhile.

    ``pause`` runs after the new base is written and before it commits (tests hold a merge there).
    """
    lock = FileLock(index_dir / MERGE_LOCK, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("a merge is already running")
        return None
    try:
        for leftover in index_dir.glob(".merge-*"):  # we hold the lock: these are a killed merge's
            shutil.rmtree(leftover, ignore_errors=True)
        current = current_generation(index_dir)
        snapshot = live if live is not None and current is not None and live.name == current.name else None
        snapshot = snapshot or load(index_dir)
        if not isinstance(snapshot, SegmentedIndex) or len(snapshot.layers) < 2:
            return None
        started = time.perf_counter()
        folder = _write_base(index_dir, snapshot, index_kind)
        try:
            if pause is not None:
                pause()
            with FileLock(build_lock):
                merged = _commit(index_dir, snapshot, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # gone already once committed
        if merged is not None:
            log.info("merged %d segments into a new base in %.1fs", len(snapshot.layers) - 1,
                     time.perf_counter() - started)  # fmt: skip
        return merged
    finally:
        lock.release()


def _write_base(index_dir: Path, snapshot: SegmentedIndex, index_kind: str) -> Path:
    """Every live document of the snapshot as one generation, in a ``.merge-`` folder (not yet a layer),
    read and written a batch at a time (qa.stores.streamed): the merge's memory does not grow with the base."""
    before = snapshot.manifest["documents"]
    return write_streamed(
        index_dir,
        _header(snapshot.view),
        sorted(before),
        snapshot.document_rows,
        index_kind,
        staging=".merge-",
        stamp=lambda manifest: stamp_indexed_at(manifest, before),
    )


def _commit(index_dir: Path, snapshot: SegmentedIndex, folder: Path) -> SegmentedIndex | None:
    """Under the build lock: the new base under what was committed since the snapshot, committed."""
    current = load(index_dir, verify=False)
    if not isinstance(current, SegmentedIndex) or current.base.name != snapshot.base.name:
        log.info("the base was rebuilt during the merge: the merge is dropped")
        return None
    before = {layer.name for layer in snapshot.layers}
    base_dir = index_dir / new_name()
    os.replace(folder, base_dir)
    base = open_generation(base_dir, json.loads((base_dir / MANIFEST).read_text()))
    moved = []  # documents the snapshot held that the committed view holds elsewhere now (or not at all)
    for doc_id in base.by_id:
        now, then = current.owner(doc_id), snapshot.owner(doc_id)
        if now is None or then is None or now.name != then.name:
            moved.append(doc_id)
    since = [layer for layer in current.layers if layer.name not in before]
    entries = [{"dir": base.name, "dead": sorted(moved)}]
    entries += [{"dir": layer.name, "dead": sorted(layer.dead_docs)} for layer in since]
    view = dict(
        _header(current.view),
        format=FORMAT,
        sequence=current.sequence + 1,
        layers=entries,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    reuse = {base.name: base, **{layer.name: layer.data for layer in since}}
    return commit_view(index_dir, view, _stats(base, moved, since), reuse)


def _stats(base: IndexData, moved: list[str], since: list[Layer]) -> dict[str, Any]:
    """The new view's statistics, whole and per collection: the new base's own (fitted by ``assemble`` from
    its rows as stored, as a rebuild fits them), less its documents dead in the view, plus the live rows of
    the segments kept on top. So the statistics after a merge are a full rebuild's, whatever the base's kind."""
    stats = ViewStats.read(base.stats)
    assert stats is not None  # assemble writes both
    layer = Layer(base)
    for doc_id in moved:
        stats.remove(layer, doc_id)
    for segment in since:
        for doc_id in segment.live_documents():
            stats.add(segment, doc_id)
    return stats.to_json()


def _header(view: dict[str, Any]) -> dict[str, Any]:
    """What a view and a generation share: embedder and chunking (not layers, files or checksums)."""
    return {key: view[key] for key in ("embedder", "chunking") if key in view}
