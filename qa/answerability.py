"""Decide whether the best passage answers the question, from how it stands out, not from one raw score.

Why not one absolute cut: neighbouring paragraphs of an article score like the right one (on XQuAD a cut
on the top score separates right answers from gold-removed ones with AUC 0.88 only), and the scores move
whenever the encoder or the vectors' centering change. The signals here are mostly scale-free: the top
passage's margin over the next passages that do not overlap it, in units of the spread of the candidates'
scores; how far the top stands above what this corpus usually scores for this question (the mean of the
candidates); whether its best sentence or its latent terms also stand out; whether the question's kind
is met ("when" -> a date, "how many" -> a number); whether the numbers the question names are in it (digits
survive translation: "as of 2010?" against a passage of 2014). A logistic model over them (weights in
``qa/data/answerability.json``, fitted by bench/fit_answerability.py on XQuAD, provenance inside) gives
the probability that the top passage answers; below the file's threshold the answer is "not found".

The model applies only to what it was fitted for (``Model.unfit_for``): the embedder whose scores it read
(or one it was checked on since, with figures in docs/quality.md) and the signals it weighs. With
``QA_SPARSE_WEIGHT=0`` or a model without a sparse head the latent-term signals read zero where the fit saw
values (the town's clearly answered question fell from 0.90 to 0.15), so there the answerer falls back to
the calibrated single cut instead.

What is not here: a term on the question's and the answering sentence's vectors themselves (their product,
column by column, with learned weights). It raised the dev set's AUC to 0.93-0.98, but with each XQuAD
article's questions kept out of the fit it scored lower than the signals alone (0.886 against 0.900): it
learned XQuAD's questions, not what answering looks like (docs/quality.md, "The pair term").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.embedding import base_name
from qa.kinds import kind_met, question_kind
from qa.models import Span
from qa.numerals import numerals
from qa.stores.base import Hit

MODEL_PATH = Path(__file__).with_name("data") / "answerability.json"
EPS = 1e-6


@dataclass(frozen=True)
class Candidate:
    """A retrieved passage as the answerer ranked it, with the parts of its score."""

    score: float  # the ranking score (passage, best sentence, latent terms, numbers blended)
    hit: Hit
    span: Span  # its answering sentence(s)
    sentence: float  # cosine of that sentence with the question
    terms: float | None  # cosine of the latent terms, None without a sparse head
    chosen: bool = True  # False: ``span`` is the closest sentence, the learned choice not yet run (qa.answer)


def _overlaps(a: Candidate, b: Candidate) -> bool:
    """Two passages of one document sharing text (a chunk and its overlapping neighbour)."""
    x, y = a.hit.chunk, b.hit.chunk
    return x.doc_id == y.doc_id and x.start < y.end and y.start < x.end


FEATURES = (
    "score",  # the raw top score: scale-dependent, measured for comparison
    "margin",  # top minus the best passage that does not overlap it
    "margin_z",  # the same in units of the candidates' spread
    "lead_z",  # top minus the candidates' mean, in units of their spread
    "gap4_z",  # top minus the mean of the next four non-overlapping passages, in units of the spread
    "sentence_margin_z",  # the top's best sentence minus the best sentence elsewhere, in units of the spread
    "sentence_gain",  # the top's best sentence minus its passage cosine
    "terms_lead",  # the top's latent terms minus the candidates' mean latent terms
    "terms_rank",  # share of candidates whose latent terms the top's beat
    "terms_z",  # the top's latent terms minus the candidates' mean, in units of their spread
    "terms_margin",  # the top's latent terms minus the best of the other passages'
    "sentence",  # the top's best-sentence cosine (scale-dependent, for comparison)
    "kind",  # the question's kind met (+1), missed (-1), none (0) by the top's answering sentence
    "kind_passage",  # the same by the top's whole passage (the highlight may miss the sentence holding it)
    "coverage",  # share of the question's latent-term weight (squared) found among the top's terms
    "coverage_lead",  # the top's coverage minus the candidates' mean coverage
    "coverage_margin",  # the top's coverage minus the best coverage of the other passages
    "dense_lead_z",  # the top's own passage cosine minus the candidates' mean, in units of their spread
    "agree",  # share of the signals (passage cosine, best sentence, latent terms) whose best is the top too
    "numbers_missing",  # share of the question's numbers (and Roman numerals) the top passage lacks; 0 without
)


LATENT_TERMS = "latent_terms"  # a signal source: the question's and the passages' sparse-head terms
SOURCES = {LATENT_TERMS: "latent terms (e5's sparse head; off with QA_SPARSE_WEIGHT=0 or an embedder without one)"}
# The features that read latent terms; "agree" counts the latent-term ranking among its three when there is one
NEEDS = dict.fromkeys(
    ("terms_lead", "terms_rank", "terms_z", "terms_margin", "coverage", "coverage_lead", "coverage_margin", "agree"),
    LATENT_TERMS,
)


def signals_needed(names: Sequence[str]) -> list[str]:
    """The signal sources a model over these features reads (e.g. ``["latent_terms"]``)."""
    return sorted({NEEDS[name] for name in names if name in NEEDS})


def coverage(query: np.ndarray | None, passages: list[np.ndarray | None]) -> np.ndarray:
    """How much of the question's latent-term weight (squared, so it sums to 1) each passage's terms hold.

    Unlike the cosine it ignores what the passage says beyond the question: a neighbour paragraph of the
    same article shares the topic's terms, the answering one also holds the question's own. One table
    lookup for all passages, as ``qa.embedding.sparse_scores`` does (zeros where either side has no terms).
    """
    if query is None or not passages or any(p is None for p in passages):
        return np.zeros(len(passages))
    k = len(query) // 2
    rows = np.stack(passages)  # type: ignore[arg-type]
    ids, held = rows[:, :k].astype(np.int64), rows[:, k:] > 0
    live = query[k:] > 0
    table = np.zeros(int(max(query[:k].max(initial=0), ids.max(initial=0))) + 1)
    table[query[:k][live].astype(np.int64)] = query[k:][live].astype(np.float64) ** 2
    return (table[ids] * held).sum(axis=1)


def features(question: str, ranked: list[Candidate], query_terms: np.ndarray | None = None) -> dict[str, float]:
    """The signals of the best candidate against the others (``ranked`` best first, at least one);
    ``query_terms``: the question's latent-term row, where the model has a sparse head."""
    top = ranked[0]
    scores = np.array([c.score for c in ranked], np.float64)
    spread = float(scores.std()) + EPS
    mean = float(scores.mean())
    apart = [i for i in range(1, len(ranked)) if not _overlaps(ranked[i], top)]
    others = [ranked[i] for i in apart]
    second = others[0].score if others else mean
    next4 = float(np.mean([c.score for c in others[:4]])) if others else mean
    sentence_other = max((c.sentence for c in others), default=float(np.mean([c.sentence for c in ranked])))
    terms = np.array([c.terms if c.terms is not None else 0.0 for c in ranked], np.float64)
    has_terms = top.terms is not None
    top_terms = top.terms or 0.0
    kind = question_kind(question)
    covered = coverage(query_terms, [c.hit.sparse for c in ranked])
    dense = np.array([c.hit.score for c in ranked], np.float64)
    sentences = np.array([c.sentence for c in ranked], np.float64)
    bests = [dense, sentences] + ([terms] if has_terms else [])
    asked = numerals(question)  # digits survive translation: "as of 2010?" against a passage of 2014
    return {
        "score": top.score,
        "margin": top.score - second,
        "margin_z": (top.score - second) / spread,
        "lead_z": (top.score - mean) / spread,
        "gap4_z": (top.score - next4) / spread,
        "sentence_margin_z": (top.sentence - sentence_other) / spread,
        "sentence_gain": top.sentence - top.hit.score,
        "terms_lead": float(terms[0] - terms.mean()) if has_terms else 0.0,
        "terms_rank": float(np.mean(terms[0] > terms[1:])) if has_terms and len(terms) > 1 else 0.5,
        "terms_z": float((terms[0] - terms.mean()) / (terms.std() + EPS)) if has_terms else 0.0,
        "terms_margin": top_terms - max((c.terms or 0.0 for c in others), default=top_terms) if has_terms else 0.0,
        "sentence": top.sentence,
        "kind": kind_met(kind, top.span.text),
        "kind_passage": kind_met(kind, top.hit.chunk.text),
        "coverage": float(covered[0]),
        "coverage_lead": float(covered[0] - covered.mean()),
        "coverage_margin": float(covered[0] - max((covered[i] for i in apart), default=covered[0])),
        "dense_lead_z": float((dense[0] - dense.mean()) / (dense.std() + EPS)),
        "agree": float(np.mean([int(np.argmax(values)) == 0 for values in bests])),
        "numbers_missing": len(asked - numerals(top.hit.chunk.text)) / len(asked) if asked else 0.0,
    }


@dataclass(frozen=True)
class Model:
    """Logistic regression over standardised features: P(answers) = sigmoid(w . (x - mean) / scale + b)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float  # below this probability: "not found"
    provenance: dict
    # the embedder (its name without the engine tag) whose scores the fit read; "" where the file does not say
    embedder: str = ""
    checked_on: tuple[str, ...] = ()  # other embedders it was measured to hold for (a refit starts with none)
    signals: tuple[str, ...] = field(default=())  # signal sources the features need (``signals_needed``)

    def unfit_for(self, embedder_name: str, available: Sequence[str]) -> str | None:
        """Why this model does not apply to an answerer with this embedder and these signal sources; None if it does."""
        name = base_name(embedder_name)
        if self.embedder and name != self.embedder and name not in self.checked_on:
            return f"the no-answer model was fitted for the embedder {self.embedder}, not {name}"
        missing = [SOURCES.get(source, source) for source in self.signals if source not in available]
        if missing:
            return f"the no-answer model reads {', '.join(missing)}, which this configuration does not compute"
        return None

    def probability(self, values: dict[str, float]) -> float:
        return float(self.probabilities(np.array([[values[name] for name in self.features]]))[0])

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """P(answers) of each row of ``x``: the features' values in order (a fit may weigh columns after them)."""
        z = (x - self.mean) / self.scale
        return 1 / (1 + np.exp(-(z @ self.weights + self.bias)))

    def to_json(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "weights": self.weights.round(6).tolist(),
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 4),
            "fitted_for": {
                "embedder": self.embedder,
                "checked_on": list(self.checked_on),
                "signals": list(self.signals),
            },
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict) -> Model:
        """A file without ``fitted_for`` (written before it existed) is read as fitted for its provenance's
        embedder and the signals its features need."""
        provenance = dict(data.get("provenance", {}))
        fitted = data.get("fitted_for") or {}
        embedder = fitted.get("embedder", base_name(provenance.get("embedder_name", "")))
        signals = fitted.get("signals", signals_needed(data["features"]))
        return cls(
            features=tuple(data["features"]),
            mean=np.array(data["mean"], np.float64),
            scale=np.array(data["scale"], np.float64),
            weights=np.array(data["weights"], np.float64),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            provenance=provenance,
            embedder=embedder,
            checked_on=tuple(fitted.get("checked_on", ())),
            signals=tuple(signals),
        )


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> Model:
    """The shipped model (read once per process)."""
    return Model.from_json(json.loads(path.read_text(encoding="utf-8")))
