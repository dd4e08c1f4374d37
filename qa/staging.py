"""Where an upload waits and what it replaced: one folder per upload under ``seeds/.qa-uploads``, and its journal.

An upload is written here first, then placed in the seeds folder; the earlier version of each name it
replaces is moved into the folder's ``.previous`` until the new one is known to index. Before anything is
placed, a journal names what will be, so that a crash at any point can be undone: :func:`recover`, run at
start-up before the first sync, takes the unconfirmed new files out and puts the earlier versions back.
The journal goes first when the upload is settled, so a folder without one holds nothing placed.

Each folder is locked (``.lock``, an OS lock that dies with its process) while its upload runs, so that a
`qa index` started beside a live `qa serve` never rolls back an upload that is still going on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from qa.errors import NameConflict
from qa.hashing import file_sha256

log = logging.getLogger(__name__)
STAGING = ".qa-uploads"  # hidden, so neither discovery nor the watcher sees a half-written upload
JOURNAL = "journal.json"
PREVIOUS = ".previous"  # uploaded names never start with a dot
LOCK = ".lock"


@dataclass(frozen=True)
class Placement:
    """One new file to put in the seeds folder: its safe name, where it waits, and its content's hash."""

    name: str
    path: Path
    sha256: str


class Staging:
    """One upload's folder, locked while it lives: new files, the versions they replace, the journal."""

    def __init__(self, seeds_dir: Path) -> None:
        self.seeds_dir = seeds_dir
        self.folder = seeds_dir / STAGING / uuid.uuid4().hex
        self._lock = FileLock(self.folder / LOCK)
        self._lock.acquire()  # creates the folder too: it is never seen unlocked by a live upload
        self._placed: dict[str, bool] = {}  # name -> it replaced an earlier version
        self._settled = True  # False while something placed could not be undone: the journal must stay

    def target(self, name: str) -> Path:
        """Where ``name`` goes in the seeds folder; NameConflict when a folder has it or a file is in its way."""
        path = self.seeds_dir / name
        if path.is_dir() and not path.is_symlink():
            raise NameConflict(f"{name} is a folder in the seeds folder; upload the file under another name")
        for parent in path.relative_to(self.seeds_dir).parents:
            if parent.parts and not (self.seeds_dir / parent).is_dir():
                raise NameConflict(f"{name} cannot be stored: {parent.as_posix()} in the seeds folder is not a folder")
        return path

    def place(self, items: Sequence[Placement]) -> None:
        """Journal first, then each earlier version aside and the new file in its place."""
        targets = [self.target(item.name) for item in items]  # all checked before anything moves
        entries = [{"name": i.name, "sha256": i.sha256, "replaces": _exists(t)} for i, t in zip(items, targets)]
        _write_journal(self.folder / JOURNAL, entries)
        previous = self.folder / PREVIOUS
        previous.mkdir()
        for item, target, entry in zip(items, targets, entries):
            self.target(item.name)  # a folder made there since the check is never moved aside
            if entry["replaces"]:
                (previous / item.name).parent.mkdir(parents=True, exist_ok=True)  # a collection's folder
                target.replace(previous / item.name)  # kept until the new version is known to index
            self._placed[item.name] = entry["replaces"]  # from here on, undo() knows what to put back
            item.path.replace(target)

    def undo(self, name: str) -> None:
        """Take the new file of ``name`` out and put back the version it replaced (if any)."""
        replaced = self._placed.pop(name)
        try:
            (self.seeds_dir / name).unlink(missing_ok=True)
            if replaced:
                (self.folder / PREVIOUS / name).replace(self.seeds_dir / name)
        except OSError:
            self._settled = False  # recover() finishes it at the next start
            raise

    def rollback(self) -> None:
        """Undo every placed file; one that cannot be undone is left for the next start, the others still are."""
        for name in list(self._placed):
            try:
                self.undo(name)
            except OSError:
                log.exception("could not undo the upload of %s; the next start will (see %s)", name, self.folder)

    def close(self) -> None:
        """The upload is settled: what is still placed stays. The journal goes first, then the folder."""
        try:
            if self._settled:
                (self.folder / JOURNAL).unlink(missing_ok=True)
                shutil.rmtree(self.folder, ignore_errors=True)
                _remove_if_empty(self.seeds_dir / STAGING)
        finally:
            self._lock.release()


def recover(seeds_dir: Path) -> list[str]:
    """Roll back every upload a crash left unconfirmed; one line per upload, for the caller to log or print.

    A new file is taken out only while it is still the uploaded content; an earlier version is put back only
    where nothing else has taken its name since. Whatever cannot be put back stays in its folder, named.
    """
    root = seeds_dir / STAGING
    if not root.is_dir():
        return []
    lines = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        lock = FileLock(folder / LOCK)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # an upload in progress in a running service
        try:
            line = _roll_back(seeds_dir, folder)
        finally:
            lock.release()
        if line:
            lines.append(line)
    _remove_if_empty(root)
    return lines


def _roll_back(seeds_dir: Path, folder: Path) -> str | None:
    try:
        entries = json.loads((folder / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:  # stopped before anything was placed
        shutil.rmtree(folder, ignore_errors=True)
        return None
    restored, kept = [], []
    for entry in entries:
        name = entry["name"]
        target, earlier = seeds_dir / name, folder / PREVIOUS / name
        if target.is_file() and not target.is_symlink() and file_sha256(target) == entry["sha256"]:
            if not entry["replaces"] or _exists(earlier):  # else the move never happened: it is the earlier one
                target.unlink()
        if _exists(earlier):
            if _exists(target):
                kept.append(name)
                continue
            earlier.replace(target)
            restored.append(name)
    names = ", ".join(entry["name"] for entry in entries)
    line = f"rolled back an upload that was never confirmed (the service stopped mid-upload): {names}"
    if restored:
        line += f"; earlier version put back: {', '.join(restored)}"
    if kept:
        return f"{line}; changed since, so the earlier version is kept in {folder / PREVIOUS}: {', '.join(kept)}"
    (folder / JOURNAL).unlink()
    shutil.rmtree(folder, ignore_errors=True)
    return line


def _write_journal(path: Path, entries: list[dict]) -> None:
    """Written whole and flushed to disk before anything is placed: a crash leaves it complete or absent."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(entries, out, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
