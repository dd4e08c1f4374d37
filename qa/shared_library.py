"""Uploads and deletions over a shared store (Milvus), where several replicas serve one index.

An upload's document lives in the store, not in a seeds folder: no replica needs the file or a shared disk,
every replica lists, answers and deletes it, and no folder sync removes it or puts it back (qa.origins).
A folder's own documents still come and go with its files (the live re-index, as with the local store).
The local store keeps qa.library, where the seeds folder is the one source of truth.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from qa import collections as colls
from qa import loader, origins
from qa.answer import Answerer
from qa.collections import Scope
from qa.config import Settings
from qa.errors import BadDocument, DocumentConflict, DocumentNotFound
from qa.filenames import safe_name
from qa.indexer import index_uploads, remove_shared
from qa.library import Outcome, Summary, WriteFailed
from qa.live import LIVE_BATCH


class SharedLibrary:
    """Library's interface (add, remove, page) for a shared store; one change at a time in this process."""

    def __init__(self, settings: Settings, answerer: Callable[[], Answerer]) -> None:
        # small batches while serving, as the live re-index: a question slips in between two
        self.settings = settings.model_copy(update={"batch_size": min(settings.batch_size, LIVE_BATCH)})
        self.answerer = answerer
        self.origin = origins.folder(settings)
        self._lock = threading.Lock()

    def add(self, files: list[tuple[str, BinaryIO]], collection: str = colls.DEFAULT) -> list[Outcome]:
        """Index each (client name, content) under its safe name in ``collection`` (ids like ``hr/policy.pdf``,
        as in a seeds folder), held by the upload origin; report each file."""
        colls.check(collection)
        prefix = "" if collection == colls.DEFAULT else f"{collection}/"
        outcomes: dict[int, Outcome] = {}
        with self._lock, tempfile.TemporaryDirectory(prefix="qa-upload-") as tmp:
            staged = _stage(files, Path(tmp), outcomes, prefix)
            if staged:
                answerer = self.answerer()
                report, index = index_uploads(self.settings, Path(tmp), list(staged), embedder=answerer.embedder)
                answerer.swap(index)
                failures = {f.path: f.reason for f in report.failed}
                for name, position in staged.items():
                    doc = index.document(name) if name not in failures else None
                    error = failures.get(name) or (None if doc else "was not indexed")
                    outcomes[position] = Outcome(name, doc.title if doc else None, error)
        return [outcomes[i] for i in range(len(files))]

    def remove(self, doc_id: str) -> None:
        """Delete a document for every replica; one that another replica's folder holds is a 409."""
        with self._lock:
            answerer = self.answerer()
            index = answerer.index
            if index is None or index.document(doc_id) is None:
                raise DocumentNotFound(f"no document with id {doc_id!r}")
            holders = index.holders(doc_id)  # type: ignore[attr-defined] - a shared store's index
            folders = {o for o in holders if origins.is_folder(o) and o != self.origin}
            if folders:
                raise DocumentConflict(f"{doc_id} is a document of {origins.describe(folders)}: remove the file there")
            if self.origin in holders:  # first: a crash before the rows go leaves the next sync to remove them
                try:
                    self._path(doc_id).unlink(missing_ok=True)
                except OSError as exc:
                    raise WriteFailed(f"cannot remove {doc_id}: {exc.strerror or exc}") from exc
            answerer.swap(remove_shared(self.settings, doc_id, embedder=answerer.embedder))

    def page(self, offset: int, limit: int, collections: Scope = None) -> tuple[list[Summary], int]:
        """Documents ``offset .. offset+limit`` in id order (of ``collections`` when given), and how many there
        are in all: one query for the page's rows, titles and page counts (no text is read)."""
        index = self.answerer().index
        if index is None:
            return [], 0
        rows, total = index.document_page(offset, limit, collections)  # type: ignore[attr-defined] - Milvus
        summaries = [
            Summary(doc_id, title, _size(self._path(doc_id)), pages or None, None, colls.of(doc_id))
            for doc_id, title, pages in rows
        ]
        return summaries, total

    def collections(self) -> dict[str, int]:
        """Collection -> how many documents it holds, over the whole store (only collections holding some)."""
        index = self.answerer().index
        return {} if index is None else index.collection_counts()  # type: ignore[attr-defined]

    def _path(self, doc_id: str) -> Path:
        """The file a document id names in this replica's folder (ids are checked again here)."""
        parts = PurePosixPath(doc_id).parts
        if not parts or PurePosixPath(doc_id).is_absolute() or any(p in ("", ".", "..") for p in parts):
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        return self.settings.seeds_dir.joinpath(*parts)


def _stage(
    files: list[tuple[str, BinaryIO]], folder: Path, outcomes: dict[int, Outcome], prefix: str = ""
) -> dict[str, int]:
    """Write each file under ``prefix`` (a collection's folder) and its safe name in ``folder``: name -> position
    in the request; refusals to outcomes."""
    staged: dict[str, int] = {}
    for position, (client_name, content) in enumerate(files):
        name = client_name
        try:
            name = prefix + safe_name(client_name)
            suffix = PurePosixPath(name).suffix.lower()
            if suffix not in loader.SUPPORTED:  # refused before a byte is stored
                supported = ", ".join(sorted(loader.SUPPORTED))
                raise BadDocument(f"unsupported file type {suffix or '(none)'!r}; supported: {supported}")
            if name in staged:
                raise BadDocument("another file in this upload has the same name")
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            with (folder / name).open("wb") as out:
                shutil.copyfileobj(content, out, 1024 * 1024)
            staged[name] = position
        except BadDocument as exc:
            outcomes[position] = Outcome(name, None, str(exc))
        except OSError as exc:  # a full disk: this file fails, the request does not
            outcomes[position] = Outcome(name, None, f"could not be stored: {exc.strerror or exc}")
    return staged


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
