"""Store scaling on synthetic chunk vectors: build time, memory, single-query search time, recall@10.

    python bench/store_scaling.py [--sizes 100000,1000000] [--hnsw-max 100000] [--dim 896]

Vectors: --dim wide (default: the default embedder's, 896 = e5's 384 + USE's 512), normalized, drawn
around 2,000 random centres (cluster structure like real embeddings),
written block by block to a memory-mapped vectors.npy as the store keeps them. For each size, a fresh
process builds the index qa would choose (QA_INDEX_KIND=auto, tuned at build time to recall@10 >= 0.98),
and another fresh process loads it as `qa serve` would (index + memory-mapped vectors), then times 1,000
single-query searches with one thread. Recall@10 is against exact search; the baseline is exact
IndexFlatIP single-query search on the same vectors, timed in the same process after the RSS reading.
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


def build_child(work: Path, kind: str) -> None:
    import faiss

    from qa import vector_index

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    started = time.perf_counter()
    index, info = vector_index.build(vectors, kind)
    seconds = time.perf_counter() - started
    faiss.write_index(index, str(work / f"{kind}.faiss"))
    anon, file = rss_split_mb()
    info.update(build_s=seconds, build_peak_rss_mb=peak_rss_mb(), build_anon_mb=anon, build_file_mb=file)
    info.update(index_bytes=(work / f"{kind}.faiss").stat().st_size)
    (work / f"{kind}.json").write_text(json.dumps(info))


def search_child(work: Path, kind: str) -> None:
    import faiss

    from qa import store, vector_index  # noqa: F401 - qa.store pins FAISS to one thread, as in `qa serve`

    base = rss_mb()
    info = json.loads((work / f"{kind}.json").read_text())
    index = faiss.read_index(str(work / f"{kind}.faiss"))
    vector_index.configure(index, info)
    vectors = np.load(work / "vectors.npy", mmap_mode="r")  # for the exact baseline below
    rows = vector_index.RowFile(work / "vectors.npy")  # what qa.store.load gives search for re-scoring
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        _, top = vector_index.search(index, info, rows, query[None, :], 10)
        times.append(time.perf_counter() - started)
        found.append(top[0])
    serve_rss = rss_mb()
    serve_anon, serve_file = rss_split_mb()
    # the baseline: exact single-query search, one thread, on the same vectors
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
        "recall": vector_index.recall_at_k(np.array(found), truth),
        "serve_rss_mb": serve_rss,
        "serve_anon_mb": serve_anon,
        "serve_file_mb": serve_file,
        "python_rss_mb": base,
        "exact_p50_ms": pct(exact, 50) * 1000,
    }
    (work / f"{kind}.search.json").write_text(json.dumps(result))


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
                    f" + {res['serve_file_mb']:.0f} MB; index file {info['index_bytes'] / 1e6:.0f} MB",
                    flush=True,
                )
    print("targets at 1M: p50 < 2 ms, recall@10 >= 0.98, serve RSS < 2 GB (RSS includes touched mmap pages)")


if __name__ == "__main__":
    main()
