"""The ranking stage: a store's hits corrected for their language (qa.centering), once, for every store.

A store (FAISS or Milvus) returns chunk rows as embedded and their raw inner products with the query, and
keeps per-language sums and counts of its rows current with every write. Here each candidate is scored as
the corrected row would score it, ``query . normalize(row - offset[language])``, and its sentence rows take
the same offset, so the correction is one piece of code that no store can lack (STYLE.md 13).

The corrected top k is found exactly, not from a guessed over-fetch: the raw search runs once over all rows
(rows of a language without an offset score as stored) and once per corrected language, each deepened until
no unseen row of it could still enter the top k. For a unit row ``v`` of language L with raw score ``s``,
``|v - o| >= 1 - |o|``, so its corrected score is at most ``(s - query . o) / (1 - |o|)`` (``1 + |o|`` when
negative), and raw scores only fall further down a search's list. A one-language corpus has no offsets: the
store's own top k is returned untouched.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qa import centering
from qa.stores.base import Hit, SearchIndex

MAX_ROUNDS = 6  # a group's depth doubles at most this often (k * 64 rows): a bound that loose means a tiny corpus
SLACK = 2e-3  # stored rows are 8-bit codes (FAISS) or float32 (Milvus): a unit row's norm is 1 within this


def search(index: SearchIndex, query: np.ndarray, k: int) -> list[Hit]:
    """The k hits of the highest corrected score, best first, scores and sentence rows corrected."""
    stats = index.language_stats()
    offsets = stats.offsets() if stats is not None else {}
    if not offsets or k <= 0:
        return index.search_hits(query, k)
    query = np.asarray(query, np.float32)
    shifts = {lang: float(query @ offset.astype(np.float32)) for lang, offset in offsets.items()}
    radii = {lang: float(np.linalg.norm(offset)) for lang, offset in offsets.items()}
    found: dict[tuple[str, int], Hit] = {}
    depth: dict[str | None, int] = {group: k for group in (None, *sorted(offsets))}
    for _ in range(MAX_ROUNDS):
        last: dict[str | None, float] = {}
        for group, wanted in depth.items():
            hits = index.search_hits(query, wanted, language=group)
            for hit in hits:
                key = (hit.chunk.doc_id, hit.chunk.start)
                if key not in found:
                    found[key] = correct(hit, query, offsets)
            if len(hits) == wanted:  # not exhausted: rows below the last one are unseen
                last[group] = hits[-1].score
        scores = sorted((hit.score for hit in found.values()), reverse=True)
        kth = scores[k - 1] if len(scores) >= k else -np.inf
        depth = {group: 2 * depth[group] for group, s in last.items() if _bound(s, group, shifts, radii) > kth}
        if not depth:
            break
    return sorted(found.values(), key=lambda hit: -hit.score)[:k]


def _bound(raw: float, group: str | None, shifts: dict[str, float], radii: dict[str, float]) -> float:
    """The best corrected score a row of ``group`` scoring at most ``raw`` as stored could have."""
    if group is None:  # rows without an offset score as stored; corrected languages have their own group
        return raw + SLACK
    top = raw - shifts[group]
    return top / (1 - radii[group] - SLACK) if top > 0 else top / (1 + radii[group] + SLACK)


def correct(hit: Hit, query: np.ndarray, offsets: dict[str, np.ndarray]) -> Hit:
    """The hit as its language's corrected rows score it (a language without an offset is left as stored)."""
    offset = offsets.get(hit.language)
    if offset is None or hit.vector is None:
        return hit
    row = centering.corrected(hit.vector[None, :], offset)[0]
    return replace(
        hit,
        score=float(row @ query),
        sentence_vectors=centering.corrected(hit.sentence_vectors, offset),
        context_vectors=centering.corrected(hit.context_vectors, offset),
    )
