"""The searchable FAISS index of chunk vectors, its type chosen by size and tuned at build time.

- ``flat`` (``IndexScalarQuantizer`` with 8-bit codes of a fixed range, float16 for rows beyond it) while
  the corpus is small: nothing to train or tune, and the index is the generation's only copy of the chunk
  vectors (read back with ``reconstruct``; codes of a fixed range round-trip, so a copied row never drifts).
- ``ivf-sq8`` (``IndexIVFScalarQuantizer``, 8-bit codes) when large: a build in seconds (k-means on a
  sample, then one assignment pass), and ``nprobe`` tuned until recall@10 against exact search on a sample
  of perturbed stored vectors reaches the target.
- ``hnsw`` (``IndexHNSWFlat``, M=32, efConstruction=128) on request: the fastest queries, but it holds a
  float copy of every vector plus its graph, and its build is slow on few cores.

Approximate kinds fetch a few more candidates than asked and re-score them against the stored float16
rows (``chunk_rows.npy``, read with pread), so the 8-bit codes cost ranking precision only at the margin:
there the codes are a search structure and the float16 rows the stored vectors.
The chosen kind and its tuned parameters go in the manifest (``search_index``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

from qa.stores.arrayfile import ArrayFile

FLAT_MAX = 50_000  # above this many chunks, an approximate index (exact scan would exceed ~2 ms per query)
TARGET_RECALL = 0.98
# tune a little above the target: a sample of queries is only a sample (0.01 chose nprobe=1 at 1M, which then
# measured 0.979 on 1,000 other questions)
TUNE_MARGIN = 0.015
TUNE_QUERIES = 500
EXACT_ROWS = 10_000  # a selection of at most this many rows is scanned exactly (``_exact``), not approximated
WIDEN_MAX = 16  # how many times its tuned nprobe/efSearch a selective search may look at, at most
RERANK = 2  # approximate kinds fetch RERANK * k candidates, then re-score exactly
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128  # faiss's default 40 gave recall 0.865 at 1M here
KINDS = ("auto", "flat", "ivf-sq8", "hnsw")
# codes of a flat index: "int8" (1 byte a dimension, |x| <= the range: cosine 0.99994 with the row on XQuAD,
# recall within 0.002; docs/performance.md) or "fp16" (exact to float16; also where rows exceed the range)
FLAT_CODES = "int8"
FLAT_INT8_RANGE = 0.25


def flat_codes(vectors: np.ndarray) -> str:
    """``FLAT_CODES``, except float16 for rows that int8's fixed range would clip (another model's scale).

    A unit vector of the default embedder stays within +-0.18 (XQuAD: 0.17 at most, after centering), where
    int8 codes keep a cosine of 0.9999 with the row; a model whose rows reach past ``FLAT_INT8_RANGE`` gets
    exact float16 codes instead. Decided per generation: a row copied from one kind into the other is
    quantized once more at most, never clipped.
    """
    if FLAT_CODES == "int8" and len(vectors) and max(float(vectors.max()), -float(vectors.min())) > FLAT_INT8_RANGE:
        return "fp16"
    return FLAT_CODES


@contextmanager
def all_cores() -> Iterator[None]:
    """Builds use every core; searches stay on one (``search``), so restore the thread's setting afterwards."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def choose_kind(n: int, requested: str = "auto") -> str:
    if requested not in KINDS:
        raise ValueError(f"unknown index kind {requested!r}: choose one of {', '.join(KINDS)}")
    if requested != "auto":
        return requested
    return "flat" if n <= FLAT_MAX else "ivf-sq8"


def build(vectors: np.ndarray, requested: str = "auto", *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A searchable index over ``vectors`` (rows are ids) and its description for the manifest."""
    dim = vectors.shape[1] if vectors.ndim == 2 else 1
    n = len(vectors) if vectors.ndim == 2 else 0
    kind = choose_kind(n, requested)
    if kind == "flat" or n < 1000:  # too few vectors to train or tune anything
        codes = flat_codes(vectors)
        if codes == "int8":  # a fixed range, no training: codes survive a copy into the next generation
            index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT)
            bounds = np.array([-FLAT_INT8_RANGE, 2 * FLAT_INT8_RANGE], np.float32)
            faiss.copy_array_to_vector(bounds, index.sq.trained)
            index.is_trained = True
        else:
            index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        _add(index, vectors)
        return index, {"kind": "flat", "codes": codes}
    rng = np.random.default_rng(seed)
    with all_cores():
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            _add(index, vectors)
            info = {"kind": "hnsw", "M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
        else:
            nlist = _nlist(n)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            index.cp.niter = 10  # centroids need not be perfect: nprobe is tuned for recall afterwards
            sample = np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))
            index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
            _add(index, vectors)
            info = {"kind": "ivf-sq8", "nlist": nlist}
        info.update(_tune(index, vectors, info["kind"], rng))
    return index, info


def stored_rows(index: Any, info: dict[str, Any], vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as a generation stores them: a flat index's codes decoded, else the float16 rows."""
    if info.get("kind") == "flat":
        return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.empty((0, index.d), np.float32)
    return np.asarray(vectors, dtype=np.float16).astype(np.float32)


def configure(index: Any, info: dict[str, Any]) -> None:
    """Apply the tuned search parameter recorded in the manifest to a freshly read index."""
    if info.get("kind") == "ivf-sq8":
        faiss.extract_index_ivf(index).nprobe = int(info["nprobe"])
    elif info.get("kind") == "hnsw":
        index.hnsw.efSearch = int(info["efSearch"])


def search(
    index: Any,
    info: dict[str, Any],
    vectors: np.ndarray | ArrayFile | None,
    queries: np.ndarray,
    k: int,
    rows: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows by inner product; approximate kinds re-score their candidates with the float vectors.
    ``rows``: search only these (one language's, for qa.ranking); ``excluded``: never these (dead rows of a
    segmented index, qa.stores.segments; only when ``rows`` is None); missing results are row -1.

    One thread per search, set for the calling thread here rather than for the process at import: a single
    query gains nothing from OpenMP and pays for its wake-ups (measured 5.4 ms with one thread vs 40 ms
    with two at 100k flat vectors).
    """
    faiss.omp_set_num_threads(1)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    dead = 0 if excluded is None or rows is not None else len(excluded)
    k = min(k, index.ntotal - dead if rows is None else len(rows))
    if k <= 0:
        return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
    approximate = info.get("kind", "flat") != "flat" and vectors is not None
    if rows is not None and approximate and len(rows) <= EXACT_ROWS:
        return _exact(vectors, queries, k, rows)
    params = None
    if rows is not None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
        params = _selected(info, selector, index.ntotal, len(rows))
    elif dead:
        assert excluded is not None
        inner = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
        params = _selected(info, faiss.IDSelectorNot(inner), index.ntotal, index.ntotal - dead)
        params.keep_inner = inner  # IDSelectorNot holds a raw pointer too
    if not approximate:
        return index.search(queries, k, params=params)
    _, candidates = index.search(queries, min(index.ntotal, RERANK * k), params=params)
    scores = np.full((len(queries), k), -np.inf, np.float32)
    rows = np.full((len(queries), k), -1, np.int64)
    for i, found in enumerate(candidates):
        found = found[found >= 0]
        order = np.argsort(found)  # ascending rows read the memory-mapped file front to back
        exact = np.asarray(vectors[found[order]], dtype=np.float32) @ queries[i]
        best = np.argsort(-exact)[:k]
        scores[i, : len(best)] = exact[best]
        rows[i, : len(best)] = found[order][best]
    return scores, rows


def _exact(
    vectors: np.ndarray | ArrayFile, queries: np.ndarray, k: int, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of a few selected rows by exact inner product with their stored float vectors.

    An approximate index searched with a selector only looks where it would look for the whole corpus
    (nprobe lists, an HNSW neighbourhood): a small collection there gets whatever of its rows happen to lie
    in those places, not its own top k. Scanning the rows themselves costs what a flat index of their size
    does, reading their float16 rows in runs (documents of one collection are neighbours), and is exact.
    """
    ordered = np.sort(np.asarray(rows, np.int64))
    runs = np.split(ordered, np.flatnonzero(np.diff(ordered) != 1) + 1)  # a collection's documents lie together
    picked = np.concatenate([np.asarray(vectors[int(r[0]) : int(r[-1]) + 1], dtype=np.float32) for r in runs])
    scores = queries @ picked.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, top, axis=1).astype(np.float32), ordered[top].astype(np.int64)


def _selected(info: dict[str, Any], selector: Any, total: int, selected: int) -> Any:
    """Search parameters restricted by ``selector`` (``selected`` of ``total`` rows pass it), keeping the tuned
    ``nprobe``/``efSearch`` (parameters passed to a search replace the index's own, whose defaults would otherwise
    apply), widened by the share of rows left out, so a search sees about as many selected rows as the tuned
    search sees rows."""
    widen = min(WIDEN_MAX, max(1, math.ceil(total / max(selected, 1))))
    if info.get("kind") == "ivf-sq8":
        nprobe = min(int(info["nprobe"]) * widen, int(info.get("nlist", info["nprobe"])))
        params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
    elif info.get("kind") == "hnsw":
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=min(int(info["efSearch"]) * widen, 4096))
    else:
        params = faiss.SearchParameters(sel=selector)
    params.keep_selector = selector  # the parameters hold a raw pointer: keep the selector alive with them
    return params


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 20_000) -> np.ndarray:
    """Ground truth by blocks, so a memory-mapped matrix is never copied whole into memory."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(vectors), block):
        part = np.asarray(vectors[start : start + block], dtype=np.float32)
        scores = queries @ part.T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.hstack([best_scores, np.take_along_axis(scores, top, axis=1)])
        best_rows = np.hstack([best_rows, top + start])
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_rows = np.take_along_axis(best_rows, keep, axis=1)
    return best_rows


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def sample_queries(vectors: np.ndarray, count: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """Stored vectors nudged off themselves: queries that land near, not on, the data."""
    rows = np.sort(rng.choice(len(vectors), size=min(count, len(vectors)), replace=False))
    queries = np.asarray(vectors[rows], dtype=np.float32)
    queries = queries + rng.normal(0, noise / math.sqrt(queries.shape[1]), queries.shape).astype(np.float32)
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def _tune(index: Any, vectors: np.ndarray, kind: str, rng: np.random.Generator) -> dict[str, Any]:
    queries = sample_queries(vectors, TUNE_QUERIES, rng)
    truth = exact_top_k(vectors, queries, 10)
    name, values = (
        ("nprobe", [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256])
        if kind == "ivf-sq8"
        else (
            "efSearch",
            [16, 24, 32, 48, 64, 96, 128, 256, 512],
        )
    )
    recall = 0.0
    for value in values:
        info = {"kind": kind, name: value}
        configure(index, info)
        recall = recall_at_k(search(index, info, vectors, queries, 10)[1], truth)
        if recall >= TARGET_RECALL + TUNE_MARGIN:
            break
    return {name: value, "tuned_recall_at_10": round(recall, 4), "tune_queries": len(queries)}


def _nlist(n: int) -> int:
    """About 2 * sqrt(n) lists, a power of two: ~500 vectors a list at 1M."""
    return int(2 ** round(math.log2(max(16.0, 2 * math.sqrt(n)))))


def _add(index: Any, vectors: np.ndarray, block: int = 20_000) -> None:
    """Add in blocks so a memory-mapped matrix is streamed, not copied whole (a block's float32 copy is 72 MB
    at 896 columns: 100,000 rows took 358 MB beside a merge's index, qa.stores.streamed)."""
    for start in range(0, len(vectors), block):
        index.add(np.ascontiguousarray(vectors[start : start + block], dtype=np.float32))
