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
from dataclasses import dataclass, field

import numpy as np

from qa import languages

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
                # 8 significant digits: far below the rows' own precision, half the bytes of repr's 17
                "sums": {lang: [float(f"{v:.8g}") for v in s] for lang, s in self.sums.items()},
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


def combine(parts: Sequence[Stats], dim: int, *, shrink: float = SHRINK) -> Stats:
    """The statistics of the union of disjoint row sets (a scope of collections): sums and counts add up."""
    total = Stats(dim=dim, shrink=shrink)
    for part in parts:
        for lang, count in part.counts.items():
            total.sums[lang] = total.sums.get(lang, np.zeros(dim)) + part.sums[lang]
            total.counts[lang] = total.counts.get(lang, 0) + count
    return total


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


def corrected(rows: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Rows of one language moved by its offset and renormalized, as ``apply`` moves them (float32, a copy):
    how qa.ranking corrects a retrieved chunk and its sentences. The chunk's sentence rows take its passage
    offset (measured as good as separate sentence statistics: docs/quality.md), so the best sentence's half
    of a passage's score leans no more to the question's language than the passage's own half."""
    out = np.array(rows, dtype=np.float32, copy=True)
    moved = out.any(axis=1)  # a zero row (nothing was embedded) stays zero
    out[moved] -= offset.astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)
