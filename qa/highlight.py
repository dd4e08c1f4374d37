"""Pick the sentence(s) of a passage that answer the question (extractive: no LLM).

Each sentence is scored alone and, where the sentence before it *denies* something, also read after that
sentence. This is the "X does not ..., Y does" pattern: for "who commands US troops in Japan?" the closest
sentence says the US commander in Japan has no command authority, and the answer is the next one ("The
head of the Indo-Pacific Command in Hawaii exercises command"), which only matches the question in context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qa.kinds import kind_met
from qa.models import Span
from qa.negation import is_negated
from qa.numerals import numerals
from qa.sentence_choice import Model
from qa.sentence_signals import Cues, rows
from qa.sentences import cut_by_own_rules
from qa.stores.base import Hit

# "when" and "how many" ask for a number, "... in 1998?" names one: a sentence that holds none (none of the
# question's) yields to one that does and reads almost as close (answer_in_highlight@1 +0.25 to +1.0 points on
# XQuAD de, el, zh and en: docs/quality.md)
KIND_MARGIN = 0.03
_NUMBER_KINDS = ("when", "how many")
# Where the learned choice gives its pick less than RUN_SHARE of the passage, the answer line grows to the
# adjacent sentence it favours next, and on, until the line holds RUN_SHARE, while the line stays within
# RUN_CHARS characters (half a default passage): a line that is unsure of one sentence shows the two or three
# it hesitates between (docs/quality.md, "The answer line when the choice is unsure")
RUN_SHARE = 0.7
RUN_CHARS = 250


def best_sentence(
    hit: Hit,
    query: np.ndarray,
    *,
    question_denies: bool = False,
    kind: str | None = None,
    asked: frozenset[str] = frozenset(),
    choice: Choice | None = None,
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

    With ``choice`` (the learned model) the pick is its highest-scoring sentence, and where it holds less than
    ``RUN_SHARE`` of the choice the line grows to the sentences it hesitates between (``line_run``). A passage
    whose sentences a model or a caseless script's own full stops cut (qa.sentences.cut_by_own_rules: Thai,
    Hindi, ...) is its own line: on hidden Thai and Hindi XQuAD a sentence line held the answer less often than
    the whole passage had.
    """
    spans = hit.sentences
    if not spans:
        return Span(hit.chunk.start, hit.chunk.end, hit.chunk.text), 0.0
    alone = hit.sentence_vectors @ query
    best = closest = int(np.argmax(alone))
    if cut_by_own_rules(hit.chunk.text):  # the passage ranks by its sentences but is the line (issue 23)
        return Span(hit.chunk.start, hit.chunk.end, hit.chunk.text), float(alone[closest])
    shares = None
    if choice is not None and len(spans) > 1:
        shares = choice.shares(hit, query, alone)
        best = int(np.argmax(shares))
    else:
        if kind in _NUMBER_KINDS and kind_met(kind, spans[best].text) < 0:
            best = _closest_holding(spans, alone, best, lambda text: kind_met(kind, text) > 0)
        if asked and not asked & numerals(spans[best].text):
            best = _closest_holding(spans, alone, best, lambda text: bool(asked & numerals(text)))
    after = best + 1
    if question_denies or after >= len(spans) or not is_negated(spans[best].text) or is_negated(spans[after].text):
        if shares is None:
            return spans[best], float(alone[closest])
        first, last, _share = line_run(shares, [len(span.text) for span in spans], best)
        return _joined(hit, first, last), float(alone[closest])
    in_context = float(hit.context_vectors[after] @ query)
    if in_context > alone[best]:
        return spans[after], in_context
    return _joined(hit, best, after), float(alone[closest])


def line_run(
    shares: np.ndarray, lengths: list[int], pick: int, floor: float = RUN_SHARE, most: int = RUN_CHARS
) -> tuple[int, int, float]:
    """The answer line around ``pick`` (first and last sentence) and the share of the choice it holds: the pick
    alone where it holds ``floor``, else grown a sentence at a time toward the larger neighbouring share until
    the line holds it, never past ``most`` characters (a space between sentences)."""
    first = last = pick
    share = float(shares[pick])
    while share < floor:
        options = []
        if first > 0:
            options.append((float(shares[first - 1]), first - 1, last))
        if last + 1 < len(shares):
            options.append((float(shares[last + 1]), first, last + 1))
        if not options:
            break
        gained, grown_first, grown_last = max(options)
        if sum(lengths[grown_first : grown_last + 1]) + grown_last - grown_first > most:
            break
        first, last, share = grown_first, grown_last, share + gained
    return first, last, share


def _joined(hit: Hit, first: int, last: int) -> Span:
    """Sentences ``first`` to ``last`` of a passage as one span of its text."""
    start, end = hit.sentences[first].start, hit.sentences[last].end
    offset = hit.chunk.start
    return Span(start, end, hit.chunk.text[start - offset : end - offset])


@dataclass(frozen=True)
class Choice:
    """The learned sentence choice for one question: its model, the question's cues, the fused embedder's split."""

    model: Model
    cues: Cues
    fine: int  # the leading columns of a row that are e5's (the rest USE's); the row's width when not fused

    def shares(self, hit: Hit, query: np.ndarray, alone: np.ndarray) -> np.ndarray:
        """Each sentence's share of the passage's choice (a softmax over the model's scores)."""
        scores = self.scores(hit, query, alone)
        shares = np.exp(scores - scores.max())
        return shares / shares.sum()

    def sureness(self, hit: Hit, query: np.ndarray) -> float:
        """The share of the passage's choice its answer line holds (qa.highlight.line_run): near 1 when one
        sentence clearly answers, low when the model cannot tell the sentences apart (qa.confidence); 1.0 where
        the line is the whole passage."""
        if len(hit.sentences) < 2 or cut_by_own_rules(hit.chunk.text):
            return 1.0
        shares = self.shares(hit, query, hit.sentence_vectors @ query)
        return line_run(shares, [len(span.text) for span in hit.sentences], int(np.argmax(shares)))[2]

    def scores(self, hit: Hit, query: np.ndarray, alone: np.ndarray) -> np.ndarray:
        fine = hit.sentence_vectors[:, : self.fine] @ query[: self.fine]
        context = hit.context_vectors @ query
        signals = rows([s.text for s in hit.sentences], alone, fine, context, self.cues)
        return self.model.scores(signals, query, hit.sentence_vectors)


def _closest_holding(spans: list[Span], alone: np.ndarray, best: int, holds: Callable[[str], bool]) -> int:
    """The closest sentence whose text ``holds`` within ``KIND_MARGIN`` of the closest of all, else ``best``."""
    floor = float(alone.max()) - KIND_MARGIN
    return max(
        (i for i in range(len(spans)) if alone[i] >= floor and holds(spans[i].text)),
        key=alone.__getitem__,
        default=best,
    )
