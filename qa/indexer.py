"""seeds/ -> documents -> chunks and sentences -> vectors -> the configured store, incrementally.

One write path for every store: this module discovers and checks the files, hashes them, decides what
changed against what the store holds, has ``qa.builder`` embed only the changed documents, and tells the
store's writer (``qa.stores.base.StoreWriter``) to keep, put or delete each one. Unchanged documents keep
their rows; texts embedded before are found in a persistent cache (``index/cache/``, see qa.embed_cache).
A different embedder or chunking rebuilds the index (the cache still serves the texts it knows).

A shared store (Milvus) is written by several origins (qa.origins): each folder sync keeps, puts and releases
only its own folder's documents, and uploads go in through ``index_uploads`` and out through ``remove_shared``,
under the same lock and through the same writer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from qa import loader, origins
from qa.builder import Builder, Plan, sparse_width
from qa.chunking import SPLITTER, ChunkingParams
from qa.config import Settings
from qa.embedding import Embedder, make_embedder
from qa.encode_meter import EncodeMeter
from qa.errors import DocumentConflict, DocumentNotFound, StoreUnavailable
from qa.hashing import file_sha256
from qa.loader import Failure
from qa.stores.base import SearchIndex, StoreWriter

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (file id, files done, files total)
FLUSH_TEXTS = 512  # texts planned before the model runs: many files share full, length-sorted batches
CACHE_DIR = "cache"  # under index_dir, beside the generations (never garbage-collected with them)
LOCK = ".lock"  # under index_dir: one build at a time across processes, for every store


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
    written: bool = False  # the store changed (a new generation, or rows written to Milvus)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def manifest_header(embedder: Embedder, params: ChunkingParams) -> dict[str, Any]:
    """What an index must have been built with to be re-used incrementally."""
    return {
        "embedder": {
            "name": embedder.name,
            "dim": embedder.dim,
            "sparse": sparse_width(embedder),
            # columns of a sentence row stored at 8 bits, the rest at 4 (qa.stores.rows)
            "fine": int(getattr(embedder, "fine_dim", embedder.dim)),
        },
        "chunking": {"size": params.size, "overlap": params.overlap, "splitter": SPLITTER},
    }


def chunking_params(settings: Settings) -> ChunkingParams:
    return ChunkingParams(settings.chunk_size, settings.chunk_overlap)


def open_writer(
    settings: Settings, header: dict[str, Any], *, rebuild: bool, live: Any = None, origin: str | None = None
) -> StoreWriter:
    """The configured store's writer (the only place that names the backends); ``origin`` (a shared store's
    only): whose documents it writes, the seeds folder's when None (qa.origins)."""
    if settings.store == "milvus":
        from qa.stores.milvus import MilvusWriter

        return MilvusWriter.open(
            settings.milvus_uri,
            settings.milvus_collection,
            header,
            rebuild=rebuild,
            origin=origin or origins.folder(settings),
            carry=origins.UPLOAD,
        )
    from qa.stores.local_writer import FaissWriter

    writer = FaissWriter.open(
        settings.index_dir, header, settings.index_kind, rebuild=rebuild, live=live, merge_share=settings.merge_share
    )
    writer.pause = _pause_file("QA_DEBUG_SEGMENT_PAUSE")
    return writer


def merge_due(settings: Settings, index: SearchIndex | None) -> bool:
    """Whether the local store's segments have outgrown QA_MERGE_SHARE of its base (qa.stores.merge)."""
    if settings.store != "faiss" or index is None:
        return False
    from qa.stores.merge import merge_due as due

    return due(index, settings.merge_share)


def merge_index(
    settings: Settings, *, live: SearchIndex | None = None, pause: Callable[[], None] | None = None
) -> SearchIndex | None:
    """Fold the local store's segments into a new base while changes keep committing; the index to serve
    then, or None when nothing was merged. ``pause`` (tests): run before the merge commits; else the file
    named by ``QA_DEBUG_MERGE_PAUSE`` holds it (see ``_pause_file``)."""
    from qa.stores.merge import merge

    pause = pause or _pause_file("QA_DEBUG_MERGE_PAUSE")
    return merge(settings.index_dir, settings.index_kind, _lock_path(settings), live=live, pause=pause)


def _pause_file(variable: str) -> Callable[[], None] | None:
    """For the crash tests, which kill a real `qa index` at a chosen point: with ``variable=PATH`` set, the
    point creates ``PATH.reached`` and waits until ``PATH`` exists. ``QA_DEBUG_MERGE_PAUSE``: a merge that has
    written its new base, before it commits; ``QA_DEBUG_SEGMENT_PAUSE``: a change whose segment's arrays are
    written but not its manifest, before CURRENT moves (docs/segments.md)."""
    path = os.environ.get(variable)
    if not path:
        return None

    def pause() -> None:
        Path(f"{path}.reached").touch()
        gate = threading.Event()
        while not Path(path).exists():
            gate.wait(0.05)

    return pause


def build_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    live: SearchIndex | None = None,
    report: IndexReport | None = None,
    meter: EncodeMeter | None = None,
    only: frozenset[str] | None = None,
) -> tuple[IndexReport, SearchIndex]:
    """Bring the store in line with the seeds folder; returns the report and the index to serve.

    ``only``: bring in line these document ids alone (an upload's or a deletion's files: each is hashed,
    indexed or deleted as a whole build would), every other stored document kept unread, so the change
    costs what it changes, not the folder. None: every file of the folder.

    ``live`` is the index a running server already holds: a local generation built the same way serves as
    the previous one instead of being loaded (and checksummed) from disk again. A store failure raises
    ``StoreUnavailable`` and changes nothing the previous build wrote (Milvus keeps what was written so far).
    ``report`` is filled in as the build goes, so a progress callback can count the failures so far; ``meter``
    adds up the model's work (a server's /metrics).
    """
    started = time.perf_counter()
    embedder = embedder or make_embedder(settings.embedder, settings.device, settings.engine, settings.query_precision)
    params = chunking_params(settings)
    header = manifest_header(embedder, params)
    with FileLock(_lock_path(settings)):
        writer = open_writer(settings, header, rebuild=rebuild, live=live)
        report = report if report is not None else IndexReport()
        report.rebuilt = writer.rebuilt
        cache_dir = settings.index_dir / CACHE_DIR
        with Builder(embedder, params, settings.batch_size, cache_dir, read_cache=not rebuild, meter=meter) as builder:
            _sync(settings, writer, builder, report, progress, only)
            index = writer.commit()
            if writer.carried:  # uploads to a shared store have no file: their stored texts are embedded again
                uploads = open_writer(settings, header, rebuild=False, origin=origins.UPLOAD)
                held = uploads.others()  # a folder that now has a file by an upload's name keeps it
                plans = [builder.plan(doc) for doc in writer.carried if doc.id not in held]
                _flush(plans, uploads, builder, report, {})
                index = uploads.commit()
    report.written = writer.written
    report.embedded = builder.embedded
    report.documents, report.chunks = index.num_documents, index.num_chunks
    report.seconds = time.perf_counter() - started
    return report, index


def _sync(
    settings: Settings,
    writer: StoreWriter,
    builder: Builder,
    report: IndexReport,
    progress: Progress | None,
    only: frozenset[str] | None = None,
):
    """Discover -> check -> hash -> keep, or load -> plan -> embed -> put; then delete what went away.

    In a shared store only what this folder held goes away, and a file never replaces an upload's document.
    ``only``: the files of these ids alone; every other stored document is kept as it is.
    """
    stored = writer.stored()
    others = writer.others()
    if only is None:
        paths = loader.discover(settings.seeds_dir)
    else:
        paths = loader.discover_named(settings.seeds_dir, only)
        writer.keep_others(only)
    pending: list[Plan] = []
    seen: set[str] = set()
    for done, path in enumerate(paths, 1):
        doc_id = loader.doc_id(settings.seeds_dir, path)
        seen.add(doc_id)
        try:
            sha = file_sha256(loader.check_source(settings.seeds_dir, path))
            if stored.get(doc_id) == sha:
                writer.keep(doc_id)
                report.unchanged.append(doc_id)
            elif origins.UPLOAD in others.get(doc_id, ()):
                raise loader.BadDocument(
                    "the shared index holds an uploaded document by this name: delete it first, or rename the file"
                )
            else:
                pending.append(builder.plan(loader.load_document(settings.seeds_dir, path, sha, settings=settings)))
                if sum(plan.size for plan in pending) >= FLUSH_TEXTS:
                    _flush(pending, writer, builder, report, stored)
        except StoreUnavailable:
            raise  # the store failed, not this file: stop before anything is reported or deleted
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            reason = str(exc) if isinstance(exc, loader.BadDocument) else f"{type(exc).__name__}: {exc}"
            report.failed.append(Failure(doc_id, reason))
        if progress:
            progress(doc_id, done, len(paths))
    _flush(pending, writer, builder, report, stored)
    # a file indexed before that now fails is dropped from the index too; a document another origin still
    # holds stays (a shared store), but this folder no longer holds it
    owned = writer.owned()
    if only is not None:  # the named documents alone: membership tests, no pass over the store
        owned = {doc_id for doc_id in only if doc_id in owned}
    gone = sorted((owned - seen) | {f.path for f in report.failed if f.path in owned})
    for doc_id in gone:
        if writer.release(doc_id):
            writer.delete(doc_id)
            report.removed.append(doc_id)
    report.added.sort()
    report.updated.sort()


def _flush(
    pending: list[Plan], writer: StoreWriter, builder: Builder, report: IndexReport, stored: Mapping[str, str]
) -> None:
    """Embed the pending documents together (full batches even when files are small); when the model fails
    on the group, embed them one by one so only the document it fails on is reported."""
    groups = [pending[:]] if pending else []
    pending.clear()
    while groups:
        plans = groups.pop()
        try:
            rows = builder.embed(plans)
        except Exception as exc:  # noqa: BLE001 - the model failed on one of these texts
            if len(plans) > 1:
                groups.extend([plan] for plan in reversed(plans))
            else:
                report.failed.append(Failure(plans[0].doc.id, f"{type(exc).__name__}: {exc}"))
            continue
        for plan, doc_rows in zip(plans, rows):
            writer.put(doc_rows)
            (report.updated if plan.doc.id in stored else report.added).append(plan.doc.id)


def index_uploads(
    settings: Settings, folder: Path, names: list[str], *, embedder: Embedder
) -> tuple[IndexReport, SearchIndex]:
    """Index uploaded files (staged in ``folder``) into a shared store, held by the upload origin.

    Their text then lives in the store alone: every replica lists, answers and deletes them, none needs the
    file, and no folder sync removes them. A name a folder holds is refused (change the file there).
    """
    started = time.perf_counter()
    report = IndexReport()
    params = chunking_params(settings)
    with FileLock(_lock_path(settings)):
        writer = open_writer(settings, manifest_header(embedder, params), rebuild=False, origin=origins.UPLOAD)
        stored, others = writer.stored(), writer.others()
        cache_dir = settings.index_dir / CACHE_DIR
        with Builder(embedder, params, settings.batch_size, cache_dir) as builder:
            pending: list[Plan] = []
            for name in names:
                try:
                    folders = {origin for origin in others.get(name, ()) if origins.is_folder(origin)}
                    if folders:
                        raise loader.BadDocument(
                            f"{name} is a document of {origins.describe(folders)}: change the file there"
                        )
                    sha = file_sha256(loader.check_source(folder, folder / name))
                    if stored.get(name) == sha:
                        writer.keep(name)
                        report.unchanged.append(name)
                    else:
                        pending.append(
                            builder.plan(loader.load_document(folder, folder / name, sha, settings=settings))
                        )
                except StoreUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
                    reason = str(exc) if isinstance(exc, loader.BadDocument) else f"{type(exc).__name__}: {exc}"
                    report.failed.append(Failure(name, reason))
            _flush(pending, writer, builder, report, stored)
        index = writer.commit()
    report.written, report.embedded = writer.written, builder.embedded
    report.seconds = time.perf_counter() - started
    return report, index


def remove_shared(settings: Settings, doc_id: str, *, embedder: Embedder) -> SearchIndex:
    """Delete a document from a shared store for every replica: its rows and every origin's hold on it.

    A document another replica's folder holds is refused (DocumentConflict): that folder would only put it
    back; this replica's own file is the caller's to remove first.
    """
    with FileLock(_lock_path(settings)):
        writer = open_writer(settings, manifest_header(embedder, chunking_params(settings)), rebuild=False)
        if doc_id not in writer.stored():
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        folders = {origin for origin in writer.others().get(doc_id, ()) if origins.is_folder(origin)}
        if folders:
            raise DocumentConflict(f"{doc_id} is a document of {origins.describe(folders)}: remove the file there")
        writer.delete(doc_id)
        return writer.commit()


def _lock_path(settings: Settings) -> Path:
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return settings.index_dir / LOCK
