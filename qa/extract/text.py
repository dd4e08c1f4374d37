"""Plain text, Markdown and HTML: decoded strictly (a wrong guess at an encoding would corrupt citations)."""

from __future__ import annotations

import re
from pathlib import Path

from qa.errors import BadDocument
from qa.extract.base import Extracted, Options, clean

_HIDDEN_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_BLOCK_TAGS = (
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article",
    "header", "footer", "blockquote", "pre", "hr", "dd", "dt", "figcaption", "main", "aside",
)  # fmt: skip


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is refused with what to do about it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise BadDocument("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadDocument(f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from exc


def read_plain(path: Path, options: Options) -> Extracted:
    return Extracted(clean(decode(path.read_bytes())))


def read_markdown(path: Path, options: Options) -> Extracted:
    raw = decode(path.read_bytes())
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", raw, re.MULTILINE)
    return Extracted(clean(raw), match.group(1) if match else None)


def read_html(path: Path, options: Options) -> Extracted:
    text, title = html_to_text(decode(path.read_bytes()))
    return Extracted(text, title)


def html_to_text(raw: str | bytes) -> tuple[str, str | None]:
    """The visible text of an HTML page, one block element per line, and its title (or first heading).

    Shared by HTML files, EPUB chapters and HTML e-mail bodies.
    """
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
