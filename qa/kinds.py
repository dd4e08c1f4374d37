"""What a question asks for ("when", "how many", "who") and whether a text holds it, in many languages.

Read by the highlight (a "when" question prefers a sentence with a number) and by the no-answer decision (the
kind met by the top passage is one of its signals).
"""

from __future__ import annotations

import re

# Question kinds whose answer has a visible form, in the languages the bundled models read best. Hindi words are
# bounded by anything but a Devanagari letter or vowel sign (to \b a vowel sign is no word character); Thai writes
# no spaces between words, so its question words are matched inside the question (กี่โมง, "what time", is "when").
_HI = r"(?<![\w\u0900-\u0963])(?:{})(?![\w\u0900-\u0963])"
_KINDS = {
    "when": re.compile(
        r"\b(?:when|what year|which year|wann|in welchem jahr|quand|en quelle année|cuándo|en qué año|quando|"
        r"когда|в каком году|πότε|ποια χρονιά|متى|في أي عام|في أي سنة)\b|什么时候|何时|哪一年|哪年|几时|いつ|"
        + _HI.format("कब|किस साल|किस वर्ष")
        + r"|เมื่อไร|เมื่อไหร่|ปีใด|ปีไหน|กี่โมง",
        re.IGNORECASE,
    ),
    "how many": re.compile(
        r"\b(?:how many|how much|how long|how far|how old|how large|how big|how high|what percentage|"
        r"wie viele|wie viel|wie lange|wie alt|combien|cuántos|cuántas|cuánto|quanti|quante|quanto|"
        r"сколько|πόσα|πόσοι|πόσες|πόσο|كم)\b|多少|几个|幾個|多长|多久|多大|多高|"
        + _HI.format("कितने|कितनी|कितना")
        + r"|กี่|เท่าไร|เท่าไหร่",
        re.IGNORECASE,
    ),
    "who": re.compile(
        r"\b(?:who|whom|whose|wer|wem|wen|wessen|qui|quién|quiénes|chi|кто|кого|кому|ποιος|ποια|ποιοι|"
        r"من هو|من هي|من هم)\b|谁|誰|" + _HI.format("कौन|किसने|किसको") + r"|ใคร",
        re.IGNORECASE,
    ),
}
_DIGITS = re.compile(r"\d")
_NUMBER_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|dozen|"
    r"eins|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|hundert|tausend|millionen|milliarden|"
    r"ένα|δύο|τρία|τέσσερα|πέντε|εκατό|χίλια|εκατομμύρια|"
    r"один|два|три|четыре|пять|сто|тысяч|миллион)\b|[一二三四五六七八九十百千万亿两]",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZА-ЯΑ-Ω][a-zа-яα-ωά-ώ]+")  # a capitalised word inside a sentence


def question_kind(question: str) -> str | None:
    """The first kind ("when", "how many", "who") the question asks for, or None."""
    for kind, pattern in _KINDS.items():
        if pattern.search(question):
            return kind
    return None


def kind_met(kind: str | None, text: str) -> float:
    """+1 when the text holds what the kind asks for, -1 when it does not, 0 for no kind (or no way to tell)."""
    if kind is None:
        return 0.0
    if kind in ("when", "how many"):
        return 1.0 if _DIGITS.search(text) or (kind == "how many" and _NUMBER_WORDS.search(text)) else -1.0
    if re.search(r"[\u3040-\u30ff\u3400-\u9fff]", text) or not _mostly_cased(text):  # CJK, Hindi, Thai, Arabic:
        return 0.0  # no capitals to tell a name by
    return 1.0 if _NAME.search(text) else -1.0


def _mostly_cased(text: str) -> bool:
    """Whether most of the text's letters have an upper and a lower case (Latin, Cyrillic, Greek, Armenian)."""
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isupper() or ch.islower() for ch in letters) * 2 > len(letters)
