"""Whether a sentence denies something ("X does not ..."), in the languages the bundled models know best.

Read by the highlight (a denial's answer is often the next sentence) and by the sentence choice's signals.
"""

from __future__ import annotations

import re
from functools import lru_cache

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


@lru_cache(maxsize=65536)  # a passage's sentences come back question after question; the pattern is slow
def is_negated(text: str) -> bool:
    return _NEGATION.search(text) is not None
