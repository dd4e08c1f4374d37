"""Store scaling on synthetic rows in qa's real generation format: build time, memory, search time, recall@10.

    python bench/store_scaling.py [--sizes 100000,1000000] [--hnsw-max 100000] [--dim 896]

Vectors: --dim wide (default: the default embedder's, 896 = e5's 384 + USE's 512), normalized, drawn
around 2,000 random centres (cluster structure like real embeddings). For each size, a fresh process
writes a whole generation with the real store code (qa.stores.local.save: the index qa would choose,
tuned at build time to recall@10 >= 0.98, two sentences per chunk with their int8 rows, 160 latent terms
per chunk, 600 bytes of text per chunk), and another fresh process loads it as `qa serve` would (everything
memory-mapped), times 1,000 single-query searches with one thread (and whole hits, rows decoded), then has
a third process write the next generation (as `qa index` beside a server) and swaps to it. Recall@10 is
against exact search; the baseline is exact IndexFlatIP single-query search on the same vectors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, pct, peak_rss_mb, rss_mb, rss_split_mb

CENTRES = 2000
NOISE = 0.8  # noise norm per vector: cosine ~0.6 with its centre, between "unrelated" and "same topic"
QUERIES = 1000


def generate(path: Path, n: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CENTRES, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, CENTRES, m)] + rng.normal(0, NOISE / np.sqrt(dim), (m, dim)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    out.flush()
    del out


CHUNK_TEXT = 600  # bytes of text per chunk, about XQuAD's (615 B of Greek per chunk)
CHUNKS_PER_DOC = 4
SENTENCES = 2  # per chunk (XQuAD: 2.03)
TERMS = 160  # latent terms per chunk (e5's sparse head fires on ~135-195 per passage)


def write_generation(work: Path, kind: str, seed: int = 0) -> dict:
    """A generation in qa's real FORMAT, written by the real store code (qa.stores.local.save) from synthetic
    rows: the chunk vectors of vectors.npy, two sentences per chunk with their own rows, latent terms and text."""
    from qa import vector_index
    from qa.stores import local
    from qa.stores import rows as enc

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    index, info = vector_index.build(vectors, kind)
    docs = (n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC
    chunk = np.arange(n)
    text = np.frombuffer((b"lorem ipsum dolor sit amet " * (CHUNK_TEXT // 27 + 1))[:CHUNK_TEXT], np.uint8)
    sentence_rows = np.lib.format.open_memmap(work / "s.npy", mode="w+", dtype=np.int8, shape=(SENTENCES * n, dim))
    for start in range(0, n, 100_000):
        block = np.asarray(vectors[start : start + 100_000])
        for s in range(SENTENCES):
            noisy = block + rng.normal(0, 0.5 / np.sqrt(dim), block.shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            sentence_rows[SENTENCES * start + s : SENTENCES * (start + len(block)) : SENTENCES] = enc.encode_rows(noisy)
    doc_of = chunk // CHUNKS_PER_DOC
    bounds = np.stack([chunk * CHUNK_TEXT, (chunk + 1) * CHUNK_TEXT], axis=1)
    within = (chunk % CHUNKS_PER_DOC) * CHUNK_TEXT
    half = CHUNK_TEXT // 2
    arrays = {
        "texts": np.tile(text, n),
        "doc_bytes": np.stack([np.arange(docs) * CHUNK_TEXT * CHUNKS_PER_DOC,
                               np.minimum((np.arange(docs) + 1) * CHUNKS_PER_DOC, n) * CHUNK_TEXT], axis=1),
        "chunks": np.stack([doc_of, within, within + CHUNK_TEXT, SENTENCES * chunk, SENTENCES * (chunk + 1)],
                           axis=1).astype(np.int32),
        "chunk_bytes": bounds.astype(np.int64),
        "chunk_languages": np.ones(n, np.uint8),
        "sentences": np.stack([np.repeat(within, SENTENCES) + np.tile([0, half], n),
                               np.repeat(within, SENTENCES) + np.tile([half, CHUNK_TEXT], n)], axis=1).astype(np.int32),
        "sentence_rows": sentence_rows,
        "contexts": np.full(SENTENCES * n, -1, np.int32),
        "context_rows": np.empty((0, dim), np.int8),
        "sparse_ptr": np.arange(n + 1, dtype=np.int64) * TERMS,
        "sparse_ids": rng.integers(0, 16384, n * TERMS).astype(np.uint16),
        "sparse_weights": rng.integers(20, 120, n * TERMS).astype(np.uint8),  # one byte a weight (FORMAT 4)
    }  # fmt: skip
    if info["kind"] != "flat":
        arrays["chunk_rows"] = np.lib.format.open_memmap(work / "r.npy", mode="w+", dtype=np.float16, shape=(n, dim))
        for start in range(0, n, 100_000):
            arrays["chunk_rows"][start : start + 100_000] = vectors[start : start + 100_000]
    manifest = {
        "embedder": {"name": "synthetic", "dim": dim, "sparse": 2 * 256},
        "chunking": {"size": CHUNK_TEXT},
        "documents": {f"d{d:07d}.txt": {"id": f"d{d:07d}.txt", "sha256": "0" * 64, "title": f"Document {d}",
                                        "chunks": CHUNKS_PER_DOC, "pages": []} for d in range(docs)},
        "languages": ["", "en"],
        "search_index": info,
    }  # fmt: skip
    local.save(work / "index", manifest, arrays, index)
    seconds = time.perf_counter() - started
    for scratch in ("s.npy", "r.npy"):
        (work / scratch).unlink(missing_ok=True)
    return dict(info, build_s=seconds)


def build_child(work: Path, kind: str) -> None:
    info = write_generation(work, kind, seed=len(list(work.glob("*.json"))))
    anon, file = rss_split_mb()
    info.update(build_peak_rss_mb=peak_rss_mb(), build_anon_mb=anon, build_file_mb=file)
    gen = work / "index" / (work / "index" / "CURRENT").read_text().strip()
    info.update(index_bytes=sum(p.stat().st_size for p in gen.iterdir()))
    (work / f"{kind}.json").write_text(json.dumps(info))


def _serve(data, queries: np.ndarray) -> tuple[list[float], list[np.ndarray], list[float]]:
    """Search alone (the p50 target: no encoder), then whole hits as the answerer reads them."""
    times, found, hits = [], [], []
    for query in queries:
        started = time.perf_counter()
        _, top = data.search(query[None, :], 10)
        times.append(time.perf_counter() - started)
        found.append(top[0])
        started = time.perf_counter()
        data.search_hits(query, 10)
        hits.append(time.perf_counter() - started)
    return times, found, hits


def search_child(work: Path, kind: str) -> None:
    import faiss

    from qa.stores import local

    base = rss_mb()
    data = local.load(work / "index")  # as `qa serve` starts: every array and the index memory-mapped
    start_rss = rss_mb()
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    times, found, hits = _serve(data, queries)
    serve_rss = rss_mb()
    serve_anon, serve_file = rss_split_mb()
    # a re-index writes the next generation (here another process: `qa index` beside the server) and the
    # server swaps to it: the old generation is dropped, the new one mapped
    child(["--child", "build", str(work), kind])
    data = local.load(work / "index")
    swap_times, _, _ = _serve(data, queries[:200])
    swap_rss = rss_mb()
    # the baseline: exact single-query search, one thread, on the same vectors
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    flat = faiss.IndexFlatIP(vectors.shape[1])
    for start in range(0, len(vectors), 100_000):
        flat.add(np.ascontiguousarray(vectors[start : start + 100_000]))
    exact = []
    for query in queries[:30]:
        started = time.perf_counter()
        flat.search(query[None, :], 10)
        exact.append(time.perf_counter() - started)
    result = {
        "p50_ms": pct(times, 50) * 1000,
        "p99_ms": pct(times, 99) * 1000,
        "hits_p50_ms": pct(hits, 50) * 1000,
        "recall": vector_index_recall(found, truth),
        "start_rss_mb": start_rss,
        "serve_rss_mb": serve_rss,
        "swap_rss_mb": swap_rss,
        "swap_p50_ms": pct(swap_times, 50) * 1000,
        "serve_anon_mb": serve_anon,
        "serve_file_mb": serve_file,
        "python_rss_mb": base,
        "exact_p50_ms": pct(exact, 50) * 1000,
    }
    (work / f"{kind}.search.json").write_text(json.dumps(result))


def vector_index_recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    from qa import vector_index

    return vector_index.recall_at_k(np.array(found), truth)


def child(args: list[str]) -> None:
    subprocess.run([sys.executable, __file__, *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--hnsw-max", type=int, default=0, help="also build HNSW up to this size (slow to build)")
    parser.add_argument("--dim", type=int, default=None, help="vector width (default: the default embedder's)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, work, kind = args.child
        (build_child if role == "build" else search_child)(Path(work), kind)
        return
    from qa import vector_index
    from qa.config import DEFAULT_EMBEDDER
    from qa.embedding import make_embedder

    dim = args.dim or make_embedder(DEFAULT_EMBEDDER).dim  # builds no model weights: both load lazily or mmap
    print(f"# store scaling: {machine()}")
    print(f"vectors: dim {dim}, {CENTRES} cluster centres, normalized; {QUERIES} queries near stored vectors")
    header = (
        f"{'chunks':>9} {'kind':>8} {'params':>22} {'build':>8} {'build peak':>10} {'serve RSS':>9} "
        f"{'p50':>8} {'p99':>8} {'recall@10':>9} {'exact p50':>9} {'speed-up':>8}"
    )
    print(header)
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="qa-bench-store-") as tmp:
            work = Path(tmp)
            generate(work / "vectors.npy", n, dim)
            vectors = np.load(work / "vectors.npy", mmap_mode="r")
            queries = vector_index.sample_queries(vectors, QUERIES, np.random.default_rng(1))
            np.save(work / "queries.npy", queries)
            np.save(work / "truth.npy", vector_index.exact_top_k(vectors, queries, 10))
            del vectors
            kinds = [vector_index.choose_kind(n)] + (["hnsw"] if n <= args.hnsw_max else [])
            for kind in kinds:
                child(["--child", "build", str(work), kind])
                child(["--child", "search", str(work), kind])
                info = json.loads((work / f"{kind}.json").read_text())
                res = json.loads((work / f"{kind}.search.json").read_text())
                params = ", ".join(f"{k}={info[k]}" for k in ("nlist", "nprobe", "M", "efSearch") if k in info)
                print(
                    f"{n:>9} {kind:>8} {params or '-':>22} {info['build_s']:>7.1f}s "
                    f"{info['build_peak_rss_mb']:>8.0f}MB {res['serve_rss_mb']:>7.0f}MB "
                    f"{res['p50_ms']:>6.2f}ms {res['p99_ms']:>6.2f}ms {res['recall']:>9.3f} "
                    f"{res['exact_p50_ms']:>7.1f}ms {res['exact_p50_ms'] / res['p50_ms']:>7.1f}x",
                    flush=True,
                )
                print(
                    f"{'':>19} memory (anonymous + file-backed mmap pages): end of build {info['build_anon_mb']:.0f}"
                    f" + {info['build_file_mb']:.0f} MB; serving {res['serve_anon_mb']:.0f}"
                    f" + {res['serve_file_mb']:.0f} MB; generation {info['index_bytes'] / 1e6:.0f} MB"
                    f" ({info['index_bytes'] / n / 1024:.2f} KiB/chunk)",
                    flush=True,
                )
                print(
                    f"{'':>19} serve RSS after start {res['start_rss_mb']:.0f} MB, after 1,000 questions "
                    f"{res['serve_rss_mb']:.0f} MB, after a swap to the next generation {res['swap_rss_mb']:.0f} MB "
                    f"(p50 {res['swap_p50_ms']:.2f} ms); whole hits (rows decoded) p50 {res['hits_p50_ms']:.2f} ms",
                    flush=True,
                )
    print(
        "targets at 1M: p50 <= 2 ms, recall@10 >= 0.98, serve RSS <= 2 GB after start and after a swap "
        "(RSS includes touched mmap pages)"
    )


if __name__ == "__main__":
    main()
