"""Pick the sentence of a passage that answers the question (extractive: no LLM).

Each sentence is scored alone and, where the sentence before it *denies* something, also read after that
sentence. This is the "X does not ..., Y does" pattern: for "who commands US troops in Japan?" the closest
sentence says the US commander in Japan has no command authority, and the answer is the next one ("The
head of the Indo-Pacific Command in Hawaii exercises command"), which only matches the question in context.
"""

from __future__ import annotations

import re

import numpy as np

from qa.models import Span
from qa.store import Hit

# Negation cues of the languages the bundled models know best; whole words except for CJK.
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|cannot|without|[a-z]+n't|"
    r"не|нет|ни|никогда|никто|без|"
    r"nicht|kein|keine|keinen|keiner|nie|niemals|ohne|"
    r"ne|pas|jamais|aucun|aucune|sans|nunca|ningún|ninguna|sin|non|mai|nessun|senza|não|nem|"
    r"δεν|μην|όχι|ούτε|χωρίς)\b"
    r"|[不没沒無无非未]",
    re.IGNORECASE,
)


def is_negated(text: str) -> bool:
    return _NEGATION.search(text) is not None


def best_sentence(hit: Hit, query: np.ndarray) -> tuple[Span, float]:
    """The answering sentence of a retrieved chunk and its score (cosine with the query)."""
    spans = hit.sentences
    if not spans:
        return Span(hit.chunk.start, hit.chunk.end, hit.chunk.text), 0.0
    alone = hit.sentence_vectors @ query
    context = hit.context_vectors @ query
    scores = alone.copy()
    for i in range(1, len(spans)):
        # read in context only after a denial, and only where the pair beats the denial on its own
        if context[i] > alone[i - 1] and is_negated(spans[i - 1].text) and not is_negated(spans[i].text):
            scores[i] = max(alone[i], context[i])
    best = int(np.argmax(scores))
    return spans[best], float(scores[best])
