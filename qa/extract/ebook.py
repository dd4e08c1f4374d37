"""EPUB through EbookLib: the chapters in reading (spine) order, each chapter's XHTML reduced to its text."""

from __future__ import annotations

from pathlib import Path

from qa.errors import BadDocument
from qa.extract.archive import check_zip
from qa.extract.base import Extracted, Options
from qa.extract.text import html_to_text


def read_epub(path: Path, options: Options) -> Extracted:
    import ebooklib
    from ebooklib import epub

    check_zip(path, "EPUB")
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except (epub.EpubException, KeyError) as exc:
        raise BadDocument(f"corrupt EPUB: {exc}") from exc
    chapters = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        # the navigation document (table of contents) only repeats the chapters' headings
        is_nav = isinstance(item, epub.EpubNav) or "nav" in (getattr(item, "properties", None) or [])
        if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT and not is_nav:
            text, _ = html_to_text(item.get_content())
            if text:
                chapters.append(text)
    titles = book.get_metadata("DC", "title")
    return Extracted("\n\n".join(chapters), (titles[0][0].strip() or None) if titles else None)
