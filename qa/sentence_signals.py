"""What each sentence of a retrieved passage shows about answering the question: the learned choice's inputs.

Everything here is read from what a Hit already holds (each sentence's stored vector, its text) and from the
question's own vector and text, so choosing a sentence costs no encoder pass (`/ask` latency is a standing
target). Each row is one sentence; :data:`NAMES` names its columns, in order. The fitted weights live in
qa/data/sentence_choice.json (qa.sentence_choice); bench/fit_sentence_choice.py measures each signal held out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qa.kinds import kind_met, question_kind
from qa.negation import is_negated
from qa.numerals import numerals

NAMES = (
    "cos",  # the fused cosine of the sentence alone with the question
    "e5",  # the e5 columns' share of it (the heavier model's own opinion)
    "use",  # the USE columns' share (0 for an embedder that is not fused)
    "context_gain",  # read after a denial before it minus read alone (0 for most sentences)
    "gap",  # the closest sentence's cosine minus this one's
    "z",  # this cosine in units of the passage's spread
    "top",  # 1 for the closest sentence
    "rank",  # 0 for the closest, 1 for the next, ... (capped)
    "prev_gap",  # the closest cosine minus the previous sentence's (the gap itself for the first)
    "next_gap",  # the same for the next sentence
    "when_date",  # a "when" question and the sentence names a date (a month, a year, a century)
    "when_number",  # a "when" question and the sentence holds a number but no date
    "count",  # a "how many" question and the sentence holds a number
    "name",  # a "who" question: +1 a capitalised name, -1 none, 0 no way to tell
    "numbers",  # share of the question's own numbers the sentence holds
    "overlap",  # share of the question's content words (5-letter stems) the sentence holds
    "names",  # share of the question's capitalised words inside the sentence
    "first",  # the passage's first sentence
    "last",  # its last
    "position",  # 0 .. 1 through the passage
    "length",  # log of the sentence's characters
    "negated",  # the sentence denies something
    "after_denial",  # the sentence before it denies something
)

_MONTHS = re.compile(
    r"\b(?:january|february|march|april|june|july|august|september|october|november|december|"
    r"januar|februar|märz|juni|juli|oktober|dezember|janvier|février|mars|avril|mai|juin|juillet|août|"
    r"septembre|octobre|novembre|décembre|enero|febrero|marzo|abril|mayo|junio|julio|agosto|"
    r"janvier|century|centuries|jahrhunderts?|siècle|siglo|"
    r"январ\w*|феврал\w*|март\w*|апрел\w*|ма[йяе]|июн\w*|июл\w*|август\w*|сентябр\w*|октябр\w*|ноябр\w*|"
    r"декабр\w*|век\w*|"
    r"ιανουαρ\w*|φεβρουαρ\w*|μαρτ\w*|απριλ\w*|μ[αά][ιίΐ]\w*|ιουν\w*|ιουλ\w*|αυγο[υύ]στ\w*|σεπτ[εέ]μβρ\w*|"
    r"οκτ[ωώ]βρ\w*|νο[εέ]μβρ\w*|δεκ[εέ]μβρ\w*|αι[ωώ]ν\w*)\b"
    # English "may" is mostly the verb: the month only beside a day or a year, as written
    r"|(?-i:\bMay\s+\d|\d\s+May\b)"
    r"|\d\s*(?:年|月|日|世纪)|[一二三四五六七八九十]+月|(?<!\d)(?:1[0-9]|20)\d\d(?!\d)",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"\w{3,}")
_CAPITAL = re.compile(r"(?<!^)\b[A-Z][\w-]+")
_STOP = frozenset(
    "the and was what which who whom whose when where why how did does for from that this with were are "
    "has have had its into than then there their they them been being not but all any can could would "
    "should about after before other some such only also more most many much one two".split()
)
_RANK_CAP = 4


def has_date(text: str) -> bool:
    """Whether the text names a date: a month, a century, a four-digit year, or a CJK year/month/day."""
    return _MONTHS.search(text) is not None


@dataclass(frozen=True)
class Cues:
    """What the question asks, read once per question (not per passage)."""

    kind: str | None
    numbers: frozenset[str]
    stems: frozenset[str]
    names: tuple[str, ...]

    @classmethod
    def of(cls, question: str) -> Cues:
        words = [w.lower() for w in _WORD.findall(question)]
        stems = frozenset(w[:5] for w in words if w not in _STOP)
        names = tuple(dict.fromkeys(n for n in _CAPITAL.findall(question.strip()) if n.lower() not in _STOP))
        return cls(question_kind(question), frozenset(numerals(question)), stems, names)


def rows(texts: list[str], alone: np.ndarray, fine: np.ndarray, context: np.ndarray, cues: Cues) -> np.ndarray:
    """(len(texts), len(NAMES)) signals of a passage's sentences.

    ``alone``: each sentence's fused cosine with the question; ``fine``: the e5 columns' part of it (the
    rest is USE's); ``context``: each sentence's cosine as read after the sentence before it.
    """
    n = len(texts)
    alone = np.asarray(alone, np.float64)
    best = float(alone.max())
    spread = float(alone.std()) + 1e-3
    order = np.argsort(-alone, kind="stable")
    rank = np.empty(n, np.float64)
    rank[order] = np.minimum(np.arange(n), _RANK_CAP)
    gap = best - alone
    out = np.zeros((n, len(NAMES)), np.float64)
    out[:, 0] = alone
    out[:, 1] = fine
    out[:, 2] = alone - fine
    out[:, 3] = np.asarray(context, np.float64) - alone
    out[:, 4] = gap
    out[:, 5] = (alone - alone.mean()) / spread
    out[:, 6] = rank == 0
    out[:, 7] = rank
    out[:, 8] = np.r_[gap[:1], gap[:-1]]
    out[:, 9] = np.r_[gap[1:], gap[-1:]]
    negated = [is_negated(t) for t in texts]
    for i, text in enumerate(texts):
        out[i, 10:17] = _text_signals(text, cues)
        out[i, 17] = i == 0
        out[i, 18] = i == n - 1
        out[i, 19] = i / (n - 1) if n > 1 else 0.0
        out[i, 20] = np.log1p(len(text))
        out[i, 21] = negated[i]
        out[i, 22] = i > 0 and negated[i - 1]
    return out


@dataclass(frozen=True)
class _Facts:
    """What a sentence's text shows whatever the question (kept per text: passages come back question after
    question, and these regular expressions are most of the choice's cost)."""

    digits: bool
    date: bool
    count: bool  # holds a number, as "how many" asks
    name: float  # qa.kinds.kind_met("who", text)
    numerals: frozenset[str]
    stems: frozenset[str]
    lowered: str


@lru_cache(maxsize=65536)
def _facts(text: str) -> _Facts:
    lowered = text.lower()
    return _Facts(
        _DIGIT.search(text) is not None,
        has_date(text),
        kind_met("how many", text) > 0,
        kind_met("who", text),
        frozenset(numerals(text)),
        frozenset(w[:5] for w in _WORD.findall(lowered)),
        lowered,
    )


def _text_signals(text: str, cues: Cues) -> list[float]:
    """when_date, when_number, count, name, numbers, overlap, names of one sentence."""
    facts = _facts(text)
    date = cues.kind == "when" and facts.date
    held = len(cues.numbers & facts.numerals) / len(cues.numbers) if cues.numbers else 0.0
    overlap = len(cues.stems & facts.stems) / len(cues.stems) if cues.stems else 0.0
    names = sum(name.lower() in facts.lowered for name in cues.names) / len(cues.names) if cues.names else 0.0
    return [
        float(date),
        float(cues.kind == "when" and facts.digits and not date),
        float(cues.kind == "how many" and facts.count),
        facts.name if cues.kind == "who" else 0.0,
        held,
        overlap,
        names,
    ]
