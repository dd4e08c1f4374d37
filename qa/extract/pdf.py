"""PDF: the text layer through pypdf, page by page; pages without one are rendered (pypdfium2) and OCR'd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import BadDocument
from qa.extract.base import Extracted, Options, clean, join_pages
from qa.extract.ocr import OcrUnavailable, ocr_pages, timeout_reason

if TYPE_CHECKING:
    from PIL.Image import Image

MIN_TEXT_CHARS = 8  # a page with less text than this (a page number, a stray mark) is treated as scanned
RENDER_DPI = 300  # Tesseract's sweet spot for body text
MAX_RENDER_PIXELS = 40_000_000  # a poster-sized page is rendered at a lower resolution, not at 300 dpi


def read_pdf(path: Path, options: Options) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not _unlock(reader):
            raise BadDocument("encrypted PDF: it needs a password to open; save a copy without a password")
        pages = [clean(page.extract_text() or "").strip() for page in reader.pages]
        metadata = reader.metadata
        title = metadata.get("/Title") if metadata else None
    except (FileNotDecryptedError, DependencyError) as exc:
        raise BadDocument(f"encrypted PDF that cannot be opened ({exc}); save a copy without a password") from exc
    except PdfReadError as exc:
        raise BadDocument(f"corrupt PDF: {exc}") from exc
    scanned = [number for number, text in enumerate(pages) if len(text) < MIN_TEXT_CHARS]
    timed_out = False
    if scanned:
        try:
            for number, text in zip(scanned, ocr_pages(_render(path, scanned), options)):
                pages[number] = text or ""
                timed_out = timed_out or text is None
        except OcrUnavailable as exc:
            if len(scanned) == len(pages):  # nothing but scans: say why nothing could be read
                raise BadDocument(f"scanned PDF (no text layer) {exc}") from exc
            for number in scanned:  # a mixed PDF keeps its text pages
                pages[number] = ""
    text, starts = join_pages(pages)
    if not text and timed_out:
        raise BadDocument(f"scanned PDF: {timeout_reason(options)}")
    if not text and scanned:
        raise BadDocument("scanned PDF, but OCR found no legible text on any page")
    return Extracted(text, str(title).strip() if title else None, starts)


def _unlock(reader) -> bool:  # noqa: ANN001 - a pypdf PdfReader
    """Many PDFs are encrypted only against editing (an empty user password): those open."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - any failure to decrypt means a password is needed
        return False


def _render(path: Path, numbers: list[int]) -> Iterator[Image]:
    """The given pages (0-based) as grayscale images at 300 dpi, one at a time (pdfium is not thread-safe)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        for number in numbers:
            page = document[number]
            width, height = page.get_size()
            scale = RENDER_DPI / 72
            scale = min(scale, (MAX_RENDER_PIXELS / max(width * height, 1)) ** 0.5)
            yield page.render(scale=scale, grayscale=True).to_pil()
            page.close()
    finally:
        document.close()
