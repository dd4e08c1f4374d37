"""The ranking stage: a store's hits corrected for their language (qa.centering), once, for every store.

A store (FAISS or Milvus) returns chunk rows as embedded and their raw inner products with the query, and
keeps per-language sums and counts of its rows current with every write. Here each candidate is scored as
the corrected row would score it, ``query . normalize(row - offset[language])``, and its sentence rows take
the same offset, so the correction is one piece of code that no store can lack (STYLE.md 13).

The corrected top k is searched for, not guessed from one global list: one raw search over all rows (rows
of a language without an offset score as stored) and one per corrected language, ``DEPTH * k`` rows each,
deepened while an unseen row of that language could still enter the top k. A row of language L scoring
``s`` as stored scores ``(s - query . o) / |v - o|`` corrected, and raw scores only fall further down a
search's list; ``|v - o|`` spreads little within a language (XQuAD's mixed corpus: el 0.954-0.978, zh
0.941-0.974), so the bound takes the smallest norm seen among the language's fetched rows less
``NORM_MARGIN``. On that corpus this finds exactly what every row corrected by brute force ranks
(tests/test_ranking.py checks the same on a small corpus). A one-language corpus has no offsets: the
store's own top k is returned untouched. A search inside some collections (qa.collections) is corrected by
their rows' statistics alone: what competes is the scope's rows, so a collection ranks as it would alone.
Candidates arrive as scored rows (``search_rows``: id, raw score, language, vector), the groups of one round
searched together (``search_groups``: Milvus sends them at once), each inside the scope; only the k kept are
read whole (``hits``), texts, sentences and all.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qa import centering
from qa.collections import Scope
from qa.stores.base import Hit, Scored, SearchIndex

DEPTH = 2  # rows per group and passage wanted: 1 missed part of the corrected top 30 for 6 of 298 XQuAD questions
NORM_MARGIN = 0.02  # how much smaller than any fetched row's an unseen row's corrected norm is assumed to be
MAX_ROUNDS = 4  # a group's depth doubles at most this often


def search(index: SearchIndex, query: np.ndarray, k: int, collections: Scope = None) -> list[Hit]:
    """The k hits of the highest corrected score, best first, scores and sentence rows corrected; only hits
    of documents in ``collections`` (None: every one), each search filtered inside the store, and corrected
    by the statistics of those collections' rows alone: a collection ranks as an index holding it alone."""
    stats = index.language_stats(collections)
    offsets = stats.offsets() if stats is not None else {}
    if not offsets or k <= 0:
        return index.search_hits(query, k, collections=collections)
    query = np.asarray(query, np.float32)
    offsets32 = {lang: offset.astype(np.float32) for lang, offset in offsets.items()}
    shifts = {lang: float(query @ offset) for lang, offset in offsets32.items()}
    found: dict[int, Scored] = {}
    floors: dict[str, float] = {lang: 1.0 for lang in offsets}  # the smallest corrected norm seen per language
    depth: dict[str | None, int] = {group: DEPTH * k for group in (None, *sorted(offsets))}
    for _ in range(MAX_ROUNDS):
        last: dict[str | None, float] = {}
        for group, rows in index.search_groups(query, depth, collections).items():
            wanted = depth[group]
            for row in rows:
                if row.id not in found:
                    found[row.id], norm = _rescored(row, query, offsets32)
                    if row.language in floors:
                        floors[row.language] = min(floors[row.language], norm)
            if len(rows) == wanted:  # not exhausted: rows below the last one are unseen
                last[group] = rows[-1].score
        scores = sorted((row.score for row in found.values()), reverse=True)
        kth = scores[k - 1] if len(scores) >= k else -np.inf
        depth = {group: 2 * depth[group] for group, s in last.items() if _bound(s, group, shifts, floors) > kth}
        if not depth:
            break
    best = sorted(found.values(), key=lambda row: -row.score)[:k]
    return [correct(hit, offsets32) for hit in index.hits(best)]


def _rescored(row: Scored, query: np.ndarray, offsets: dict[str, np.ndarray]) -> tuple[Scored, float]:
    """The row with its corrected score, and the norm of its shifted vector (1 for a language left as is)."""
    offset = offsets.get(row.language)
    if offset is None or not row.vector.any():  # a zero row (nothing was embedded) stays zero, as centering's
        return row, 1.0
    shifted = row.vector - offset
    norm = float(np.linalg.norm(shifted))
    return replace(row, score=float(shifted @ query) / norm if norm > 0 else 0.0), norm


def _bound(raw: float, group: str | None, shifts: dict[str, float], floors: dict[str, float]) -> float:
    """The best corrected score a row of ``group`` scoring at most ``raw`` as stored could have."""
    if group is None:  # rows without an offset score as stored; corrected languages have their own group
        return raw
    top = raw - shifts[group]
    return top / max(floors[group] - NORM_MARGIN, 1e-3) if top > 0 else top / 2  # |v - o| <= 2 for unit rows


def correct(hit: Hit, offsets: dict[str, np.ndarray]) -> Hit:
    """A kept hit's sentence and context rows moved by its language's offset, as its chunk row was (its score
    is already the corrected one: ``hits`` gives each hit its row's score)."""
    offset = offsets.get(hit.language)
    if offset is None:
        return hit
    return replace(
        hit,
        sentence_vectors=centering.corrected(hit.sentence_vectors, offset),
        context_vectors=centering.corrected(hit.context_vectors, offset),
    )
