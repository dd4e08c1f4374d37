"""The numbers a text names, comparable across languages and scripts.

Digits survive translation and transliteration where names do not, so a question's numbers are looked for
in a passage of any language: by the ranking (a small bonus) and by the no-answer decision (a number the
question names and the top passage lacks).
"""

from __future__ import annotations

import re
import unicodedata

_NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")
# "Super Bowl XXXIII", "Louis XIV", "World War II": kept in Latin letters by Greek, Russian or Chinese text too
_ROMAN = re.compile(r"\b[IVXLC]{2,}\b")


def numbers(text: str) -> set[str]:
    """Numbers of a text with thousands separators removed, so "1,233", "1.233" and "1 233" agree, and in ASCII
    digits, so Hindi's "१९९८", Arabic's "١٩٩٨" and Thai's "๑๙๙๘" agree with "1998"."""
    return {_ascii(re.sub(r"[.,\s]", "", match)) for match in _NUMBER.findall(text)}


def numerals(text: str) -> set[str]:
    """Its numbers and its Roman numerals of two letters or more."""
    return numbers(text) | set(_ROMAN.findall(text))


def _ascii(digits: str) -> str:
    return digits if digits.isascii() else "".join(str(unicodedata.decimal(ch)) for ch in digits)
