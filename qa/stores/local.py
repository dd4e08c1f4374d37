"""The local store: immutable generations of the FAISS index and its rows in ``index_dir``.

Layout of ``index_dir``::

    CURRENT            name of the live generation or view (replaced atomically with os.replace)
    gen-<id>/          one complete, immutable generation (FORMAT 6: the arrays of qa.stores.faiss)
        manifest.json  format, embedder, dim, chunking, documents, languages, search index, per-file
                       checksums, and ``stats``: the file the rows' per-language statistics are in
        <array>.npy ... memory-mapped while serving; index.faiss memory-mapped too
        verified       written after the first full checksum pass (see ``load``)
    gen-<id>/          or a view (qa.stores.segments): manifest.json lists its layers (a base generation and
                       ``seg-`` segments) with the documents dead in each; stats.json its statistics
    seg-<id>/          a segment: a small flat generation of the documents one change wrote
    .merge-gen-<id>/   the next base a background merge is writing (qa.stores.merge)
    .lock              held by the one build at a time (qa.indexer)
    .merge.lock        held by the one merge at a time
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock, ReadWriteLock, Timeout

from qa.errors import IndexCorrupt, IndexMissing, IndexOutdated
from qa.hashing import file_sha256
from qa.stores.arrayfile import ArrayFile
from qa.stores.faiss import ARRAYS, IndexData
from qa.stores.segments import Layer, SegmentedIndex

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
MERGE_LOCK = ".merge.lock"  # held by the one merge at a time (qa.stores.merge)
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


def load(index_dir: Path, *, verify: bool = True) -> IndexData | SegmentedIndex:
    """Load the live generation or view; IndexMissing if none, IndexCorrupt if a file fails its checksum or size."""
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
        if "layers" in manifest:
            return open_view(index_dir, gen, manifest, verify=verify)
        if verify:
            _verify(gen, manifest)
        return open_generation(gen, manifest)


def open_view(
    index_dir: Path,
    folder: Path,
    view: dict[str, Any],
    *,
    verify: bool = True,
    reuse: dict[str, IndexData] | None = None,
) -> SegmentedIndex:
    """A segmented view (qa.stores.segments): its layers opened (or ``reuse``d: a writer's previous view holds
    them open already), each with the documents dead in it, and the view's own statistics."""
    if verify:
        _verify(folder, view)
    layers = []
    for entry in view["layers"]:
        data = (reuse or {}).get(entry["dir"])
        if data is None:
            gen = index_dir / entry["dir"]
            try:
                manifest = json.loads((gen / MANIFEST).read_text())
            except (OSError, ValueError) as exc:
                raise IndexCorrupt(f"index layer {gen} cannot be read ({exc}); {REBUILD_HINT}") from exc
            if verify:
                _verify(gen, manifest)
            data = open_generation(gen, manifest)
        layers.append(Layer(data, frozenset(entry.get("dead", ()))))
    try:
        stats = json.loads((folder / view["stats"]).read_text()) if view.get("stats") else None
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index in {folder} cannot be read ({exc}); {REBUILD_HINT}") from exc
    return SegmentedIndex(folder.name, view, layers, stats)


def _open_array(path: Path, by_slice: bool) -> np.ndarray | ArrayFile:
    return ArrayFile(path) if by_slice else np.load(path, mmap_mode="r", allow_pickle=False)


def open_generation(gen: Path, manifest: dict[str, Any]) -> IndexData:
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
    return IndexData(manifest=manifest, arrays=arrays, index=index, stats=stats, name=gen.name)


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
    gen = write_generation(index_dir, manifest, arrays, index, stats)
    point_current(index_dir, gen)
    collect_garbage(index_dir, keep={gen.name})
    return gen


def new_name(prefix: str = "gen-") -> str:
    return f"{prefix}{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"


def write_generation(
    index_dir: Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    index: Any,
    stats: dict[str, Any] | None = None,
    *,
    prefix: str = "gen-",
    staging: str = ".tmp-",
    pause: Callable[[], None] | None = None,
) -> Path:
    """A complete folder (a generation, a segment, or a view with no arrays nor ``index``), every file fsynced
    and hashed in its manifest, renamed into place under a fresh name; nothing points at it yet.

    ``staging`` is where it is written first: ``.tmp-`` (any commit's garbage collection removes a leftover),
    or ``.merge-`` with ``prefix`` too (kept as written: the merge renames it once it commits, qa.stores.merge).
    ``pause`` runs once the arrays are written, before the manifest (the crash tests kill a writer there).
    """
    with staged_generation(index_dir, prefix=prefix, staging=staging) as (tmp, finish):
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        if pause is not None:
            pause()
        if index is not None:
            faiss.write_index(index, str(tmp / "index.faiss"))
        written = finish(manifest, stats)
    return written


Finish = Callable[[dict[str, Any], "dict[str, Any] | None"], Path]


@contextmanager
def staged_generation(
    index_dir: Path, *, prefix: str = "gen-", staging: str = ".tmp-"
) -> Iterator[tuple[Path, Finish]]:
    """A staging folder to write a generation's files into, and ``finish(manifest, stats)``: hash and fsync
    every file, write the manifest, and rename the folder into place (``write_generation``; a ``.merge-``
    staging folder stays where it is). The folder is removed if the block raises."""
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = index_dir / new_name(prefix)
    tmp = index_dir / f"{staging}{gen.name}"
    tmp.mkdir()

    def finish(manifest: dict[str, Any], stats: dict[str, Any] | None) -> Path:
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
        _fsync(tmp)
        if staging.startswith(".merge-"):
            return tmp
        os.replace(tmp, gen)
        _fsync(index_dir)
        return gen

    try:
        yield tmp, finish
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def point_current(index_dir: Path, gen: Path) -> None:
    """Switch CURRENT to ``gen`` atomically: the commit point of every change."""
    pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    _write_synced(pointer_tmp, gen.name)
    os.replace(pointer_tmp, index_dir / CURRENT)
    _fsync(index_dir)


def _layers_of(index_dir: Path, names: set[str]) -> set[str]:
    """The folders the views among ``names`` (and the live one) are made of."""
    current = current_generation(index_dir)
    found = set(names)
    for name in [*names, *([current.name] if current is not None else [])]:
        try:
            manifest = json.loads((index_dir / name / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        found |= {name} | {entry["dir"] for entry in manifest.get("layers", ())}
    return found


def merge_running(index_dir: Path) -> bool:
    """Whether a merge (in any process) holds the merge lock: its ``.merge-`` folder is not garbage."""
    lock = FileLock(index_dir / MERGE_LOCK, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def collect_garbage(index_dir: Path, keep: set[str], *, timeout: float = -1) -> list[str]:
    """Remove old generations and leftovers of interrupted builds (never ``keep``); returns what went.

    Waits (up to ``timeout`` seconds, -1 for ever, else filelock.Timeout) for readers that are opening a
    generation (``load``): once open, a generation's files stay readable through their descriptors and
    maps even after they are unlinked.
    """
    removed = []
    keep = _layers_of(index_dir, set(keep))  # a view's base and segments live as long as the view
    prefixes = ("gen-", "seg-", ".tmp-gen-", ".tmp-seg-", f".{CURRENT}.")
    if not merge_running(index_dir):
        prefixes += (".merge-",)  # a merge's unfinished base, left by a merge that was killed
    with _gc_guard(index_dir, collect=True, timeout=timeout):
        for path in sorted(index_dir.iterdir()):
            if path.name in keep or not path.name.startswith(prefixes):
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
