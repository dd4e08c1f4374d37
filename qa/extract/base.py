"""What every reader returns and takes; small helpers shared by the readers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.config import Settings

DEFAULT_OCR_LANGUAGES = "eng+rus"


@dataclass(frozen=True)
class Extracted:
    """A file's text (every offset qa reports points into it), its title if the file names one, page starts."""

    text: str
    title: str | None = None
    pages: tuple[int, ...] = ()  # start offset of each PDF page or slide in ``text``; () without pages


@dataclass(frozen=True)
class Options:
    """How files are read; built from :class:`qa.config.Settings` (picklable: it travels to the worker)."""

    ocr_languages: str = DEFAULT_OCR_LANGUAGES  # Tesseract's -l argument, e.g. "eng+rus"
    tesseract_cmd: str = "tesseract"
    ocr_page_timeout: float = 60.0  # seconds for one page or image
    parse_timeout: float = 120.0  # seconds a parser may run without progress before it is stopped
    ocr_workers: int = 0  # pages read at once; 0 = one per CPU core

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(
            ocr_languages=settings.ocr_languages,
            tesseract_cmd=settings.tesseract_cmd,
            ocr_page_timeout=settings.ocr_page_timeout,
            parse_timeout=settings.parse_timeout,
        )


def clean(text: str) -> str:
    """Newlines normalized to LF, a leading BOM dropped: offsets must not depend on the file's line endings."""
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def squeeze(text: str) -> str:
    """One line of text: runs of whitespace (including newlines inside a cell or a run) become one space."""
    return re.sub(r"\s+", " ", text).strip()


def join_blocks(blocks: list[str]) -> str:
    """Non-empty blocks (paragraphs, rows), one per line."""
    return "\n".join(block for block in (b.strip() for b in blocks) if block)


def join_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """Pages separated by a blank line, and the start offset of each (an empty page starts where the next does)."""
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for page in pages:
        page = page.strip()
        if page and parts:
            parts.append("\n\n")
            length += 2
        starts.append(length)
        if page:
            parts.append(page)
            length += len(page)
    return "".join(parts), tuple(starts)


_heartbeat: list = []


def set_heartbeat(callback) -> None:  # noqa: ANN001 - any zero-argument callable
    """Called by the worker process: ``callback()`` then tells the parent that a long read is progressing."""
    _heartbeat[:] = [callback]


def heartbeat() -> None:
    """A long reader (OCR, page by page) calls this after each unit of work, so its time limit starts over."""
    for callback in _heartbeat:
        callback()
