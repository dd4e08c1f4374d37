"""Store scaling on synthetic rows in qa's real generation format: build time, memory, search time, recall@10.

    python bench/store_scaling.py [--sizes 100000,1000000] [--hnsw-max 100000] [--dim 896] [--json]

Vectors: --dim wide (default: the default embedder's, 896 = e5's 384 + USE's 512), normalized, drawn
around 2,000 random centres (cluster structure like real embeddings). For each size, a fresh process
writes a whole generation with the real store code (qa.stores.local.save: the index qa would choose,
tuned at build time to recall@10 >= 0.98, two sentences per chunk with their int8 rows, 160 latent terms
per chunk, 600 bytes of text per chunk), and another fresh process loads it as `qa serve` would (everything
memory-mapped), times 1,000 single-query searches with one thread (and whole hits, rows decoded), then has
a third process write the next generation (as `qa index` beside a server) and swaps to it. Recall@10 is
against exact search; the baseline is exact IndexFlatIP single-query search on the same vectors.

With --json, each size's generation gets changes instead, through the real store code (qa.stores.local_writer,
every other document kept as the indexer keeps it; the model's time is not counted): 100 uploads of one
document (4 chunks) one at a time, each timed until its own chunk is found by a search (``update_ms``, p50),
20 deletions until the document is gone (``delete_ms``), single-query search p50 and recall@10 against exact
search over the live rows with those changes unmerged, RSS, then the background merge (qa.stores.merge) with
searches running meanwhile (``merge_s``, ``search_p50_during_merge_ms``). One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
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
    from qa import centering, vector_index
    from qa.collections import DEFAULT
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
    total = np.zeros(dim, np.float64)
    for start in range(0, n, 100_000):
        total += np.asarray(vectors[start : start + 100_000], np.float64).sum(axis=0)
    whole = json.loads(centering.Stats(dim, {"en": total}, {"en": n}).to_json())
    stats = {"centering": whole, "collections": {DEFAULT: whole}}  # every document is in the default collection
    local.save(work / "index", manifest, arrays, index, stats)
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


UPDATES = 100  # documents uploaded one at a time, left unmerged for the search and recall figures
DELETES = 20


def _document(rng: np.random.Generator, centres: np.ndarray, number: int) -> tuple[object, np.ndarray]:
    """One uploaded document as the writer receives it (qa.stores.base.DocRows): CHUNKS_PER_DOC chunks of
    CHUNK_TEXT characters, SENTENCES sentences each, latent terms, vectors near the corpus's centres."""
    from qa.models import Document
    from qa.stores.base import DocRows

    dim = centres.shape[1]
    chunks = CHUNKS_PER_DOC
    vectors = centres[rng.integers(0, len(centres), chunks)] + rng.normal(0, NOISE / np.sqrt(dim), (chunks, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    sentences = np.repeat(vectors, SENTENCES, axis=0)
    text = ("lorem ipsum dolor sit amet " * (CHUNK_TEXT * chunks // 27 + 1))[: CHUNK_TEXT * chunks]
    half = CHUNK_TEXT // 2
    sparse = np.zeros((chunks, 2 * 256), np.float32)
    sparse[:, :TERMS] = rng.integers(0, 16384, (chunks, TERMS))
    sparse[:, 256 : 256 + TERMS] = 1 / np.sqrt(TERMS)
    doc = Document(f"u{number:07d}.txt", f"Upload {number}", text, f"{number:064d}", ())
    rows = DocRows(
        doc,
        [(c * CHUNK_TEXT, (c + 1) * CHUNK_TEXT, SENTENCES * c, SENTENCES * (c + 1)) for c in range(chunks)],
        [(c * CHUNK_TEXT + h, c * CHUNK_TEXT + h + half) for c in range(chunks) for h in (0, half)],
        vectors,
        sentences,
        sentences,
        sparse,
        ("en",) * chunks,
    )
    return rows, vectors


def _change(index_dir: Path, kind: str, live, *, put=None, delete: str | None = None):
    """One change through the real store code, as the indexer makes it: every other document kept."""
    from qa.stores.local_writer import FaissWriter, header_of

    header = {key: header_of(live)[key] for key in ("embedder", "chunking")}
    writer = FaissWriter.open(index_dir, header, kind, rebuild=False, live=live, merge_share=1.0)
    writer.keep_others({doc_id for doc_id in (delete, put and put.doc.id) if doc_id})  # as build_index(only=)
    if put is not None:
        writer.put(put)
    if delete is not None:
        writer.delete(delete)
    return writer.commit()


def _truth(work: Path, view, queries: np.ndarray, extra: dict[tuple[str, int], np.ndarray], k: int = 10):
    """Exact top-k keys (layer name, row) over the live rows: the base's (dead ones skipped) and ``extra``."""
    from qa import vector_index
    from qa.stores.arrayfile import ArrayFile

    base = view.base
    dead = set(base.dead.tolist())
    vectors = ArrayFile(work / "vectors.npy")  # pread: the bench's own scan leaves no mapped pages in the RSS
    rows = vector_index.exact_top_k(vectors, queries, k + len(dead))
    keys = list(extra)
    matrix = np.stack([extra[key] for key in keys]) if keys else np.empty((0, vectors.shape[1]), np.float32)
    truth = []
    for i, query in enumerate(queries):
        found = [int(r) for r in rows[i] if int(r) not in dead]
        scores = np.asarray(vectors[np.sort(found)], np.float32) @ query
        candidates = list(zip(scores.tolist(), [(base.name, r) for r in np.sort(found).tolist()]))
        candidates += list(zip((matrix @ query).tolist(), keys))
        candidates.sort(key=lambda pair: -pair[0])
        truth.append({key for _, key in candidates[:k]})
    return truth


def updates_child(work: Path, kind: str) -> None:
    """Uploads and deletions one at a time on the written generation, then a background merge."""
    import threading

    from qa.stores import local, merge
    from qa.stores.arrayfile import ArrayFile

    index_dir = work / "index"
    live = local.load(index_dir)
    rng = np.random.default_rng(7)
    vectors = ArrayFile(work / "vectors.npy")
    centres = np.asarray(vectors[np.sort(rng.choice(len(vectors), 2000, replace=False))], np.float32)
    del vectors
    queries = np.load(work / "queries.npy")
    update_s, delete_s, uploaded = [], [], {}
    for number in range(UPDATES):
        rows, doc_vectors = _document(rng, centres, number)
        started = time.perf_counter()
        live = _change(index_dir, kind, live, put=rows)
        top = live.search_rows(doc_vectors[0], 1)  # searchable: its own chunk is the closest row
        update_s.append(time.perf_counter() - started)
        assert live.hits(top)[0].chunk.doc_id == rows.doc.id
        uploaded[rows.doc.id] = doc_vectors
    victims = [doc.id for doc in live.base.data.documents[: DELETES * 3 : 3]]
    for doc_id in victims:
        started = time.perf_counter()
        live = _change(index_dir, kind, live, delete=doc_id)
        gone = live.document(doc_id) is None
        delete_s.append(time.perf_counter() - started)
        assert gone
    times = []
    for query in queries:
        started = time.perf_counter()
        found = live.search_rows(query, 10)
        times.append(time.perf_counter() - started)
    extra = {}
    for doc_id, doc_vectors in uploaded.items():
        layer = live.owner(doc_id)
        start, _ = layer.data.chunk_range(doc_id)
        extra.update({(layer.name, start + i): vector for i, vector in enumerate(doc_vectors)})
    truth = _truth(work, live, queries, extra)
    found = [{(live.layers[s.ref[0]].name, s.ref[1]) for s in live.search_rows(q, 10)} for q in queries]
    recall = float(np.mean([len(f & t) / 10 for f, t in zip(found, truth)]))
    segments = len(live.layers) - 1
    after_updates = rss_mb()
    split_updates = rss_split_mb()  # anonymous and file-backed (mapped index pages, reclaimable) parts
    # the merge in the background, as `qa serve` runs it, while questions keep coming
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(merge.merge(index_dir, kind, index_dir / ".lock")))
    started = time.perf_counter()
    thread.start()
    during = []
    while thread.is_alive():
        for query in queries[:50]:
            began = time.perf_counter()
            live.search_rows(query, 10)
            during.append(time.perf_counter() - began)
    merge_s = time.perf_counter() - started
    merged = done[0]
    assert merged is not None and len(merged.layers) == 1
    del live  # the server swaps to the merged view: the old layers are dropped
    after_merge = rss_mb()
    split_merge = rss_split_mb()
    result = {
        "update_ms": pct(update_s, 50) * 1000,
        "update_p99_ms": pct(update_s, 99) * 1000,
        "delete_ms": pct(delete_s, 50) * 1000,
        "merge_s": merge_s,
        "search_p50_ms": pct(times, 50) * 1000,
        "search_p50_during_merge_ms": pct(during, 50) * 1000 if during else None,
        "recall_at_10": recall,
        "rss_mb_after_updates": after_updates,
        "rss_mb_after_merge": after_merge,
        "rss_anon_file_mb_after_updates": [round(x) for x in split_updates],
        "rss_anon_file_mb_after_merge": [round(x) for x in split_merge],
        "rss_mb_peak": peak_rss_mb(),  # the process's high-water mark: updates, searches and the merge
        "segments": segments,
    }
    (work / f"{kind}.updates.json").write_text(json.dumps(result))


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
    parser.add_argument("--json", action="store_true", help="print one JSON object (with the update figures)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, work, kind = args.child
        {"build": build_child, "search": search_child, "updates": updates_child}[role](Path(work), kind)
        return
    from qa import vector_index
    from qa.config import DEFAULT_EMBEDDER
    from qa.embedding import make_embedder

    dim = args.dim or make_embedder(DEFAULT_EMBEDDER).dim  # builds no model weights: both load lazily or mmap
    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    started_on = machine()  # with the load average: the machine may be shared
    say(f"# store scaling: {started_on}")
    say(f"vectors: dim {dim}, {CENTRES} cluster centres, normalized; {QUERIES} queries near stored vectors")
    header = (
        f"{'chunks':>9} {'kind':>8} {'params':>22} {'build':>8} {'build peak':>10} {'serve RSS':>9} "
        f"{'p50':>8} {'p99':>8} {'recall@10':>9} {'exact p50':>9} {'speed-up':>8}"
    )
    if not args.json:
        print(header)
    figures: dict[str, dict] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="qa-bench-store-") as tmp:
            work = Path(tmp)
            generate(work / "vectors.npy", n, dim)
            vectors = np.load(work / "vectors.npy", mmap_mode="r")
            queries = vector_index.sample_queries(vectors, QUERIES, np.random.default_rng(1))
            np.save(work / "queries.npy", queries)
            np.save(work / "truth.npy", vector_index.exact_top_k(vectors, queries, 10))
            del vectors
            kinds = [vector_index.choose_kind(n)] + (["hnsw"] if n <= args.hnsw_max and not args.json else [])
            for kind in kinds:
                child(["--child", "build", str(work), kind])
                info = json.loads((work / f"{kind}.json").read_text())
                if args.json:  # the update figures, on the generation just written
                    load_before = os.getloadavg()
                    child(["--child", "updates", str(work), kind])
                    updates = json.loads((work / f"{kind}.updates.json").read_text())
                    figures[str(n)] = dict(updates, kind=kind, build_s=info["build_s"],
                                           load_average_start=[round(x, 2) for x in load_before],
                                           load_average_end=[round(x, 2) for x in os.getloadavg()])  # fmt: skip
                    say(f"{n}: {json.dumps(figures[str(n)])}", flush=True)
                    continue
                child(["--child", "search", str(work), kind])
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
    if args.json:
        print(json.dumps({"machine": started_on, "machine_at_end": machine(), "load_average_end":
                          [round(x, 2) for x in os.getloadavg()], "dim": dim, "updates": UPDATES,
                          "deletes": DELETES, "sizes": figures}))  # fmt: skip
        return
    print(
        "targets at 1M: p50 <= 2 ms, recall@10 >= 0.98, serve RSS <= 2 GB after start and after a swap "
        "(RSS includes touched mmap pages)"
    )
    print(f"# at the end: {machine()}")


if __name__ == "__main__":
    main()
