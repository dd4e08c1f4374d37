"""Pick the sentence(s) of a passage that answer the question (extractive: no LLM).

Each sentence is scored alone and, where the sentence before it *denies* something, also read after that
sentence. This is the "X does not ..., Y does" pattern: for "who commands US troops in Japan?" the closest
sentence says the US commander in Japan has no command authority, and the answer is the next one ("The
head of the Indo-Pacific Command in Hawaii exercises command"), which only matches the question in context.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from qa.kinds import kind_met
from qa.models import Span
from qa.numerals import numerals
from qa.stores.base import Hit

# "when" and "how many" ask for a number, "... in 1998?" names one: a sentence that holds none (none of the
# question's) yields to one that does and reads almost as close (answer_in_highlight@1 +0.25 to +1.0 points on
# XQuAD de, el, zh and en: docs/quality.md)
KIND_MARGIN = 0.03
_NUMBER_KINDS = ("when", "how many")

# Negation cues of the languages the bundled models know best; whole words except for CJK.
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|cannot|without|[a-z]+n't|"
    r"не|нет|ни|никогда|никто|без|"
    r"nicht|kein|keine|keinen|keiner|nie|niemals|ohne|"
    r"ne|pas|jamais|aucun|aucune|sans|nunca|ningún|ninguna|sin|non|mai|nessun|senza|não|nem|"
    r"δεν|μην|όχι|ούτε|χωρίς)\b"
    # Chinese: words, not characters (不同 "different", 非洲 "Africa" and 未来 "future" deny nothing); as
    # single characters they cost 0.8 points of Chinese highlight on XQuAD (docs/quality.md)
    r"|不是|不能|不会|不會|不再|并不|並不|没有|沒有|从未|從未|未能|无法|無法|并非|並非|绝不|絕不|无权|無權"
    r"|不得|不可|未曾|毫无|毫無"
    # Hindi and Arabic: whole words, bounded by anything but a letter or a vowel sign (to \b a vowel sign is
    # no word character, so नहीं would never end); Arabic's "and"/"so" may be attached (ولا, فلم)
    r"|(?<![\w\u0900-\u0963])(?:नहीं|न|बिना)(?![\w\u0900-\u0963])"
    r"|(?<![\w\u0610-\u061A\u064B-\u065F\u0670])[وف]?(?:لا|ليس|ليست|ليسوا|لم|لن|بدون|دون)"
    r"(?![\w\u0610-\u061A\u064B-\u065F\u0670])"
    # Thai writes no spaces between words: ไม่ "not", except in ไม่ว่า "whatever" and ไม่กี่ "a few"
    r"|ไม่(?!ว่า|กี่)|มิได้|ปราศจาก",
    re.IGNORECASE,
)


def is_negated(text: str) -> bool:
    return _NEGATION.search(text) is not None


def best_sentence(
    hit: Hit,
    query: np.ndarray,
    *,
    question_denies: bool = False,
    kind: str | None = None,
    asked: frozenset[str] = frozenset(),
) -> tuple[Span, float]:
    """The answering sentence(s) of a retrieved chunk and their score (cosine with the query).

    ``kind`` is the question's (qa.kinds.question_kind): for "when" and "how many" the closest sentence
    holding a number is the answer where the closest one holds none and it is within ``KIND_MARGIN``. So is
    the closest sentence holding one of ``asked``, the question's own numbers (qa.numerals), where the
    chosen one holds none of them. The score stays the closest sentence's, so the passage ranks as before.

    When the closest sentence denies something ("the US commander in Japan has no command authority") and
    the question does not ask about a negative, the answer is usually the sentence that follows ("the head
    of the Indo-Pacific Command in Hawaii exercises it"). That sentence is the answer alone when, read
    after the denial, it matches the question better than the denial does; otherwise the highlight is both,
    so the reader sees the denial and its correction together. (On XQuAD English this keeps
    answer_in_highlight@1 within 0.3 points of ignoring denials, which a flat "take the next sentence"
    rule costs 1.6: docs/quality.md.)
    """
    spans = hit.sentences
    if not spans:
        return Span(hit.chunk.start, hit.chunk.end, hit.chunk.text), 0.0
    alone = hit.sentence_vectors @ query
    best = closest = int(np.argmax(alone))
    if kind in _NUMBER_KINDS and kind_met(kind, spans[best].text) < 0:
        best = _closest_holding(spans, alone, best, lambda text: kind_met(kind, text) > 0)
    if asked and not asked & numerals(spans[best].text):
        best = _closest_holding(spans, alone, best, lambda text: bool(asked & numerals(text)))
    after = best + 1
    if question_denies or after >= len(spans) or not is_negated(spans[best].text) or is_negated(spans[after].text):
        return spans[best], float(alone[closest])
    in_context = float(hit.context_vectors[after] @ query)
    if in_context > alone[best]:
        return spans[after], in_context
    start, end = spans[best].start, spans[after].end
    offset = hit.chunk.start
    return Span(start, end, hit.chunk.text[start - offset : end - offset]), float(alone[closest])


def _closest_holding(spans: list[Span], alone: np.ndarray, best: int, holds: Callable[[str], bool]) -> int:
    """The closest sentence whose text ``holds`` within ``KIND_MARGIN`` of the closest of all, else ``best``."""
    floor = float(alone.max()) - KIND_MARGIN
    return max(
        (i for i in range(len(spans)) if alone[i] >= floor and holds(spans[i].text)),
        key=alone.__getitem__,
        default=best,
    )
