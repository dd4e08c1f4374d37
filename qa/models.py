"""Plain frozen dataclasses shared by every layer; pydantic lives only at the HTTP edge."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """A document's extracted text; every offset in qa points into ``text``."""

    id: str  # path relative to the seeds folder, with forward slashes
    title: str
    text: str
    sha256: str  # hash of the source file's bytes: decides whether to re-embed
    pages: tuple[int, ...] = ()  # start offset of each page (PDF page, slide) in ``text``; () without pages

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, or None for a format without pages."""
        if not self.pages:
            return None
        return bisect.bisect_right(self.pages, offset) or 1


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``text == document.text[start:end]``."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Span:
    """A character range of a document, with its text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    rank: int
    document: str
    title: str
    start: int
    end: int
    text: str
    highlight: Span
    score: float
    page: int | None = None  # 1-based page (or slide) of the highlight; None for formats without pages
    collection: str = "default"  # the document's collection (qa.collections.of)


@dataclass(frozen=True)
class Turn:
    """One earlier message of a chat, used to understand follow-up questions."""

    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Answer:
    """What every front end (HTTP, web page, Slack, CLI) renders."""

    question: str
    answer: str
    citations: list[Citation] = field(default_factory=list)
    no_answer: bool = False
    took_ms: float = 0.0
    no_answer_reason: str | None = None  # "small_talk", "not_found", or None when answered
    confidence: str | None = None  # "high" or "low" for an answer (qa.confidence), None with no_answer
