"""Score retrieval and highlight variants at once from the vectors of a `qa eval --workdir` index.

Embedding XQuAD takes minutes to tens of minutes on two cores, so variants are compared in numpy on the
index that `qa eval` built (same chunks, sentences and vectors), with the formulas of qa/answer.py:

    qa eval --questions ../shared/data/xquad/xquad.en.json --contexts ../shared/data/xquad/xquad.de.json \\
        --workdir /tmp/qa-eval-de
    python bench/quality_variants.py --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.de.json --workdir /tmp/qa-eval-de

Prints recall@1/5 and MRR@10 per variant, answer_in_highlight@1 per sentence rule, and the score
quantiles used to calibrate QA_MIN_SCORE (correct top answers vs. the best paragraph of another article).
Scores are the pipeline's: (passage + best sentence) blended with the chunk's latent terms, as /ask ranks.
"""

from __future__ import annotations

import argparse
import json
import re
from functools import partial
from pathlib import Path

import numpy as np
from _common import per_owner_max

from qa import store
from qa.config import Settings
from qa.embedding import make_embedder, sparse_encoder, sparse_scores
from qa.eval import auc, load_eval_set
from qa.highlight import is_negated

WEIGHT = 0.5  # the default QA_SENTENCE_WEIGHT: the base of the variants that add to it
LEXICAL = 0.2  # the default QA_SPARSE_WEIGHT
NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")


def report(name: str, doc_scores: np.ndarray, gold: np.ndarray) -> None:
    order = np.argsort(-doc_scores, axis=1)
    rank = np.argmax(order == gold[:, None], axis=1) + 1
    mrr = np.mean(np.where(rank <= 10, 1 / rank, 0))
    print(f"{name:60s} recall@1 {np.mean(rank == 1):.3f}  recall@5 {np.mean(rank <= 5):.3f}  mrr@10 {mrr:.3f}")


def no_answer_report(name: str, doc_scores: np.ndarray, gold: np.ndarray, holds_answer: np.ndarray) -> None:
    """qa eval's no-answer keys for a variant, each question also ranked with its own paragraph left out.

    ``holds_answer[i, d]``: paragraph d contains an answer text of question i. Two decision scores: the raw top
    score (cut at the old QA_MIN_SCORE 0.55) and the top's lead over the mean of the 30 best paragraphs in units
    of their spread (scale-free, the strongest single signal of qa.answerability; cut at 2.0).
    """
    rows = np.arange(len(gold))
    left_out = doc_scores.copy()
    left_out[rows, gold] = -9.0
    right = doc_scores.argmax(axis=1) == gold
    other = left_out.argmax(axis=1)
    unanswerable = ~holds_answer[rows, other]

    def decision(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top30 = -np.sort(-scores, axis=1)[:, :30]
        return top30[:, 0], (top30[:, 0] - top30.mean(axis=1)) / (top30.std(axis=1) + 1e-6)

    (raw, lead), (raw_out, lead_out) = decision(doc_scores), decision(left_out)
    for label, score, score_out, cut in (("top score", raw, raw_out, 0.55), ("lead_z", lead, lead_out, 2.0)):
        print(
            f"{name:60s} no answer by {label:9s} answered_right {np.mean(right & (score >= cut)):.3f}  "
            f"answered_unanswerable {np.mean(score_out[unanswerable] >= cut):.3f}  "
            f"no_answer_auc {auc(score[right], score_out[unanswerable]):.3f}"
        )


def numbers(text: str) -> set[str]:
    return {re.sub(r"[.,\s]", "", m) for m in NUMBER.findall(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--contexts", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="the --workdir of an earlier qa eval run")
    parser.add_argument("--embedder", default=Settings().embedder)
    parser.add_argument("--history", default="Which NFL team represented the AFC at Super Bowl 50?")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (a smoke run)")
    args = parser.parse_args()

    eval_set = load_eval_set(args.questions, args.contexts, args.limit)
    data = store.load(args.workdir / "index")
    decoded = data.dense_rows()  # FORMAT 3 stores rows compactly: decoded once here (as embedded, no correction)
    chunks, sentences = np.asarray(data.arrays["chunks"]), np.asarray(data.arrays["sentences"])

    def span_text(doc: int, start: int, end: int) -> str:
        return data.documents[int(doc)].text[int(start) : int(end)]

    doc_row = {doc.id: row for row, doc in enumerate(data.documents)}
    n = len(data.documents)
    gold = np.array([doc_row[q.doc_id] for q in eval_set.questions])
    chunk_doc = chunks[:, 0]
    sentence_chunk = np.zeros(len(sentences), int)
    for row, chunk in enumerate(chunks):
        sentence_chunk[chunk[3] : chunk[4]] = row
    embedder = make_embedder(args.embedder)
    texts = [q.text for q in eval_set.questions]
    queries = embedder.encode_queries(texts)

    encode_sparse = sparse_encoder(embedder)
    sparse_rows = decoded["sparse"]

    def lexical(question_texts: list[str]) -> np.ndarray:
        if encode_sparse is None or not sparse_rows.shape[1]:
            return np.zeros((len(question_texts), len(chunks)), np.float32)
        return np.stack([sparse_scores(row, sparse_rows) for row in encode_sparse(question_texts)])

    def fused(q: np.ndarray, weight: float, terms: np.ndarray, lexical_weight: float = LEXICAL) -> np.ndarray:
        best_sentence = per_owner_max(q @ decoded["sentence_vectors"].T, sentence_chunk, len(chunks))
        dense = (1 - weight) * (q @ decoded["vectors"].T) + weight * best_sentence
        return (1 - lexical_weight) * dense + lexical_weight * terms

    terms = lexical(texts)
    for a in (0.0, 0.1, 0.3):
        ranked = per_owner_max(fused(queries, WEIGHT, terms, a), chunk_doc, n)
        report(f"weight {WEIGHT}, latent terms {a}", ranked, gold)
    scores = {w: fused(queries, w, terms) for w in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)}
    for w, s in scores.items():
        report(f"passage + best sentence, weight {w}, latent terms {LEXICAL}", per_owner_max(s, chunk_doc, n), gold)
    report(
        "best sentence only", per_owner_max(queries @ decoded["sentence_vectors"].T, decoded["sentence_doc"], n), gold
    )
    doc_vectors = np.zeros((n, decoded["vectors"].shape[1]), np.float32)
    np.add.at(doc_vectors, chunk_doc, decoded["vectors"])
    doc_vectors /= np.linalg.norm(doc_vectors, axis=1, keepdims=True)
    report("paragraph vector (mean of passage vectors)", queries @ doc_vectors.T, gold)
    report("weight 0.3, then 0.7 x + 0.3 x paragraph vector", 0.7 * per_owner_max(scores[0.3], chunk_doc, n)
           + 0.3 * (queries @ doc_vectors.T), gold)  # fmt: skip

    chunk_numbers = [numbers(span_text(*chunks[r, :3])) for r in range(len(chunks))]
    bonus = np.zeros_like(scores[WEIGHT])
    for i, text in enumerate(texts):
        wanted = numbers(text)
        if wanted:
            for c in np.argsort(-scores[WEIGHT][i])[:30]:
                bonus[i, c] = len(wanted & chunk_numbers[c]) / len(wanted)
    for b in (0.02, 0.05):
        with_numbers = per_owner_max(scores[WEIGHT] + b * bonus, chunk_doc, n)
        report(f"weight {WEIGHT} + shared numbers, bonus {b}", with_numbers, gold)

    history_texts = [f"{args.history} {t}" for t in texts]
    with_history = fused(embedder.encode_queries(history_texts), WEIGHT, lexical(history_texts))
    for margin in (0.0, 0.02, 0.03, 0.05):
        combined = np.maximum(scores[WEIGHT], with_history - margin)
        report(f"weight {WEIGHT}, unrelated history, margin {margin}", per_owner_max(combined, chunk_doc, n), gold)

    # highlight: which sentence of the top passage holds the answer
    sentence_text = [span_text(decoded["sentence_doc"][i], *sentences[i]) for i in range(len(sentences))]
    negated = [is_negated(t) for t in sentence_text]
    alone, context = queries @ decoded["sentence_vectors"].T, queries @ decoded["context_vectors"].T
    top = np.argmax(scores[WEIGHT], axis=1)

    def denial_then_next(
        a: np.ndarray, k: np.ndarray, rows: range, question: str, extend: bool, margin: float | None = 0.0
    ) -> str:
        """qa.highlight.best_sentence: after a denial, the next sentence alone, or with ``extend`` both.

        ``margin``: the next sentence wins when its in-context score is within it of the denial's;
        None: the next sentence always wins (no comparison).
        """
        best = int(np.argmax(a))
        after = best + 1
        if is_negated(question) or after >= len(rows) or not negated[rows[best]] or negated[rows[after]]:
            return sentence_text[rows[best]]
        if margin is None or k[after] > a[best] - margin:
            return sentence_text[rows[after]]
        return f"{sentence_text[rows[best]]} {sentence_text[rows[after]]}" if extend else sentence_text[rows[best]]

    def rule_previous(a: np.ndarray, k: np.ndarray, rows: range, question: str) -> str:
        """The rule before: any sentence after a denial takes its in-context score when that beats the denial."""
        out = a.copy()
        for i in range(1, len(rows)):
            if k[i] > a[i - 1] and negated[rows[i - 1]] and not negated[rows[i]]:
                out[i] = max(a[i], k[i])
        return sentence_text[rows[int(np.argmax(out))]]

    rules = {
        "denial: next alone if it reads better, else both (default)": partial(denial_then_next, extend=True),
        "denial: next alone if it reads better, else the denial": partial(denial_then_next, extend=False),
        "denial: next alone within 0.01 of it, else the denial": partial(denial_then_next, extend=False, margin=0.01),
        "denial: always the next sentence": partial(denial_then_next, extend=False, margin=None),
        "any sentence after a denial, in context (the rule before)": rule_previous,
        "the best sentence alone, denials ignored": lambda a, k, rows, question: sentence_text[rows[int(np.argmax(a))]],
    }
    for name, rule in rules.items():
        found = 0
        for i, question in enumerate(eval_set.questions):
            if chunk_doc[top[i]] != gold[i]:
                continue
            rows = range(int(chunks[top[i], 3]), int(chunks[top[i], 4]))
            if len(rows):
                picked = rule(alone[i, rows], context[i, rows], rows, question.text)
                found += any(answer in picked for answer in question.answers)
        print(f"highlight: {name:60s} answer_in_highlight@1 {found / len(texts):.3f}")
    fired = 0  # questions whose top passage's best sentence is a denial followed by a sentence that is not
    for i, question in enumerate(eval_set.questions):
        rows = range(int(chunks[top[i], 3]), int(chunks[top[i], 4]))
        if len(rows) and not is_negated(question.text):
            best = rows[int(np.argmax(alone[i, rows]))]
            fired += best + 1 < rows.stop and negated[best] and not negated[best + 1]
    print(f"highlight: the denial rule applies to {fired} of {len(texts)} questions")

    doc_scores = per_owner_max(scores[WEIGHT], chunk_doc, n)
    texts_by_row = [eval_set.paragraphs.get(doc.id, "") for doc in data.documents]
    holds_answer = np.array([[any(a in t for a in q.answers) for t in texts_by_row] for q in eval_set.questions])
    for w in (0.0, 0.3, WEIGHT, 0.6):
        no_answer_report(f"passage + best sentence, weight {w}, latent terms {LEXICAL}",
                         per_owner_max(scores[w], chunk_doc, n), gold, holds_answer)  # fmt: skip
    no_answer_report(f"weight {WEIGHT}, latent terms 0.0", per_owner_max(fused(queries, WEIGHT, terms, 0.0),
                     chunk_doc, n), gold, holds_answer)  # fmt: skip
    best = doc_scores.max(axis=1)
    correct = doc_scores.argmax(axis=1) == gold
    article = {doc_id: i for i, doc_id in enumerate(eval_set.paragraphs)}  # paragraphs in file order
    articles = _articles(args.contexts)
    paragraph_article = np.array([articles[article[doc.id]] for doc in data.documents])
    other = np.where(paragraph_article[None, :] == paragraph_article[gold][:, None], -9, doc_scores).max(axis=1)
    print("correct top-1 score quantiles 1/2/5%:", np.quantile(best[correct], [0.01, 0.02, 0.05]).round(3))
    print("best paragraph of another article 50/95%:", np.quantile(other, [0.5, 0.95]).round(3))
    for t in (0.50, 0.52, 0.54, 0.55, 0.56, 0.58, 0.60):
        print(f"min_score {t}: false no-answer {np.mean(best[correct] < t):.3f} of correct top answers, "
              f"{np.mean(best < t):.3f} of all questions")  # fmt: skip


def _articles(path: Path) -> list[int]:
    """Article number of each paragraph, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [i for i, article in enumerate(data) for _ in article["paragraphs"]]


if __name__ == "__main__":
    main()
