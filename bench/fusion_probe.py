"""Does fusing multilingual USE with e5 help? Scores e5+USE weights in numpy on XQuAD, per language pair.

Embeds each paragraph's chunks and sentences (split exactly as the indexer does) and the English questions once
per model, caching them under --cache, then ranks paragraphs with the pipeline's passage formula
(0.5 passage + 0.5 best sentence, paragraph = best passage) for fused weights w*e5 + (1-w)*USE:

    python bench/fusion_probe.py --langs zh,el --cache /tmp/qa-fusion

About 2-3 minutes of embedding per language and model on two cores, then seconds of scoring.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qa.chunking import ChunkingParams, chunk_document, make_splitter
from qa.embedding import make_embedder
from qa.models import Document
from qa.sentences import split_sentences

XQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xquad"
WEIGHTS = (1.0, 0.9, 0.8, 0.7, 0.5)


def paragraphs(lang: str) -> list[str]:
    data = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]
    return [p["context"] for article in data for p in article["paragraphs"]]


def gold(lang: str) -> np.ndarray:
    """For every English question, the row of its paragraph in ``lang`` (ids match across languages)."""
    row_of, row = {}, 0
    for article in json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]:
        for p in article["paragraphs"]:
            row_of.update({q["id"]: row for q in p["qas"]})
            row += 1
    english = json.loads((XQUAD / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    return np.array([row_of[q["id"]] for a in english for p in a["paragraphs"] for q in p["qas"]])


def questions() -> list[str]:
    english = json.loads((XQUAD / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    return [q["question"] for a in english for p in a["paragraphs"] for q in p["qas"]]


def embed(lang: str, model: str, cache: Path) -> dict[str, np.ndarray]:
    path = cache / f"{lang}-{model}.npz"
    if path.exists():
        return dict(np.load(path))
    embedder = make_embedder(model)
    params = ChunkingParams(500, 60)
    splitter = make_splitter(params)
    chunks, chunk_para, sentences, sentence_chunk = [], [], [], []
    for row, text in enumerate(paragraphs(lang)):
        for chunk in chunk_document(Document("p", "p", text, "-"), params, splitter):
            for span in split_sentences(text, chunk.start, chunk.end):
                sentences.append(span.text)
                sentence_chunk.append(len(chunks))
            chunks.append(chunk.text)
            chunk_para.append(row)
    arrays = {
        "chunks": embedder.encode_passages(chunks),
        "sentences": embedder.encode_passages(sentences),
        "chunk_para": np.array(chunk_para),
        "sentence_chunk": np.array(sentence_chunk),
    }
    np.savez(path, **arrays)
    return arrays


def query_vectors(model: str, cache: Path) -> np.ndarray:
    path = cache / f"questions-en-{model}.npy"
    if not path.exists():
        np.save(path, make_embedder(model).encode_queries(questions()))
    return np.load(path)


def passage_scores(arrays: dict[str, np.ndarray], queries: np.ndarray) -> np.ndarray:
    chunk = queries @ arrays["chunks"].T
    best = np.full_like(chunk, -9.0)
    sentence = queries @ arrays["sentences"].T
    for j, owner in enumerate(arrays["sentence_chunk"]):
        np.maximum(best[:, owner], sentence[:, j], out=best[:, owner])
    return 0.5 * chunk + 0.5 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="zh,el")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-fusion"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for lang in args.langs.split(","):
        e5, use = embed(lang, "e5", args.cache), embed(lang, "use", args.cache)
        se, su = (
            passage_scores(e5, query_vectors("e5", args.cache)),
            passage_scores(use, query_vectors("use", args.cache)),
        )
        expected, owners = gold(lang), e5["chunk_para"]
        for weight in WEIGHTS:
            fused = weight * se + (1 - weight) * su
            doc = np.full((fused.shape[0], int(owners.max()) + 1), -9.0, np.float32)
            for j, owner in enumerate(owners):
                np.maximum(doc[:, owner], fused[:, j], out=doc[:, owner])
            rank = np.argmax(np.argsort(-doc, axis=1) == expected[:, None], axis=1) + 1
            print(
                f"en->{lang}  e5 {weight:.1f} + use {1 - weight:.1f}:  recall@1 {np.mean(rank == 1):.3f}  "
                f"recall@5 {np.mean(rank <= 5):.3f}  mrr@10 {np.mean(np.where(rank <= 10, 1 / rank, 0)):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
