"""Which language a text is in, so a model is only asked about the languages it was trained on.

Multilingual USE was trained on 16 languages; on Greek, say, its vector is noise, and fused with e5 it
pulled Greek recall@1 from 0.818 down to 0.785 (docs/quality.md). py3langid's bundled model (97 languages,
no download) names the language of a passage, the Unicode script judges a sentence, and a text with no
letters at all (a number, a code) is readable by every model.
"""

from __future__ import annotations

import threading
import unicodedata

_lock = threading.Lock()
_identifier = None

# py3langid codes for varieties written like a language a model knows (Wu and Cantonese are Chinese script)
_ALIASES = {"wuu": "zh", "yue": "zh"}
IDENTIFY_MIN_LETTERS = 200  # shorter texts are judged by their script alone
# scripts of the languages with their own (languages not listed are written in Latin)
SCRIPTS = {
    "ar": {"ARABIC"},
    "ja": {"CJK", "HIRAGANA", "KATAKANA"},
    "ko": {"HANGUL"},
    "ru": {"CYRILLIC"},
    "th": {"THAI"},
    "zh": {"CJK"},
}


def _get_identifier():
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
        return _identifier


def detect(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when it has no letters to judge by."""
    if not any(ch.isalpha() for ch in text):
        return None
    code = _get_identifier().classify(text)[0]
    return _ALIASES.get(code, code)


def script(ch: str) -> str:
    """The Unicode script of a letter, from its name: "LATIN", "CYRILLIC", "GREEK", "CJK", ..."""
    return unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]


def readable(text: str, languages: frozenset[str]) -> bool:
    """Whether a model trained on ``languages`` can read the text.

    Two tests, because language identification is unreliable on a sentence ("Кошка спит на диване." reads
    as Macedonian): the text must be written mostly in a script of those languages (Greek is not), and a
    text long enough to identify (a passage) must be in one of them.
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return True
    known = set().union(*(SCRIPTS.get(code, {"LATIN"}) for code in languages))
    if sum(script(ch) in known for ch in letters) < len(letters) / 2:
        return False
    return len(letters) < IDENTIFY_MIN_LETTERS or detect(text) in languages
