"""The local index's public names, where the rest of qa imports them from (``from qa import store``).

The store itself lives in ``qa.stores``: ``base`` (Hit, SearchIndex, the writer interface), ``faiss`` (a
generation in memory) and ``local`` (generations on disk); Milvus in ``qa.stores.milvus``.
"""

from __future__ import annotations

from qa.stores.base import DocRows, Hit, SearchIndex
from qa.stores.faiss import IndexData, assemble
from qa.stores.local import (
    CURRENT,
    FORMAT,
    MANIFEST,
    REBUILD_HINT,
    collect_garbage,
    current_generation,
    load,
    read_manifest,
    save,
)

__all__ = [
    "CURRENT",
    "FORMAT",
    "MANIFEST",
    "REBUILD_HINT",
    "DocRows",
    "Hit",
    "IndexData",
    "SearchIndex",
    "assemble",
    "collect_garbage",
    "current_generation",
    "load",
    "read_manifest",
    "save",
]
