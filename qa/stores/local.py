"""The local store: immutable generations of the FAISS index and its rows in ``index_dir``.

Layout of ``index_dir``::

    CURRENT            name of the live generation (replaced atomically with os.replace)
    gen-<id>/          one complete, immutable generation (FORMAT 6: the arrays of qa.stores.faiss)
        manifest.json  format, embedder, dim, chunking, documents, languages, search index, per-file
                       checksums, and ``stats``: the file the rows' per-language statistics are in
        <array>.npy ... memory-mapped while serving; index.faiss memory-mapped too
        verified       written after the first full checksum pass (see ``load``)
    .lock              held by the one build at a time (qa.indexer)
    .gc.lock           readers share it while opening a generation; garbage collection takes it alone

A build writes a new generation beside the live one and only then points CURRENT at it, so a crash
at any moment leaves the previous generation loadable.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import ReadWriteLock

from qa.errors import IndexCorrupt, IndexMissing, IndexOutdated
from qa.hashing import file_sha256
from qa.stores.arrayfile import ArrayFile
from qa.stores.base import DocRows, model_header
from qa.stores.faiss import ARRAYS, IndexData, assemble

log = logging.getLogger(__name__)
FORMAT = 6  # 3: compact rows (8-bit codes, CSR latent terms, texts once), everything memory-mapped; 4: one-byte
# latent-term weights, 8-bit flat codes; 5: 4-bit sentence columns after the fine ones (qa.stores.rows); 6: FAISS
# holds the rows as embedded, the language correction is the ranking stage's (qa.ranking), for every store
STATS = "stats.json"
# the large arrays a question reads a few rows of (a hit's slices, an approximate index's candidates): read
# with pread, so scattered reads leave no mapped pages behind (qa.stores.arrayfile); the rest stay mapped
READ_BY_SLICE = ("sentence_rows", "texts", "sparse_ids", "sparse_weights", "chunk_rows")
# memory-map the codes: IVF lists through OnDiskInvertedLists' hook, flat codes directly
_MMAP = {
    "ivf-sq8": faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY,
    "flat": faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY,
}
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VERIFIED = "verified"
GC_LOCK = ".gc.lock"
REBUILD_HINT = "run `qa index --rebuild` to build it again"


def current_generation(index_dir: Path) -> Path | None:
    try:
        name = (index_dir / CURRENT).read_text().strip()
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


@contextmanager
def _gc_guard(index_dir: Path, *, collect: bool, timeout: float = -1) -> Iterator[None]:
    """Shared while a reader opens a generation, exclusive while old generations are deleted.

    A reader that cannot create the lock file (a read-only or missing index folder) reads unguarded:
    nothing can collect garbage there either.
    """
    lock = ReadWriteLock(index_dir / GC_LOCK, is_singleton=False)  # one instance per use: threads never share
    with ExitStack() as stack:
        stack.callback(lock.close)
        try:
            stack.enter_context(lock.write_lock(timeout) if collect else lock.read_lock(timeout))
        except (OSError, sqlite3.Error):
            if collect:
                raise
        yield


def load(index_dir: Path, *, verify: bool = True) -> IndexData:
    """Load the live generation; IndexMissing if none, IndexCorrupt if a file fails its checksum or size."""
    with _gc_guard(index_dir, collect=False):
        gen = current_generation(index_dir)
        if gen is None or not gen.is_dir():
            raise IndexMissing(f"no index in {index_dir}: run `qa index` to build it from the seeds folder")
        manifest = read_manifest(index_dir)
        assert manifest is not None
        if manifest.get("format") != FORMAT:
            raise IndexOutdated(
                f"the index in {gen} was written by an older qa (format {manifest.get('format')}, this one reads "
                f"{FORMAT}): run `qa index` to rebuild it"
            )
        if verify:
            _verify(gen, manifest)
        return _open(gen, manifest)


def _open_array(path: Path, by_slice: bool) -> np.ndarray | ArrayFile:
    return ArrayFile(path) if by_slice else np.load(path, mmap_mode="r", allow_pickle=False)


def _open(gen: Path, manifest: dict[str, Any]) -> IndexData:
    """Nothing read into memory: the arrays a hit slices read by pread, the others and the FAISS index
    memory-mapped, so the generation costs page cache, not process memory."""
    optional = [name for name in ("chunk_rows",) if f"{name}.npy" in manifest.get("files", {})]
    names = [*ARRAYS, *optional]
    try:
        arrays = {name: _open_array(gen / f"{name}.npy", name in READ_BY_SLICE) for name in names}
        kind = manifest.get("search_index", {}).get("kind", "flat")
        index = faiss.read_index(str(gen / "index.faiss"), _MMAP.get(kind, 0))
    except Exception as exc:  # any damage the checksums did not catch
        raise IndexCorrupt(f"index in {gen} cannot be read ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from exc
    if index.ntotal != len(arrays["chunks"]) or index.d != int(manifest["embedder"]["dim"]):
        raise IndexCorrupt(f"index in {gen} is inconsistent with its manifest; {REBUILD_HINT}")
    try:
        stats = json.loads((gen / manifest["stats"]).read_text()) if manifest.get("stats") else None
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index in {gen} cannot be read ({exc}); {REBUILD_HINT}") from exc
    return IndexData(manifest=manifest, arrays=arrays, index=index, stats=stats)


def _stat(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


def _verify(gen: Path, manifest: dict[str, Any]) -> None:
    """Checksum every file once per generation; later loads compare sizes and modification times only.

    ``qa ask`` loads the index on every call: hashing every file each time cost more than the question.
    The ``verified`` marker records each file's size and mtime after a full pass; a file written since
    (or a marker that does not match) sends the load back to full checksums.
    """
    files: dict[str, str] = manifest.get("files", {})
    try:
        stats = {name: _stat(gen / name) for name in files}
    except OSError as exc:
        raise IndexCorrupt(f"index file in {gen} is missing ({exc}); {REBUILD_HINT}") from exc
    try:
        if json.loads((gen / VERIFIED).read_text()) == stats:
            return
    except (OSError, ValueError):
        pass
    for name, expected in files.items():
        if file_sha256(gen / name) != expected:
            raise IndexCorrupt(f"index file {gen / name} is damaged (checksum mismatch); {REBUILD_HINT}")
    try:
        _write_synced(gen / VERIFIED, json.dumps(stats))
    except OSError:  # a read-only index: verified again next time, still correct
        log.debug("cannot write %s", gen / VERIFIED)


def save(
    index_dir: Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    index: Any,
    stats: dict[str, Any] | None = None,
) -> Path:
    """Write a new generation beside the live one, fsync it, then switch CURRENT to it atomically."""
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = index_dir / f"gen-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = index_dir / f".tmp-{gen.name}"
    tmp.mkdir()
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        faiss.write_index(index, str(tmp / "index.faiss"))
        if stats is not None:
            _write_synced(tmp / STATS, json.dumps(stats))
        files = sorted(p.name for p in tmp.iterdir())
        manifest = dict(manifest, format=FORMAT, files={name: file_sha256(tmp / name) for name in files})
        if stats is not None:
            manifest["stats"] = STATS
        _write_synced(tmp / MANIFEST, json.dumps(manifest, ensure_ascii=False))  # one line: 15 % smaller
        for name in files:
            _fsync(tmp / name)
        # every file was just hashed from what was written: the first load need not hash them again
        _write_synced(tmp / VERIFIED, json.dumps({name: _stat(tmp / name) for name in manifest["files"]}))
        os.replace(tmp, gen)
        _fsync(index_dir)
        pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        _write_synced(pointer_tmp, gen.name)
        os.replace(pointer_tmp, index_dir / CURRENT)
        _fsync(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    collect_garbage(index_dir, keep={gen.name})
    return gen


def collect_garbage(index_dir: Path, keep: set[str], *, timeout: float = -1) -> list[str]:
    """Remove old generations and leftovers of interrupted builds (never ``keep``); returns what went.

    Waits (up to ``timeout`` seconds, -1 for ever, else filelock.Timeout) for readers that are opening a
    generation (``load``): once open, a generation's files stay readable through their descriptors and
    maps even after they are unlinked.
    """
    removed = []
    with _gc_guard(index_dir, collect=True, timeout=timeout):
        for path in sorted(index_dir.iterdir()):
            if path.name in keep or not path.name.startswith(("gen-", ".tmp-gen-", f".{CURRENT}.")):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


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


class FaissWriter:
    """The StoreWriter of the local store: collects every document's rows, then writes one new generation.

    ``commit`` serves the generation from disk, memory-mapped, like any other: a live re-index never keeps
    the freshly built arrays in memory.
    """

    def __init__(
        self,
        index_dir: Path,
        header: dict[str, Any],
        previous: IndexData | None,
        index_kind: str,
    ) -> None:
        self.index_dir = index_dir
        self.header = header
        self.previous = previous
        self.index_kind = index_kind
        self.rebuilt = previous is None
        self.written = False
        self._rows: dict[str, DocRows] = {}
        self._changed = False

    @classmethod
    def open(
        cls,
        index_dir: Path,
        header: dict[str, Any],
        index_kind: str,
        *,
        rebuild: bool,
        live: Any = None,
    ) -> FaissWriter:
        """``live``: the generation a running server holds; when built the same way it is the previous one
        (no second load and checksum pass)."""
        previous = None
        if not rebuild:
            previous = live if isinstance(live, IndexData) and _compatible(live.manifest, header) else None
            previous = previous or _load_compatible(index_dir, header)
        return cls(index_dir, header, previous, index_kind)

    def stored(self) -> dict[str, str]:
        if self.previous is None:
            return {}
        return {meta["id"]: meta["sha256"] for meta in self.previous.manifest["documents"].values()}

    carried: tuple[()] = ()  # every document of a local store has its file in the seeds folder

    def owned(self) -> set[str]:
        """The seeds folder is the one origin of a local store: it holds every document."""
        return set(self.stored())

    def others(self) -> dict[str, frozenset[str]]:
        return {}

    def release(self, doc_id: str) -> bool:
        return True

    def keep(self, doc_id: str) -> None:
        assert self.previous is not None
        self._rows[doc_id] = self.previous.document_rows(doc_id)

    def put(self, rows: DocRows) -> None:
        self._rows[rows.doc.id] = rows
        self._changed = True

    def delete(self, doc_id: str) -> None:
        self._rows.pop(doc_id, None)
        self._changed = True

    def commit(self) -> IndexData:
        if self.previous is not None and not self._changed:
            return self.previous
        documents = [self._rows[doc_id] for doc_id in sorted(self._rows)]
        manifest, *parts = assemble(self.header, documents, self.index_kind)
        _stamp_indexed_at(manifest, self.previous)
        gen = save(self.index_dir, manifest, *parts)
        self.written = True
        # served from disk like any generation (we hold the build lock: nothing collects it meanwhile)
        return _open(gen, json.loads((gen / MANIFEST).read_text()))


def _stamp_indexed_at(manifest: dict[str, Any], previous: IndexData | None) -> None:
    """Each document's ``indexed_at`` (GET /documents): kept from the previous generation while unchanged."""
    before = previous.manifest.get("documents", {}) if previous is not None else {}
    for doc_id, entry in manifest["documents"].items():
        old = before.get(doc_id, {})
        same = old.get("sha256") == entry["sha256"] and old.get("indexed_at")
        entry["indexed_at"] = old["indexed_at"] if same else manifest["built_at"]


def _compatible(manifest: dict[str, Any], header: dict[str, Any]) -> bool:
    """Same model and chunking; each generation's rows say by their width how they are packed, and a copied row
    is packed again for the new one."""
    same_model = model_header(manifest.get("embedder")) == model_header(header["embedder"])
    return same_model and manifest.get("chunking") == header["chunking"]


def _load_compatible(index_dir: Path, header: dict[str, Any]) -> IndexData | None:
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
