"""Take each language's own mean direction off the passage rows, so languages compete on content alone.

A multilingual encoder places every language around a mean vector of its own (Libovický et al. 2020, "On
the Language Neutrality of Pre-trained Multilingual Representations"). In a corpus of several languages an
English question then leans towards every English passage, answering or not: on XQuAD's mixed corpus
English questions found their paragraph first 0.703 of the time against 0.85-0.97 in any one language
(issue 14, docs/quality.md). Shifting each language's rows by the distance between its mean and the
corpus mean removes that lean:

    row' = normalize(row - (mean_L - mean))      mean_L shrunk towards mean: (sum_L + k * mean) / (n_L + k)

- A one-language corpus (mean_L == mean) is left exactly as it was, the seed corpus included.
- Rows stay unit length, so every score is still a cosine, on the scale the no-answer threshold was
  calibrated on; renormalized, the correction lifted xquad.mixed.json's recall@1 much more than the shift
  alone or rows centred on zero (with or without a question mean): docs/quality.md has every variant.
- The question is not touched: it needs no statistics of questions asked before.
- With few passages a language's mean is partly its topic: shrinking towards the corpus mean by ``SHRINK``
  passages' worth keeps a language of one stray passage (a misidentified one, say) almost where it was.
- Statistics are sums and counts, so adding or removing a document updates them without re-reading the
  others, and the corrected rows are recomputed from the stored raw ones without re-embedding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from qa import languages
from qa.stores.base import DocRows

SHRINK = 5.0  # passages' worth of the corpus mean added to each language's mean (docs/quality.md)
UNKNOWN = ""  # rows with no letters to judge the language by: counted in the corpus mean, never shifted
MIN_ROWS = 3  # rows a language needs before it is corrected at all


def language(text: str, document: str = "") -> str:
    """The language a row is grouped by: the chunk's own when it is long enough to identify, else its
    document's (a 60-character tail of a German paragraph reads as Welsh or Luxembourgish to py3langid)."""
    letters = sum(ch.isalpha() for ch in text)
    source = text if letters >= languages.IDENTIFY_MIN_LETTERS or not document else document[:2000]
    return languages.detect(source) or UNKNOWN


@dataclass
class Stats:
    """Per-language sums and counts of raw rows: enough to derive every language's offset, and to update."""

    dim: int
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    shrink: float = SHRINK

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def overall(self) -> np.ndarray:
        """The corpus mean (zeros for an empty corpus)."""
        if not self.total:
            return np.zeros(self.dim, np.float64)
        return sum(self.sums.values()) / self.total

    def offsets(self) -> dict[str, np.ndarray]:
        """What each language's rows are shifted by: its shrunk mean minus the corpus mean.

        Only languages of at least ``MIN_ROWS`` rows count: one or two stray rows are a misidentified
        passage (py3langid reads a few English paragraphs of XQuAD as Nigerian Pidgin), not a language, and
        rows with no letters are no language either. Fewer than two languages: nothing is touched.
        """
        languages = [lang for lang, n in self.counts.items() if n >= MIN_ROWS and lang != UNKNOWN]
        if len(languages) < 2:
            return {}
        mean = self.overall
        return {
            lang: (self.sums[lang] - self.counts[lang] * mean) / (self.counts[lang] + self.shrink) for lang in languages
        }

    def add(self, rows: np.ndarray, langs: Sequence[str | None], sign: int = 1) -> None:
        """Count rows in (``sign=-1``: out, for a document removed or replaced)."""
        rows = np.asarray(rows, np.float64)
        for lang in set(langs):
            key = lang or UNKNOWN
            picked = rows[[i for i, x in enumerate(langs) if (x or UNKNOWN) == key]]
            self.sums[key] = self.sums.get(key, np.zeros(self.dim)) + sign * picked.sum(axis=0)
            self.counts[key] = self.counts.get(key, 0) + sign * len(picked)
            if self.counts[key] <= 0:
                del self.sums[key], self.counts[key]

    def remove(self, rows: np.ndarray, langs: Sequence[str | None]) -> None:
        self.add(rows, langs, sign=-1)

    def to_json(self) -> str:
        return json.dumps(
            {
                "dim": self.dim,
                "shrink": self.shrink,
                "counts": self.counts,
                "sums": {lang: [float(v) for v in s] for lang, s in self.sums.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Stats:
        raw = json.loads(text)
        return cls(
            dim=int(raw["dim"]),
            sums={lang: np.asarray(s, np.float64) for lang, s in raw["sums"].items()},
            counts={lang: int(n) for lang, n in raw["counts"].items()},
            shrink=float(raw["shrink"]),
        )


def fit(rows: np.ndarray, langs: Sequence[str | None], *, shrink: float = SHRINK) -> Stats:
    """Statistics of raw rows, one language per row (qa.languages.detect; None for no letters)."""
    rows = np.asarray(rows)
    stats = Stats(dim=rows.shape[1] if rows.ndim == 2 else 0, shrink=shrink)
    if len(rows):
        stats.add(rows, langs)
    return stats


def shift(rows: np.ndarray, langs: Sequence[str | None], stats: Stats) -> np.ndarray:
    """Each row moved by its language's offset, not renormalized (float32, a copy; the input is kept)."""
    out = np.array(rows, dtype=np.float32, copy=True)
    keys = np.array([lang or UNKNOWN for lang in langs])
    keys[~out.any(axis=1)] = "\0"  # a zero row (nothing was embedded) stays zero
    for lang, offset in stats.offsets().items():
        out[keys == lang] -= offset.astype(np.float32)
    return out


def apply(rows: np.ndarray, langs: Sequence[str | None], stats: Stats) -> np.ndarray:
    """The rows to search: each shifted by its language's offset and renormalized (float32, a copy)."""
    if not stats.offsets() or not len(rows):
        return np.array(rows, dtype=np.float32, copy=True)
    out = shift(rows, langs, stats)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def restore(rows: np.ndarray, langs: Sequence[str | None], stats: Stats) -> np.ndarray:
    """The raw rows back from searched ones (``apply``'s inverse for unit-length raw rows, as every embedder
    returns), so a document kept by the next build is re-centred with new statistics, never re-embedded."""
    out = np.array(rows, dtype=np.float64, copy=True)
    offsets = stats.offsets()
    if not offsets or not len(out):
        return out.astype(np.float32)
    keys = np.array([lang or UNKNOWN for lang in langs])
    for lang, offset in offsets.items():
        picked = keys == lang
        # searched = (raw - offset) / s with |raw| = 1: s solves |s * searched + offset| = 1
        along = out[picked] @ offset
        scale = -along + np.sqrt(np.maximum(along**2 - offset @ offset + 1.0, 0.0))
        moved = out[picked].any(axis=1)[:, None]  # a zero row was never shifted
        out[picked] = np.where(moved, scale[:, None] * out[picked] + offset, 0.0)
    return out.astype(np.float32)


@dataclass
class Correction:
    """What a generation stores: the statistics of its passage rows and of its sentence rows."""

    chunks: Stats
    sentences: Stats

    def to_dict(self) -> dict:
        return {"chunks": json.loads(self.chunks.to_json()), "sentences": json.loads(self.sentences.to_json())}

    @classmethod
    def from_dict(cls, raw: dict) -> Correction:
        return cls(Stats.from_json(json.dumps(raw["chunks"])), Stats.from_json(json.dumps(raw["sentences"])))


def chunk_languages(text: str, chunks: Sequence[tuple[int, ...]]) -> list[str]:
    """The language of each chunk (start, end, ...) of a document's text."""
    return [language(text[chunk[0] : chunk[1]], text) for chunk in chunks]


def correct(
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    context_vectors: np.ndarray,
    chunk_langs: Sequence[str],
    sentence_langs: Sequence[str],
) -> tuple[Correction, np.ndarray, np.ndarray, np.ndarray]:
    """Statistics of a corpus's raw rows and the rows to search (sentences and their readings in context
    share the sentences' statistics)."""
    correction = Correction(fit(vectors, chunk_langs), fit(sentence_vectors, sentence_langs))
    return (
        correction,
        apply(vectors, chunk_langs, correction.chunks),
        apply(sentence_vectors, sentence_langs, correction.sentences),
        apply(context_vectors, sentence_langs, correction.sentences),
    )


def correct_rows(documents: Sequence[DocRows], dim: int) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray, np.ndarray]:
    """A generation's rows to search, from its documents' raw rows: (chunk languages, the statistics as the
    manifest stores them, chunk, sentence and context rows). Languages a document already carries (a
    document kept from the previous generation) are not identified again."""
    chunk_langs: list[str] = []
    sentence_langs: list[str] = []
    for rows in documents:
        langs = rows.languages if rows.languages is not None else chunk_languages(rows.doc.text, rows.chunks)
        chunk_langs.extend(langs)
        per_sentence = [langs[0] if langs else UNKNOWN] * len(rows.sentences)
        for lang, (_, _, first, end) in zip(langs, rows.chunks):
            per_sentence[first:end] = [lang] * (end - first)
        sentence_langs.extend(per_sentence)

    def stack(name: str) -> np.ndarray:
        parts = [getattr(r, name) for r in documents if len(getattr(r, name))]
        return np.vstack(parts) if parts else np.empty((0, dim), np.float32)

    correction, vectors, sentence_vectors, context_vectors = correct(
        stack("vectors"), stack("sentence_vectors"), stack("context_vectors"), chunk_langs, sentence_langs
    )
    return np.array(chunk_langs, dtype="<U16"), correction.to_dict(), vectors, sentence_vectors, context_vectors


def raw_rows(rows: DocRows, langs: np.ndarray | None, chunk_rows: np.ndarray, correction: Correction | None) -> DocRows:
    """A stored document's rows as the model gave them (``correct_rows`` undone), with its chunks' languages."""
    if langs is None:  # a generation written before languages were stored: identified again at assembly
        return rows
    chunk_langs = [str(lang) for lang in langs[chunk_rows]]
    if correction is None:
        return replace(rows, languages=chunk_langs)
    sentence_langs = [UNKNOWN] * len(rows.sentences)
    for lang, (_, _, first, end) in zip(chunk_langs, rows.chunks):
        sentence_langs[first:end] = [lang] * (end - first)
    return replace(
        rows,
        vectors=restore(rows.vectors, chunk_langs, correction.chunks),
        sentence_vectors=restore(rows.sentence_vectors, sentence_langs, correction.sentences),
        context_vectors=restore(rows.context_vectors, sentence_langs, correction.sentences),
        languages=chunk_langs,
    )
