"""A stored ``.npy`` array read by ``pread``, for the arrays a question reads a few scattered rows of.

A hit reads its chunk's sentence rows, text and latent terms, and an approximate index re-scores a few
candidate chunk rows: a few hundred bytes at scattered offsets of files that reach gigabytes at a million
chunks. Through a memory map each such read faults in its page and
the kernel maps the neighbouring cached pages too (fault-around, which ``MADV_RANDOM`` does not turn off):
1,000 questions on a 1M-chunk generation left 3.4 GB of its pages in the server's resident set. ``pread``
copies the bytes asked for and maps nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


class ArrayFile:
    """Rows of a C-ordered ``.npy`` array read on demand: ``[start:stop]`` in one read, ``[row_ids]`` one read
    a row; ``np.asarray`` reads it whole."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran or not shape:
            raise ValueError(f"{path} is not a C-ordered array")
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        # held open for the object's life: a generation replaced by a live re-index is deleted from disk while
        # requests in flight may still read it (pread on one descriptor is safe across threads)
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if not isinstance(key, slice):  # row ids
            rows = np.asarray(key, np.int64)
            if len(rows) > 1 and np.all(np.diff(rows) == 1):  # a document's rows: one read
                return self[int(rows[0]) : int(rows[-1]) + 1]
            out = np.empty((len(rows), *self.shape[1:]), self.dtype)
            for i, row in enumerate(rows):
                out[i] = self[int(row) : int(row) + 1][0]
            return out
        if key.step not in (None, 1):
            raise TypeError(f"{self.path.name} is read by contiguous slices or row ids, not {key!r}")
        start, stop, _ = key.indices(self.shape[0])
        count = max(stop - start, 0)
        data = os.pread(self._fd, count * self.row_bytes, self.offset + start * self.row_bytes) if count else b""
        if len(data) != count * self.row_bytes:
            raise OSError(f"{self.path} is shorter than its header says")
        return np.frombuffer(data, self.dtype).reshape((count, *self.shape[1:]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
