"""A persistent embedding cache: (embedder name, text hash) -> vector, in SQLite under ``index/cache/``.

Why a cache beside the generations: a generation only holds the texts of the documents it indexes, so a
file that is removed and re-added, a rebuild after an interrupted run, or a chunking change that keeps
most sentences would re-embed texts the model has already seen. SQLite gives atomic, append-only writes
(a crash loses at most the batch in flight, never the cache) with no extra dependency.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

_SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


class EmbeddingCache:
    """One SQLite file per embedder (its name hashed into the file name), so models never mix."""

    def __init__(self, folder: Path, embedder_name: str, dim: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tag = hashlib.sha1(embedder_name.encode("utf-8")).hexdigest()[:16]
        self.path = folder / f"embeddings-{tag}.sqlite"
        self.dim = dim
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('embedder', ?)", (embedder_name,))
        self._db.commit()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part):
                vector = np.frombuffer(blob, dtype=np.float32)
                if len(vector) == self.dim:
                    found[key] = vector
        return found

    def put_many(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        rows = [(key, np.asarray(vector, dtype=np.float32).tobytes()) for key, vector in items]
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()
