"""Files in the seeds folder -> Documents (id, title, extracted text, page starts); unreadable files raise
BadDocument with a reason a person can act on, and the caller goes on with the other files.

Which bytes become which text is :mod:`qa.extract`'s job; this module decides which files are read at all
(:func:`check_source`, before a byte is read) and where the reading runs (a worker process with a time limit,
except for plain text).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qa.config import Settings, get_settings
from qa.errors import BadDocument
from qa.extract import IN_PROCESS, SUPPORTED, Extracted, Options, reader_for
from qa.hashing import file_sha256
from qa.models import Document

__all__ = ["SUPPORTED", "MAX_BYTES", "BadDocument", "Failure", "discover", "doc_id", "check_source", "load_document"]

# The one per-file limit, for the seeds folder and for uploads alike (QA_MAX_UPLOAD_MB defaults to it).
MAX_BYTES = 50 * 2**20


@dataclass(frozen=True)
class Failure:
    """A file that was not indexed, and why (shown to the user by name)."""

    path: str
    reason: str


def discover(seeds_dir: Path) -> list[Path]:
    """Every entry under ``seeds_dir`` that is not a folder (recursively), sorted, hidden files skipped.

    Pipes, devices and links are listed too, so that :func:`check_source` can name why each is skipped.
    Microsoft Office's lock files (``~$report.docx``, left beside a file open in Word) are skipped like hidden
    files: they are not documents, and reporting each as a corrupt DOCX would only be noise.
    """
    if not seeds_dir.is_dir():
        return []
    return sorted(
        p
        for p in seeds_dir.rglob("*")
        if not any(part.startswith((".", "~$")) for part in p.relative_to(seeds_dir).parts)
        and (p.is_symlink() or not p.is_dir())
    )


def discover_named(seeds_dir: Path, ids: Iterable[str]) -> list[Path]:
    """The entries :func:`discover` would list among the document ids ``ids`` (a change to those alone:
    an upload or a deletion indexes its own files, not the whole folder), sorted."""
    found = []
    for name in ids:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or any(p in ("", "..") for p in parts):
            continue
        if any(part.startswith((".", "~$")) for part in parts):
            continue
        path = seeds_dir.joinpath(*parts)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            found.append(path)
    return sorted(found)


def doc_id(seeds_dir: Path, path: Path) -> str:
    return path.relative_to(seeds_dir).as_posix()


def check_source(seeds_dir: Path, path: Path) -> Path:
    """The file's real path, once it is known safe to read; BadDocument otherwise, before a byte is read.

    Called before hashing too: a link to /dev/zero, a FIFO or a huge file would otherwise hang the
    indexer (reading forever, or blocking on a pipe) while it holds the index lock.
    """
    root = seeds_dir.resolve()
    real = path.resolve()
    if not real.is_relative_to(root):
        raise BadDocument("link points outside the seeds folder")
    try:
        info = real.stat()
    except OSError as exc:
        raise BadDocument(f"cannot be read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise BadDocument("not a regular file (a device, pipe or socket)")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise BadDocument(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED))}")
    if info.st_size == 0:
        raise BadDocument("empty file")
    if info.st_size > MAX_BYTES:
        raise BadDocument(f"file is {info.st_size / 2**20:.0f} MiB, over the {MAX_BYTES // 2**20} MiB limit")
    return real


def load_document(
    seeds_dir: Path, path: Path, sha256: str | None = None, *, settings: Settings | None = None
) -> Document:
    """Read one file; raises BadDocument with a reason a person can act on.

    ``settings`` gives the OCR languages, time limits and the text limit (the process-wide settings when omitted).
    """
    real = check_source(seeds_dir, path)
    suffix = path.suffix.lower()
    settings = settings if settings is not None else get_settings()
    options = Options.from_settings(settings)
    if suffix in IN_PROCESS:
        extracted = reader_for(suffix)(real, options)
    else:
        from qa.extract.worker import read_in_worker

        extracted = read_in_worker(suffix, real, options)
    check_text_size(extracted.text, settings.max_text_mb)
    return _document(doc_id(seeds_dir, path), path, extracted, sha256 or file_sha256(real))


def check_text_size(text: str, megabytes: int) -> None:
    """BadDocument when the extracted text is over QA_MAX_TEXT_MB: a 50 MiB file can inflate (a PDF, a zip of
    XML) to far more text, and every later step (chunking, embedding, the store's text) grows with it."""
    limit = megabytes * 2**20
    if 4 * len(text) <= limit:  # no character takes more than 4 bytes: surely under, without encoding it
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise BadDocument(f"extracted text is {size / 2**20:.1f} MB, over the {megabytes} MB limit (QA_MAX_TEXT_MB)")


def _document(identifier: str, path: Path, extracted: Extracted, sha256: str) -> Document:
    if not extracted.text.strip():
        raise BadDocument("no text could be extracted")
    return Document(
        id=identifier,
        title=(extracted.title or "").strip() or _title_from_name(path),
        text=extracted.text,
        sha256=sha256,
        pages=extracted.pages,
    )


def _title_from_name(path: Path) -> str:
    stem = re.sub(r"[-_]+", " ", path.stem).strip()
    return stem[:1].upper() + stem[1:] if stem else path.name
