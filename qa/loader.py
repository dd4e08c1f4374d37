"""Files in the seeds folder -> Documents (id, title, extracted text); unreadable files become Failures."""

from __future__ import annotations

import hashlib
import io
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.errors import BadDocument
from qa.models import Document

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf"}
MAX_BYTES = 20 * 1024 * 1024  # a bigger file is almost surely not a document someone wants cited
_HIDDEN_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_BLOCK_TAGS = (
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "dd",
    "dt",
    "figcaption",
    "main",
    "aside",
)


@dataclass(frozen=True)
class Failure:
    """A file that was not indexed, and why (shown to the user by name)."""

    path: str
    reason: str


def discover(seeds_dir: Path) -> list[Path]:
    """Every entry under ``seeds_dir`` that is not a folder (recursively), sorted, hidden files skipped.

    Pipes, devices and links are listed too, so that :func:`check_source` can name why each is skipped.
    """
    if not seeds_dir.is_dir():
        return []
    return sorted(
        p
        for p in seeds_dir.rglob("*")
        if not any(part.startswith(".") for part in p.relative_to(seeds_dir).parts)
        and (p.is_symlink() or not p.is_dir())
    )


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


def load_document(seeds_dir: Path, path: Path, sha256: str | None = None) -> Document:
    """Read one file; raises BadDocument with a reason a person can act on."""
    real = check_source(seeds_dir, path)
    suffix = path.suffix.lower()
    data = real.read_bytes()
    if suffix == ".pdf":
        text, title = _pdf(data)
    else:
        raw = _decode(data)
        text, title = (
            _html(raw)
            if suffix in (".html", ".htm")
            else (_clean(raw), _markdown_title(raw) if suffix in (".md", ".markdown") else None)
        )
    if not text.strip():
        raise BadDocument("no text could be extracted")
    return Document(
        id=doc_id(seeds_dir, path),
        title=title or _title_from_name(path),
        text=text,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
    )


def iter_documents(seeds_dir: Path, paths: list[Path] | None = None) -> Iterator[Document | Failure]:
    """One document at a time (memory stays bounded); a bad file yields a Failure and the rest go on."""
    for path in discover(seeds_dir) if paths is None else paths:
        try:
            yield load_document(seeds_dir, path)
        except BadDocument as exc:
            yield Failure(doc_id(seeds_dir, path), str(exc))
        except Exception as exc:  # a parser crash must never stop the other files
            yield Failure(doc_id(seeds_dir, path), f"could not be read: {type(exc).__name__}: {exc}")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise BadDocument("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadDocument(f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from exc


def _clean(text: str) -> str:
    """Newlines normalized to LF; every offset qa reports is into this text."""
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _html(raw: str) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(_HIDDEN_TAGS):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (re.sub(r"\s+", " ", line).strip() for line in soup.get_text().splitlines())
    text = "\n".join(line for line in lines if line)
    if not title:
        heading = soup.find(["h1", "h2"])
        title = heading.get_text(" ", strip=True) if heading else None
    return text, title or None


def _pdf(data: bytes) -> tuple[str, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadDocument("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata or {}).get("/Title") if reader.metadata else None
    except BadDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadDocument(f"corrupt PDF: {exc}") from exc
    text = _clean("\n\n".join(page.strip() for page in pages if page.strip()))
    return text, str(title).strip() if title else None


def _markdown_title(raw: str) -> str | None:
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", raw, re.MULTILINE)
    return match.group(1) if match else None


def _title_from_name(path: Path) -> str:
    stem = re.sub(r"[-_]+", " ", path.stem).strip()
    return stem[:1].upper() + stem[1:] if stem else path.name
