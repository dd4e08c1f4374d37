"""An Answer as a Slack Block Kit message: pure functions, so the layout and Slack's limits are testable offline."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from qa.models import Answer, Citation

SECTION_LIMIT = 3000  # characters of a section block's text
CONTEXT_LIMIT = 2000  # characters of one context element's text
FALLBACK_LIMIT = 3000  # the notification text; Slack allows far more, but nobody reads it there
MAX_BLOCKS = 50
TITLE_LIMIT = 150
ELLIPSIS = "…"
NO_ANSWER = "I could not find an answer to that in the documents."
CLOSEST = " The closest passages:"
_JOINERS = {"\u200d", "\u034f"}  # zero-width joiner, combining grapheme joiner: both glue their neighbours


def escape(text: str) -> str:
    """Slack mrkdwn treats ``&``, ``<`` and ``>`` as control characters; a passage must never open a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: an astral emoji counts twice, which keeps us under Slack's limit either way."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """Escape ``text`` for mrkdwn and cut it to ``limit`` with an ellipsis.

    The cut happens on the unescaped text, so an entity such as ``&amp;`` is never split, and it never separates
    a character from the combining marks, variation selectors or joiners that follow it (Python slices by code
    point, so a surrogate pair cannot be split). When a space is near the cut, the cut moves back to it.
    """
    text = " ".join(text.split())
    if slack_len(escape(text)) <= limit:
        return escape(text)
    budget = limit - slack_len(ELLIPSIS)
    size, end = 0, 0
    for index, char in enumerate(text):
        size += slack_len(escape(char))
        if size > budget:
            break
        end = index + 1
    while 0 < end < len(text) and _glued(text[end - 1], text[end]):
        end -= 1
    space = text.rfind(" ", 0, end)
    if space > 0 and end - space <= 30:
        end = space
    return escape(text[:end].rstrip()) + ELLIPSIS


def _glued(before: str, after: str) -> bool:
    """True when a cut between these two characters would break one visible character apart."""
    return (
        unicodedata.combining(after) != 0
        or unicodedata.category(after) == "Mn"
        or "\ufe00" <= after <= "\ufe0f"  # variation selectors (emoji vs text presentation)
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin-tone modifiers
        or after in _JOINERS
        or before in _JOINERS
    )


def document_link(public_url: str | None, citation: Citation) -> str | None:
    """The web UI's deep link to the highlighted sentence, or None when the UI's address is not configured."""
    if not public_url:
        return None
    doc = quote(citation.document, safe="/")
    span = citation.highlight
    return f"{public_url.rstrip('/')}/#doc={doc}&start={span.start}&end={span.end}"


def render_blocks(
    answer: Answer, public_url: str | None = None, *, max_citations: int = 3, echo_question: bool = False
) -> list[dict[str, Any]]:
    """The answer sentence, then the top citations (title, highlighted sentence, link), within Slack's limits.

    ``echo_question`` repeats the question, for replies (slash commands) that Slack shows without it.
    """
    blocks: list[dict[str, Any]] = []
    if echo_question:
        blocks.append(_context(f"Question: {answer.question}"))
    blocks.append(_section(clip(_headline(answer), SECTION_LIMIT)))
    room = (MAX_BLOCKS - len(blocks) - 1) // 2  # each citation takes a section and a context block
    cited = answer.citations[: max(0, min(max_citations, room))]
    if cited:
        blocks.append({"type": "divider"})
    for citation in cited:
        blocks.append(_section(_citation_text(citation, public_url)))
        where = f"{citation.document} · characters {citation.highlight.start}–{citation.highlight.end}"
        blocks.append(_context(f"{where} · score {citation.score:.2f}"))
    return blocks


def render_text(answer: Answer, public_url: str | None = None, *, max_citations: int = 3) -> str:
    """The plain fallback Slack shows in notifications and to clients that cannot draw blocks."""
    lines = [_headline(answer)]
    for citation in answer.citations[:max_citations]:
        lines.append(f"{citation.rank}. {citation.title}: {citation.highlight.text}")
    per_line = FALLBACK_LIMIT // len(lines) - 1  # clip each line apart, keeping the line breaks
    return "\n".join(clip(line, per_line) for line in lines)


def _headline(answer: Answer) -> str:
    if answer.no_answer or not answer.answer:
        return NO_ANSWER + (CLOSEST if answer.citations else "")
    return answer.answer


def _citation_text(citation: Citation, public_url: str | None) -> str:
    title = clip(citation.title or citation.document, TITLE_LIMIT)
    link = document_link(public_url, citation)
    if link and slack_len(escape(link)) > SECTION_LIMIT // 2:  # a freak document id: keep room for the passage
        link = None
    heading = f"*<{escape(link)}|{title.replace('|', '¦')}>*" if link else f"*{title}*"
    quote_room = SECTION_LIMIT - slack_len(heading) - 2
    return f"{heading}\n>{clip(citation.highlight.text, quote_room)}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, CONTEXT_LIMIT)}]}
