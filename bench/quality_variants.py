"""Score retrieval and highlight variants at once from the vectors of a `qa eval --workdir` index.

Embedding XQuAD takes minutes to tens of minutes on two cores, so variants are compared in numpy on the
index that `qa eval` built (same chunks, sentences and vectors), with the formulas of qa/answer.py:

    qa eval --questions ../shared/data/xquad/xquad.en.json --contexts ../shared/data/xquad/xquad.de.json \\
        --workdir /tmp/qa-eval-de
    python bench/quality_variants.py --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.de.json --workdir /tmp/qa-eval-de

Prints recall@1/5 and MRR@10 per variant, answer_in_highlight@1 per sentence rule, and the score
quantiles used to calibrate QA_MIN_SCORE (correct top answers vs. the best paragraph of another article).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from qa import store
from qa.embedding import make_embedder
from qa.eval import load_eval_set
from qa.highlight import is_negated

WEIGHT = 0.5  # the default QA_SENTENCE_WEIGHT: the base of the variants that add to it
NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")


def per_owner_max(scores: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full((scores.shape[0], n), -9.0, np.float32)
    for j in range(scores.shape[1]):
        np.maximum(out[:, owner[j]], scores[:, j], out=out[:, owner[j]])
    return out


def report(name: str, doc_scores: np.ndarray, gold: np.ndarray) -> None:
    order = np.argsort(-doc_scores, axis=1)
    rank = np.argmax(order == gold[:, None], axis=1) + 1
    mrr = np.mean(np.where(rank <= 10, 1 / rank, 0))
    print(f"{name:60s} recall@1 {np.mean(rank == 1):.3f}  recall@5 {np.mean(rank <= 5):.3f}  mrr@10 {mrr:.3f}")


def numbers(text: str) -> set[str]:
    return {re.sub(r"[.,\s]", "", m) for m in NUMBER.findall(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--contexts", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="the --workdir of an earlier qa eval run")
    parser.add_argument("--embedder", default="e5")
    parser.add_argument("--history", default="Which NFL team represented the AFC at Super Bowl 50?")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (a smoke run)")
    args = parser.parse_args()

    eval_set = load_eval_set(args.questions, args.contexts, args.limit)
    data = store.load(args.workdir / "index")
    doc_row = {doc.id: row for row, doc in enumerate(data.documents)}
    n = len(data.documents)
    gold = np.array([doc_row[q.doc_id] for q in eval_set.questions])
    chunk_doc = data.chunks[:, 0]
    sentence_chunk = np.zeros(len(data.sentences), int)
    for row, chunk in enumerate(data.chunks):
        sentence_chunk[chunk[3] : chunk[4]] = row
    embedder = make_embedder(args.embedder)
    texts = [q.text for q in eval_set.questions]
    queries = embedder.encode_queries(texts)

    def fused(q: np.ndarray, weight: float) -> np.ndarray:
        best_sentence = per_owner_max(q @ data.sentence_vectors.T, sentence_chunk, len(data.chunks))
        return (1 - weight) * (q @ data.vectors.T) + weight * best_sentence

    scores = {w: fused(queries, w) for w in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)}
    for w, s in scores.items():
        report(f"passage + best sentence, weight {w}", per_owner_max(s, chunk_doc, n), gold)
    report("best sentence only", per_owner_max(queries @ data.sentence_vectors.T, data.sentences[:, 0], n), gold)
    doc_vectors = np.zeros((n, data.vectors.shape[1]), np.float32)
    np.add.at(doc_vectors, chunk_doc, data.vectors)
    doc_vectors /= np.linalg.norm(doc_vectors, axis=1, keepdims=True)
    report("paragraph vector (mean of passage vectors)", queries @ doc_vectors.T, gold)
    report("weight 0.3, then 0.7 x + 0.3 x paragraph vector", 0.7 * per_owner_max(scores[0.3], chunk_doc, n)
           + 0.3 * (queries @ doc_vectors.T), gold)  # fmt: skip

    chunk_numbers = [numbers(data.chunk(r).text) for r in range(len(data.chunks))]
    bonus = np.zeros_like(scores[WEIGHT])
    for i, text in enumerate(texts):
        wanted = numbers(text)
        if wanted:
            for c in np.argsort(-scores[WEIGHT][i])[:30]:
                bonus[i, c] = len(wanted & chunk_numbers[c]) / len(wanted)
    for b in (0.02, 0.05):
        with_numbers = per_owner_max(scores[WEIGHT] + b * bonus, chunk_doc, n)
        report(f"weight {WEIGHT} + shared numbers, bonus {b}", with_numbers, gold)

    with_history = fused(embedder.encode_queries([f"{args.history} {t}" for t in texts]), WEIGHT)
    for margin in (0.0, 0.02, 0.03, 0.05):
        combined = np.maximum(scores[WEIGHT], with_history - margin)
        report(f"weight {WEIGHT}, unrelated history, margin {margin}", per_owner_max(combined, chunk_doc, n), gold)

    # highlight: which sentence of the top passage holds the answer
    sentence_text = [data.sentence(i).text for i in range(len(data.sentences))]
    negated = [is_negated(t) for t in sentence_text]
    alone, context = queries @ data.sentence_vectors.T, queries @ data.context_vectors.T
    top = np.argmax(scores[WEIGHT], axis=1)

    def rule_default(a: np.ndarray, k: np.ndarray, rows: range) -> np.ndarray:
        out = a.copy()
        for i in range(1, len(rows)):
            if k[i] > a[i - 1] and negated[rows[i - 1]] and not negated[rows[i]]:
                out[i] = max(a[i], k[i])
        return out

    rules = {
        "alone, in context after a denial (default)": rule_default,
        "alone": lambda a, k, rows: a,
        "alone + 0.5 x in context": lambda a, k, rows: a + 0.5 * k,
        "best of alone and in context": lambda a, k, rows: np.maximum(a, k),
        "default + 0.5 x in context": lambda a, k, rows: rule_default(a, k, rows) + 0.5 * k,
    }
    for name, rule in rules.items():
        found = 0
        for i, question in enumerate(eval_set.questions):
            if chunk_doc[top[i]] != gold[i]:
                continue
            rows = range(int(data.chunks[top[i], 3]), int(data.chunks[top[i], 4]))
            pick = rows[int(np.argmax(rule(alone[i, rows], context[i, rows], rows)))]
            found += any(answer in sentence_text[pick] for answer in question.answers)
        print(f"highlight: {name:50s} answer_in_highlight@1 {found / len(texts):.3f}")

    doc_scores = per_owner_max(scores[WEIGHT], chunk_doc, n)
    best = doc_scores.max(axis=1)
    correct = doc_scores.argmax(axis=1) == gold
    article = {doc_id: i for i, doc_id in enumerate(eval_set.paragraphs)}  # paragraphs in file order
    articles = _articles(args.contexts)
    paragraph_article = np.array([articles[article[doc.id]] for doc in data.documents])
    other = np.where(paragraph_article[None, :] == paragraph_article[gold][:, None], -9, doc_scores).max(axis=1)
    print("correct top-1 score quantiles 1/2/5%:", np.quantile(best[correct], [0.01, 0.02, 0.05]).round(3))
    print("best paragraph of another article 50/95%:", np.quantile(other, [0.5, 0.95]).round(3))
    for t in (0.72, 0.73, 0.74, 0.75, 0.76, 0.78):
        print(f"min_score {t}: false no-answer {np.mean(best[correct] < t):.3f} of correct top answers, "
              f"{np.mean(best < t):.3f} of all questions")  # fmt: skip


def _articles(path: Path) -> list[int]:
    """Article number of each paragraph, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [i for i, article in enumerate(data) for _ in article["paragraphs"]]


if __name__ == "__main__":
    main()
