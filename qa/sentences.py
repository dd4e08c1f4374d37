"""Sentence boundaries with character offsets, for any script.

A period ends a sentence only when what follows does not start in lower case, so Russian
«50 тыс. американских» or English "e.g. this" stay whole. The full stops of scripts without case need no
such check, nor a space after them: CJK's 。！？, the danda of Hindi, Marathi, Nepali and Bengali (। ॥), Urdu's
۔, the Arabic question mark ؟, Amharic's ። ፧, Burmese ။, Khmer's ។ ៕ and Armenian's ։. (Thai marks sentences
with a space, which it also puts around numbers and foreign words: a Thai chunk stays one sentence.)
"""

from __future__ import annotations

import re

from qa.models import Span

# terminal punctuation, optional closing quotes/brackets, then whitespace and a non-lowercase start
_BOUNDARY = re.compile(
    r"""(?<=[.!?…])["'»”’)\]]*\s+(?=[^\sa-zа-яёäöüßàâçéèêëîïôûùüÿœæα-ωάέήίόύώ])"""
    r"""|(?<=[。！？।॥۔؟።፧။។៕։])["'»”’」』)\]]*\s*"""
    r"""|\n\s*"""
)
_MIN_SENTENCE = 2


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of ``text[start:end]`` as spans with offsets into ``text``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        _add(text, cursor, match.start(), spans)
        cursor = match.end()
    _add(text, cursor, end, spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[Span]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end - start >= _MIN_SENTENCE:
        spans.append(Span(start, end, text[start:end]))
