"""A whole generation written from documents read a batch at a time, in memory that does not grow with it.

A merge (qa.stores.merge) writes every live document of a view into a new base. Collected first and
assembled at once (``qa.stores.faiss.assemble``), a million chunks decode to about 13 GB of float rows
before FAISS sees them (2 GB resident at 100k chunks). Here each batch of about ``BATCH_CHUNKS`` chunks is
assembled into the same arrays (``rows_arrays``) and appended to the generation's ``.npy`` files on disk,
its offsets shifted past the batches before it; the chunk vectors go to ``chunk_rows.npy`` as float16, the
store's own copy of them (qa.vector_index). FAISS is then built from that file read by ``pread`` in
blocks, and the statistics are summed from the rows as stored, block by block: what ``assemble`` writes for
the same documents, to the precision the statistics keep.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np

from qa import centering, vector_index
from qa import collections as colls
from qa.stores.arrayfile import ArrayFile
from qa.stores.base import DocRows
from qa.stores.faiss import ARRAYS, document_entries, rows_arrays
from qa.stores.local import staged_generation

BATCH_CHUNKS = 10_000  # chunks decoded at a time: ~13 KB of float rows each, ~130 MB a batch
STATS_BLOCK = 20_000  # stored rows summed at a time (float64 copies: 143 MB at 896 columns)
HEADER = 128  # bytes reserved for each .npy header (a shape of two 12-digit numbers fits with room)


class NpyAppender:
    """A ``.npy`` file written row block by row block: the header, whose shape is known only at the end,
    is written last into space reserved for it."""

    def __init__(self, path: Path, dtype: np.dtype, tail: tuple[int, ...]) -> None:
        self.path, self.dtype, self.tail = path, np.dtype(dtype), tail
        self.rows = 0
        self._file: BinaryIO = path.open("wb")
        self._file.write(b"\0" * HEADER)

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, self.dtype)
        if block.shape[1:] != self.tail:
            raise ValueError(f"{self.path.name}: rows of shape {block.shape[1:]}, expected {self.tail}")
        self._file.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> None:
        shape = (self.rows, *self.tail)
        descr = np.lib.format.dtype_to_descr(self.dtype)
        text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
        body = text.ljust(HEADER - 10 - 1).encode("latin1") + b"\n"
        if len(body) != HEADER - 10:
            raise ValueError(f"{self.path.name}: header {text!r} exceeds {HEADER} bytes")
        self._file.seek(0)
        self._file.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body)
        self._file.close()


def _batches(ids: Iterable[str], rows_of: Callable[[str], DocRows]) -> Iterator[list[DocRows]]:
    batch: list[DocRows] = []
    chunks = 0
    for doc_id in ids:
        rows = rows_of(doc_id)
        batch.append(rows)
        chunks += len(rows.chunks)
        if chunks >= BATCH_CHUNKS:
            yield batch
            batch, chunks = [], 0
    if batch:
        yield batch


class _Files:
    """The generation's arrays, each appended batch by batch with its offsets moved past the earlier ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, NpyAppender] = {}
        self.table = [""]  # chunk_languages' codes over every batch
        self.languages: list[np.ndarray] = []  # each chunk's code into ``table``
        self.collections: list[np.ndarray] = []  # each chunk's collection, a code into ``collection_table``
        self.collection_table: dict[str, int] = {}
        self.docs = self.bytes = self.sentences = self.contexts = self.terms = 0

    def _append(self, name: str, block: np.ndarray) -> None:
        if name not in self.files:
            self.files[name] = NpyAppender(self.folder / f"{name}.npy", block.dtype, block.shape[1:])
        self.files[name].append(block)

    def add(self, header: dict[str, Any], batch: list[DocRows]) -> None:
        arrays, raw, table = rows_arrays(header, batch)
        codes = np.array([self._code(language) for language in table], np.uint8)
        languages = codes[arrays["chunk_languages"]]
        chunks = arrays["chunks"].copy()
        chunks[:, 0] += self.docs
        chunks[:, 3:5] += self.sentences
        contexts = arrays["contexts"].copy()
        contexts[contexts >= 0] += self.contexts
        ptr = arrays["sparse_ptr"] + self.terms
        shifted = {
            "chunks": chunks,
            "doc_bytes": arrays["doc_bytes"] + self.bytes,
            "chunk_bytes": arrays["chunk_bytes"] + self.bytes,
            "chunk_languages": languages,
            "contexts": contexts,
            "sparse_ptr": ptr if "sparse_ptr" not in self.files else ptr[1:],  # one leading 0 in all
        }
        for name in ARRAYS:
            self._append(name, shifted.get(name, arrays[name]))
        self._append("chunk_rows", raw.astype(np.float16))
        owners = [self.collection_table.setdefault(colls.of(r.doc.id), len(self.collection_table)) for r in batch]
        self.collections.append(np.repeat(np.array(owners, np.int32), [len(r.chunks) for r in batch]))
        self.languages.append(languages)
        self.docs += len(batch)
        self.bytes += len(arrays["texts"])
        self.sentences += len(arrays["sentences"])
        self.contexts += len(arrays["context_rows"])
        self.terms += len(arrays["sparse_ids"])

    def _code(self, language: str) -> int:
        if language not in self.table:
            self.table.append(language)
        return self.table.index(language)

    def close(self) -> None:
        for appender in self.files.values():
            appender.close()


def write_streamed(
    index_dir: Path,
    header: dict[str, Any],
    ids: Iterable[str],
    rows_of: Callable[[str], DocRows],
    index_kind: str,
    *,
    prefix: str = "gen-",
    staging: str = ".tmp-",
    stamp: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """The documents ``ids`` (in that order, each read by ``rows_of``) written as one generation, as
    ``assemble`` and ``write_generation`` would write it; ``stamp`` may amend the manifest before it is
    written. Returns the folder (a ``.merge-`` staging folder stays unrenamed, as ``write_generation``)."""
    with staged_generation(index_dir, prefix=prefix, staging=staging) as (folder, finish):
        files = _Files(folder)
        entries: dict[str, dict[str, Any]] = {}
        try:
            for batch in _batches(ids, rows_of):
                files.add(header, batch)
                entries.update(document_entries(batch))
        finally:
            files.close()
        if not entries:
            raise ValueError("a streamed generation needs at least one document")
        rows = ArrayFile(folder / "chunk_rows.npy")
        n = len(rows)
        kind = vector_index.choose_kind(n, index_kind)
        flat = kind == "flat" or n < 1000  # as vector_index.build decides
        vectors: Any = np.asarray(rows, np.float32) if flat else rows
        index, info = vector_index.build(vectors, kind)
        languages = np.concatenate(files.languages)
        owners = np.concatenate(files.collections)
        stats = _stats(index, info, rows, languages, files.table, owners, files.collection_table)
        del vectors, rows
        if info["kind"] == "flat":  # the index holds the rows itself
            (folder / "chunk_rows.npy").unlink()
        faiss.write_index(index, str(folder / "index.faiss"))
        del index
        manifest = dict(
            header,
            documents=entries,
            languages=files.table,
            search_index=info,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        if stamp is not None:
            stamp(manifest)
        written = finish(manifest, stats)
    return written


def _stats(
    index: Any,
    info: dict[str, Any],
    rows: ArrayFile,
    languages: np.ndarray,
    table: list[str],
    owners: np.ndarray,
    collection_table: dict[str, int],
) -> dict[str, Any]:
    """The statistics of the rows as stored (a flat index's decoded codes, else the float16 rows), whole and
    per collection, summed block by block."""
    dim = index.d
    whole = centering.Stats(dim=dim)
    per = {name: centering.Stats(dim=dim) for name in collection_table}
    names = {code: name for name, code in collection_table.items()}
    for start in range(0, len(languages), STATS_BLOCK):
        stop = min(start + STATS_BLOCK, len(languages))
        if info["kind"] == "flat":
            stored = index.reconstruct_n(start, stop - start)
        else:
            stored = np.asarray(rows[start:stop], np.float32)
        langs = [table[int(c)] for c in languages[start:stop]]
        whole.add(stored, langs)
        block = owners[start:stop]
        for code in np.unique(block):
            picked = np.flatnonzero(block == code)
            per[names[int(code)]].add(stored[picked], [langs[i] for i in picked])
    return {
        "centering": centering_json(whole),
        "collections": {name: centering_json(part) for name, part in sorted(per.items())},
    }


def centering_json(stats: centering.Stats) -> dict[str, Any]:
    return dict(json.loads(stats.to_json()))
