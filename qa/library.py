"""Adding, removing and listing documents while serving: files in the seeds folder, indexed by the Reindexer.

The seeds folder stays the one source of truth: an upload is a file written there and a deletion is a file
removed, and the live re-index (qa.live) brings the index in line for those files alone (not the whole
folder: the change costs what it changes), exactly as when someone edits them in the folder by hand. What
this module adds is the guarantee the API promises: a request answers once its change is searchable (it
waits for a build that saw it), a file that cannot be indexed never stays in the folder, and an upload that
replaces a document by the same name never loses the earlier version: not when the new one is refused, not
when the store or the service fails after it is placed (the upload is undone and the request fails), not
when the process dies (qa.staging journals the upload, and the next start rolls it back).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol, cast

from qa import collections as colls
from qa import loader
from qa.answer import Answerer
from qa.collections import Scope
from qa.errors import BadDocument, DocumentNotFound, QAError
from qa.filenames import safe_name
from qa.hashing import file_sha256
from qa.live import BuildResult, Reindexer
from qa.staging import Placement, Staging

log = logging.getLogger(__name__)


class WriteFailed(QAError):
    """A change to the seeds folder could not be made or indexed (the message says why)."""


@dataclass(frozen=True)
class Outcome:
    """One uploaded file: indexed (with its title) or failed (with the reason)."""

    id: str
    title: str | None
    error: str | None

    @property
    def status(self) -> str:
        return "failed" if self.error else "indexed"


@dataclass(frozen=True)
class Summary:
    """A document as GET /documents lists it."""

    id: str
    title: str
    size: int | None
    pages: int | None
    indexed_at: str | None
    collection: str = colls.DEFAULT


class Listing(Protocol):
    """What listing documents reads of the local store's index: a generation (qa.stores.faiss.IndexData) and
    a segmented view (qa.stores.segments.SegmentedIndex) both answer it from their manifests alone."""

    def document_ids(self, collections: Scope = None) -> list[str]: ...

    def document_entry(self, doc_id: str) -> dict[str, Any]: ...

    def collection_counts(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class _Staged(Placement):
    index: int  # position in the request


class Library:
    """Uploads and deletions, one at a time (they share the seeds folder and wait for the same builds)."""

    def __init__(self, seeds_dir: Path, reindexer: Reindexer, answerer: Callable[[], Answerer]) -> None:
        self.seeds_dir = seeds_dir
        self.reindexer = reindexer
        self.answerer = answerer
        self._lock = threading.Lock()

    def add(self, files: list[tuple[str, BinaryIO]], collection: str = colls.DEFAULT) -> list[Outcome]:
        """Store each (client name, content) under its safe name in ``collection``'s folder (``seeds/<name>/``;
        ``default``: the seeds folder itself), index them, and report each file (ids like ``hr/policy.pdf``).

        A file is refused before it is stored when its name or type is unusable, or it is empty or too big
        (loader.check_source); the others are placed, one build indexes them all, and any that the build
        refused is removed again (the earlier version of its name put back). A name that a folder holds
        fails the whole request (NameConflict) before anything is stored, as does a collection whose name a
        file in the seeds folder holds. An invalid collection name is BadCollection.
        """
        folder = _folder(collection)
        outcomes: dict[int, Outcome] = {}
        with self._lock:
            try:
                staging = Staging(self.seeds_dir)
            except OSError as exc:
                raise WriteFailed(f"cannot store uploads in {self.seeds_dir}: {exc.strerror or exc}") from exc
            try:
                staged = self._stage(files, staging, outcomes, folder)
                if staged:
                    outcomes.update(self._index(staged, staging))
            finally:
                staging.close()
        return [outcomes[i] for i in range(len(files))]

    def remove(self, doc_id: str) -> None:
        """Delete a document's file and wait until the index no longer holds it."""
        with self._lock:
            index = self.answerer().index
            if index is None or index.document(doc_id) is None:
                raise DocumentNotFound(f"no document with id {doc_id!r}")
            path = self._path(doc_id)
            try:
                path.unlink(missing_ok=True)  # a link is removed itself, never what it points to
            except OSError as exc:
                raise WriteFailed(f"cannot remove {doc_id}: {exc.strerror or exc}") from exc
            result = self._rebuild(f"DELETE /documents/{doc_id}", [doc_id])
            if result.error is not None:
                raise WriteFailed(f"{doc_id} was removed from the seeds folder, but re-indexing failed: {result.error}")

    def page(self, offset: int, limit: int, collections: Scope = None) -> tuple[list[Summary], int]:
        """Documents ``offset .. offset+limit`` in id order (of ``collections`` when given), and how many there
        are in all. Only the page's manifest entries are read: no document's text is decoded to list it."""
        index = self._listing()
        if index is None:
            return [], 0
        ids = index.document_ids(collections)
        summaries = []
        for doc_id in ids[offset : offset + limit]:
            entry = index.document_entry(doc_id)
            summaries.append(
                Summary(
                    id=doc_id,
                    title=entry.get("title", doc_id),
                    size=_size(self._path(doc_id)),
                    pages=len(entry.get("pages", ())) or None,
                    indexed_at=entry.get("indexed_at"),
                    collection=colls.of(doc_id),
                )
            )
        return summaries, len(ids)

    def collections(self) -> dict[str, int]:
        """Collection -> how many documents it holds, over the whole store (only collections holding some)."""
        index = self._listing()
        return {} if index is None else index.collection_counts()

    def _listing(self) -> Listing | None:
        """The served index as a listing: the local store's (a generation or a segmented view) is one."""
        return cast("Listing | None", self.answerer().index)

    def _stage(
        self, files: list[tuple[str, BinaryIO]], staging: Staging, outcomes: dict[int, Outcome], folder: str
    ) -> list[_Staged]:
        staged: list[_Staged] = []
        names: set[str] = set()
        for position, (client_name, content) in enumerate(files):
            name = client_name
            try:
                name = folder + safe_name(client_name)
                suffix = PurePosixPath(name).suffix.lower()
                if suffix not in loader.SUPPORTED:  # refused before a byte is stored
                    supported = ", ".join(sorted(loader.SUPPORTED))
                    raise BadDocument(f"unsupported file type {suffix or '(none)'!r}; supported: {supported}")
                if name in names:
                    raise BadDocument("another file in this upload has the same name")
                names.add(name)
                self._collection_folder(folder)
                staging.target(name)  # NameConflict (a folder has the name) fails the request: nothing stored
                path = staging.folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as out:
                    shutil.copyfileobj(content, out, 1024 * 1024)
                loader.check_source(self.seeds_dir, path)  # empty, too big
                staged.append(_Staged(name, path, file_sha256(path), position))
            except BadDocument as exc:
                outcomes[position] = Outcome(name, None, str(exc))
            except OSError as exc:  # a full disk: this file fails, the request does not
                outcomes[position] = Outcome(name, None, f"could not be stored: {exc.strerror or exc}")
        return staged

    def _collection_folder(self, folder: str) -> None:
        """Create a collection's folder on its first upload; a file of that name is left to NameConflict."""
        if folder:
            path = self.seeds_dir / folder.rstrip("/")
            if not path.exists() and not path.is_symlink():
                path.mkdir(parents=True, exist_ok=True)

    def _index(self, staged: list[_Staged], staging: Staging) -> dict[int, Outcome]:
        """Put the staged files in place, build, and undo the ones the build refused.

        Whatever fails once a file is placed (the store, the service shutting down, a lookup) undoes them all
        and fails the request: the folder is as it was, and a rebuild is asked for in case the store saw any.
        """
        try:
            staging.place(staged)
            names = [item.name for item in staged]
            result = self._rebuild("upload: " + ", ".join(names), names)
            outcomes = self._judge(staged, result)
        except BaseException:
            staging.rollback()
            self.reindexer.request("upload undone")
            raise
        refused = [item.name for item in staged if outcomes[item.index].error]
        for name in refused:
            staging.undo(name)
        if refused:  # the build dropped the earlier versions with the refused files (a shutdown: the next start)
            ticket = self.reindexer.submit("upload: earlier versions of refused files put back", refused)
            if ticket:
                self.reindexer.wait_for(ticket)
        return outcomes

    def _judge(self, staged: list[_Staged], result: BuildResult) -> dict[int, Outcome]:
        """Each file indexed (as uploaded) or failed, with the build's reason."""
        failures = {f.path: f.reason for f in result.report.failed} if result.report else {}
        index = self.answerer().index
        outcomes: dict[int, Outcome] = {}
        for item in staged:
            doc = index.document(item.name) if index is not None else None
            if doc is not None and doc.sha256 == item.sha256:
                outcomes[item.index] = Outcome(item.name, doc.title, None)
                continue
            reason = failures.get(item.name) or (f"re-indexing failed: {result.error}" if result.error else None)
            outcomes[item.index] = Outcome(item.name, None, reason or "was not indexed (changed meanwhile?)")
        return outcomes

    def _rebuild(self, trigger: str, names: list[str]) -> BuildResult:
        """Index the files of ``names`` (the change's own: not the whole folder) and wait for it."""
        ticket = self.reindexer.submit(trigger, names)
        result = self.reindexer.wait_for(ticket) if ticket else None
        if result is None:
            raise WriteFailed("the service is shutting down; the change was not indexed")
        return result

    def _path(self, doc_id: str) -> Path:
        """The file of a document id (ids come from the index's own table, and are checked again here)."""
        parts = PurePosixPath(doc_id).parts
        if not parts or PurePosixPath(doc_id).is_absolute() or any(p in ("", ".", "..") for p in parts):
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        return self.seeds_dir.joinpath(*parts)


def _folder(collection: str) -> str:
    """The id prefix of a collection's documents: ``hr/`` for ``hr``, nothing for ``default``."""
    colls.check(collection)
    return "" if collection == colls.DEFAULT else f"{collection}/"


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
