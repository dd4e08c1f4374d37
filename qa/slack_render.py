"""An Answer as a Slack Block Kit message: pure functions, so the layout and Slack's limits are testable offline."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from qa import languages
from qa.models import Answer, Citation

SECTION_LIMIT = 3000  # characters of a section block's text
CONTEXT_LIMIT = 2000  # characters of one context element's text
FALLBACK_LIMIT = 3000  # the notification text; Slack allows far more, but nobody reads it there
MAX_BLOCKS = 50
TITLE_LIMIT = 150
ELLIPSIS = "…"
NO_ANSWER = "I could not find an answer to that in the documents."
CLOSEST = " The closest passages:"
POSSIBLY = "Possibly: "  # a low-confidence answer (qa.confidence): the line may be the wrong sentence
SMALL_TALK_TITLES = 3  # document titles named when a greeting is answered with what qa can be asked about
_JOINERS = {"\u200d", "\u034f"}  # zero-width joiner, combining grapheme joiner: both glue their neighbours


@dataclass(frozen=True)
class Corpus:
    """What a small-talk reply names: how many documents there are and a few of their titles."""

    documents: int
    titles: Sequence[str] = ()


# "Ask me about the documents" in the languages the reply can speak, keyed by ISO 639-1 code; the count is in
# parentheses so that no language needs plural rules (English, the fallback, reads as the issue words it)
_ASK_ME = {
    "ru": "Спросите меня о документах ({count}): {titles}",
    "de": "Fragen Sie mich zu den Dokumenten ({count}): {titles}",
    "fr": "Posez-moi une question sur les documents ({count}) : {titles}",
    "es": "Pregúntame sobre los documentos ({count}): {titles}",
    "el": "Ρωτήστε με για τα έγγραφα ({count}): {titles}",
    "zh": "请问我关于这些文档的问题（{count}）：{titles}",
    "hi": "मुझसे दस्तावेज़ों ({count}) के बारे में पूछिए: {titles}",
    "ar": "اسألني عن المستندات ({count}): {titles}",
    "th": "ถามฉันเกี่ยวกับเอกสาร ({count}): {titles}",
}
# scripts one language writes (Devanagari and Arabic script write several: there the identifier decides)
_SCRIPT_LANGUAGE = {"CYRILLIC": "ru", "GREEK": "el", "CJK": "zh", "THAI": "th"}


def small_talk_text(question: str, corpus: Corpus | None) -> str:
    """A short, useful reply to a greeting: what qa can be asked about, in the question's language when known."""
    count = corpus.documents if corpus else 0
    shown = list(corpus.titles[:SMALL_TALK_TITLES]) if corpus else []
    titles = ", ".join(shown) + ("…" if count > len(shown) else "")
    language = _language(question)
    if not count:
        return "Ask me a question about the documents."
    if language in _ASK_ME:
        return _ASK_ME[language].format(count=count, titles=titles)
    if count == 1:
        return f"Ask me about the document: {titles}"
    return f"Ask me about the {count} documents: {titles}"


def _language(question: str) -> str | None:
    """The question's script decides where it can (short greetings fool language identification)."""
    letters = [ch for ch in question if ch.isalpha()]
    for ch in letters:
        if languages.script(ch) in _SCRIPT_LANGUAGE:
            return _SCRIPT_LANGUAGE[languages.script(ch)]
    return languages.detect(question) if len(letters) >= 12 else None


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
    answer: Answer,
    public_url: str | None = None,
    *,
    max_citations: int = 3,
    echo_question: bool = False,
    corpus: Corpus | None = None,
) -> list[dict[str, Any]]:
    """The answer sentence, then the top citations (title, highlighted sentence, link), within Slack's limits.

    ``echo_question`` repeats the question, for replies (slash commands) that Slack shows without it. Small talk
    gets what qa can be asked about (``corpus``) and no sources: a greeting has none.
    """
    blocks: list[dict[str, Any]] = []
    if echo_question:
        blocks.append(_context(f"Question: {answer.question}"))
    blocks.append(_section(clip(_headline(answer, corpus), SECTION_LIMIT)))
    room = (MAX_BLOCKS - len(blocks) - 1) // 2  # each citation takes a section and a context block
    cited = _cited(answer)[: max(0, min(max_citations, room))]
    if cited:
        blocks.append({"type": "divider"})
    for citation in cited:
        blocks.append(_section(_citation_text(citation, public_url)))
        where = f"{citation.document} · characters {citation.highlight.start}–{citation.highlight.end}"
        blocks.append(_context(f"{where} · score {citation.score:.2f}"))
    return blocks


def render_text(
    answer: Answer, public_url: str | None = None, *, max_citations: int = 3, corpus: Corpus | None = None
) -> str:
    """The plain fallback Slack shows in notifications and to clients that cannot draw blocks."""
    lines = [_headline(answer, corpus)]
    for citation in _cited(answer)[:max_citations]:
        lines.append(f"{citation.rank}. {citation.title}{_page(citation)}: {citation.highlight.text}")
    per_line = FALLBACK_LIMIT // len(lines) - 1  # clip each line apart, keeping the line breaks
    return "\n".join(clip(line, per_line) for line in lines)


def _headline(answer: Answer, corpus: Corpus | None) -> str:
    if answer.no_answer_reason == "small_talk":
        return small_talk_text(answer.question, corpus)
    if answer.no_answer or not answer.answer:
        return NO_ANSWER + (CLOSEST if answer.citations else "")
    return POSSIBLY + answer.answer if answer.confidence == "low" else answer.answer


def _cited(answer: Answer) -> list[Citation]:
    """Small talk lists no sources; "not found" still lists the closest passages."""
    return [] if answer.no_answer_reason == "small_talk" else answer.citations


def _page(citation: Citation) -> str:
    return f" · p. {citation.page}" if citation.page else ""


def _citation_text(citation: Citation, public_url: str | None) -> str:
    title = clip(citation.title or citation.document, TITLE_LIMIT)
    link = document_link(public_url, citation)
    if link and slack_len(escape(link)) > SECTION_LIMIT // 2:  # a freak document id: keep room for the passage
        link = None
    heading = (f"*<{escape(link)}|{title.replace('|', '¦')}>*" if link else f"*{title}*") + _page(citation)
    quote_room = SECTION_LIMIT - slack_len(heading) - 2
    return f"{heading}\n>{clip(citation.highlight.text, quote_room)}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, CONTEXT_LIMIT)}]}
