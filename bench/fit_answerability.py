"""Fit the no-answer decision (qa/data/answerability.json) on XQuAD, from the indexes `qa eval --workdir` keeps.

For every language, every English question is asked through the service's own ``Answerer.reply`` twice: as
is (a positive when its top passage is its own paragraph) and with its paragraph left out of the search (a
negative when the best other passage lacks the answer text), exactly as `qa eval` measures. The signals of
qa.answerability are collected, each signal's AUC is printed, and a logistic regression is checked on what it
has not seen: each paragraph language held out in turn, and within it each quarter of XQuAD's 48 articles,
fitted on the other languages' other articles. Both matter: every language holds the same English questions,
so a model that learns the questions themselves looks good when only the language is held out (the "pair"
below did: 0.920 against the signals' 0.900; with the articles held out too, 0.886). Then it is fitted on
everything; the threshold flags at most ``--flag-right`` of the right top answers. With ``--write`` the
weights, threshold, provenance and what the model is fitted for (the embedder, without its engine tag, and the
signal sources its features read) go to qa/data/answerability.json; an answerer with another embedder, or with
the latent terms off, decides by the calibrated single cut instead.

The pair, printed for comparison and never shipped: the question's e5 columns times the top answering
sentence's, and times that sentence's lead over the other candidates' sentences (2 x 384 columns).

    for L in de el zh en mixed; do qa eval --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.$L.json --workdir /tmp/answer-eval-$L; done
    python bench/fit_answerability.py --workdirs /tmp/answer-eval-{LANG} --cache /tmp/answer-fit --write

The question vectors are cached in --cache (per embedder); the signals are recomputed every run, so a
refit after the encoder, the vectors or the scoring change needs only the indexes rebuilt by `qa eval`.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)
import numpy as np

from qa import answerability, store
from qa.answer import Answerer, Reply
from qa.answerability import Candidate
from qa.config import Settings
from qa.embedding import Embedder, base_name, make_embedder, sparse_encoder
from qa.eval import auc, load_eval_set
from qa.parts import query_parts

LANGS = ("de", "el", "zh", "en", "mixed")
PAIR, PAIR_WIDTH = "pair", 384  # e5's columns lead every row of the default embedder
QUESTION = "question"  # the XQuAD id of the question a row comes from (the folds keep each article on one side)
PAIR_L2 = 4e-2
FOLDS = 4  # quarters of XQuAD's articles, held out in turn
PN = ("pos", "neg")
DEFAULT_FEATURES = ("margin_z", "lead_z", "gap4_z", "sentence_margin_z", "sentence_gain", "terms_rank", "kind")


class CachedQueries:
    """The embedder, with the questions' vectors (dense and latent terms) read from a cache when known."""

    def __init__(self, embedder: Embedder, texts: Sequence[str], cache: Path | None) -> None:
        self._embedder = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self._sparse = sparse_encoder(embedder)
        tag = hashlib.sha1((embedder.name + "\n" + "\n".join(texts)).encode()).hexdigest()[:16]
        path = cache / f"questions-{tag}.npz" if cache else None
        if path is not None and path.exists():
            saved = np.load(path)
            dense, sparse = saved["dense"], saved["sparse"] if "sparse" in saved else None
        else:
            # one question a call, as the service reads them: a batch pads the short ones, and in bf16 that
            # moves their vectors enough to move the signals
            print(f"encoding {len(texts)} questions one by one ...", file=sys.stderr)
            parts = [query_parts(embedder, [t]) for t in texts]
            dense = np.vstack([p.vectors for p in parts])
            sparse = np.vstack([p.sparse for p in parts]) if self._sparse is not None else None
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, dense=dense, **({"sparse": sparse} if sparse is not None else {}))
        self._dense = {t: dense[i] for i, t in enumerate(texts)}
        self._sparse_rows = {t: sparse[i] for i, t in enumerate(texts)} if sparse is not None else None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if all(t in self._dense for t in texts):
            return np.stack([self._dense[t] for t in texts])
        return self._embedder.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embedder.encode_passages(texts)

    def encode_sparse(self, texts: Sequence[str]) -> np.ndarray:
        rows = self._sparse_rows
        if rows is not None and all(t in rows for t in texts):
            return np.stack([rows[t] for t in texts])
        assert self._sparse is not None
        return self._sparse(texts)


def paragraph_languages(xquad: Path, contexts: Path) -> dict[str, str]:
    """Language of each paragraph (document id) of a contexts file: the language file holding the same text."""
    by_text = {}
    for lang in ("de", "el", "en", "zh"):
        for text in load_eval_set(xquad / "xquad.en.json", xquad / f"xquad.{lang}.json").paragraphs.values():
            by_text.setdefault(text, lang)
    paragraphs = load_eval_set(xquad / "xquad.en.json", contexts).paragraphs
    return {doc_id: by_text.get(text, "?") for doc_id, text in paragraphs.items()}


def collect(
    workdir: Path,
    xquad: Path,
    lang: str,
    embedder: CachedQueries,
    settings: Settings,
    split: bool,
    describe: Callable[[str, Reply], dict] | None = None,
) -> dict[str, dict]:
    """Signals of the right top answers (positives) and of the gold-left-out ones lacking the answer (negatives).

    Grouped by language; with ``split`` (the mixed file) by the language of each question's own paragraph, so
    a mixed corpus also yields a held-out check per language. Each row is ``describe(question, reply)``: by
    default the reply's signals and pair columns.
    """
    describe = describe or (lambda _, reply: with_pair(reply))
    contexts = xquad / f"xquad.{lang}.json"
    eval_set = load_eval_set(xquad / "xquad.en.json", contexts)
    languages = paragraph_languages(xquad, contexts) if split else {}
    data = store.load(workdir / "index")
    answerer = Answerer(
        embedder,  # type: ignore[arg-type]  (an Embedder by protocol)
        data,
        sentence_weight=settings.sentence_weight,
        follow_up_margin=settings.follow_up_margin,
        number_bonus=settings.number_bonus,
        sparse_weight=settings.sparse_weight,
    )
    groups: dict[str, dict] = {}
    for q in eval_set.questions:
        group = groups.setdefault(
            f"{lang}:{languages[q.doc_id]}" if split else lang, {"pos": [], "neg": [], "questions": 0, "recall@1": 0}
        )
        group["questions"] += 1
        full = answerer.reply(q.text, 30)
        if full.answer.citations and full.answer.citations[0].document == q.doc_id:
            group["recall@1"] += 1
            if full.signals:
                group["pos"].append({**describe(q.text, full), QUESTION: q.id})
        out = answerer.reply(q.text, 30, exclude_documents={q.doc_id})
        top = out.answer.citations[0].text if out.answer.citations else ""
        if not any(a in top for a in q.answers) and out.signals:
            group["neg"].append({**describe(q.text, out), QUESTION: q.id})
    return groups


def with_pair(reply: Reply) -> dict:
    """The reply's signals, and its pair columns under ``PAIR`` (rounded: they are cached as JSON)."""
    assert reply.ranked and reply.query is not None
    return {**reply.signals, PAIR: pair(reply.query, reply.ranked, PAIR_WIDTH).round(7).tolist()}


def pair(query: np.ndarray, ranked: list[Candidate], width: int) -> np.ndarray:
    """``2 * width`` columns: the question's first ``width`` columns times the top answering sentence's, then
    times that sentence's minus the mean of the other candidates' (``ranked`` best first), column by column."""
    q = np.asarray(query[:width], np.float64)
    top = sentence_vector(ranked[0])[:width]
    others = [sentence_vector(c)[:width] for c in ranked[1:]]
    return np.concatenate([q * top, q * (top - (np.mean(others, axis=0) if others else top))])


def sentence_vector(candidate: Candidate) -> np.ndarray:
    """The row of the candidate's answering sentence (the first of a denial and its correction)."""
    hit = candidate.hit
    starts = [span.start for span in hit.sentences]
    row = starts.index(candidate.span.start) if candidate.span.start in starts else 0
    return np.asarray(hit.sentence_vectors[row], np.float64)


def matrix(rows: list[dict], names: Sequence[str], pair: bool = False) -> np.ndarray:
    """The named signals of each row, then its pair columns where ``pair``."""
    x = np.array([[r[n] for n in names] for r in rows], np.float64).reshape(len(rows), len(names))
    return np.hstack([x, np.array([r[PAIR] for r in rows], np.float64).reshape(len(rows), -1)]) if pair else x


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2-regularised logistic regression on standardised x (Newton's method)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2 * len(x))
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def train(pos_rows: list[dict], neg_rows: list[dict], names: Sequence[str], pair: bool) -> answerability.Model:
    """The logistic regression on the rows (standardised), as the signals-alone model or with the pair's columns
    after the signals."""
    pos, neg = matrix(pos_rows, names, pair), matrix(neg_rows, names, pair)
    x = np.vstack([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    # the pair's 768 columns want a firmer hold than the few signals
    weights, bias = fit_logistic((x - mean) / scale, y, l2=PAIR_L2 if pair else 1e-2)
    return answerability.Model(tuple(names), mean, scale, weights, bias, 0.5, {})


def probabilities(model: answerability.Model, rows: list[dict]) -> np.ndarray:
    """The model's P(answers) of each row, the pair's columns included where it weighs them."""
    return model.probabilities(matrix(rows, model.features, len(model.weights) > len(model.features)))


def held_out(data: dict[str, dict], names: Sequence[str], pair: bool, article: dict[str, int]) -> dict[str, float]:
    """AUC per group, each scored by models that saw neither its paragraph language nor its article: the
    other languages' rows, less a quarter of the articles, fit; that quarter of the group is scored."""
    groups = list(data)
    scores: dict[str, tuple[list, list]] = {group: ([], []) for group in groups}
    for group in groups:
        language = group.split(":")[-1]
        others = [g for g in groups if g.split(":")[-1] != language]
        for fold in range(FOLDS):
            fit = [[r for g in others for r in data[g][k] if article[r[QUESTION]] % FOLDS != fold] for k in PN]
            model = train(*fit, names, pair)
            for i, k in enumerate(PN):
                rows = [r for r in data[group][k] if article[r[QUESTION]] % FOLDS == fold]
                scores[group][i].append(probabilities(model, rows))
    return {g: auc(np.concatenate(scores[g][0]), np.concatenate(scores[g][1])) for g in groups}


def articles(xquad: Path) -> dict[str, int]:
    """The article (0-47) each question id belongs to."""
    data = json.loads((xquad / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    return {q["id"]: i for i, a in enumerate(data) for p in a["paragraphs"] for q in p["qas"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", type=Path, default=Path("../shared/data/xquad"))
    parser.add_argument("--workdirs", default="/tmp/answer-eval-{LANG}", help="qa eval --workdir of each language")
    parser.add_argument("--langs", default=",".join(LANGS))
    parser.add_argument("--cache", type=Path, default=None, help="folder for the question vectors")
    parser.add_argument("--features", default=",".join(DEFAULT_FEATURES))
    parser.add_argument("--flag-right", type=float, default=0.015, help="share of right top answers flagged")
    parser.add_argument("--write", action="store_true", help="write qa/data/answerability.json")
    parser.add_argument(
        "--reuse-signals", action="store_true", help="read the signals of the last run from --cache (same indexes)"
    )
    args = parser.parse_args()

    settings = Settings()
    langs = args.langs.split(",")
    names = args.features.split(",")
    questions = args.xquad / "xquad.en.json"
    texts = [q.text for q in load_eval_set(questions, questions).questions]
    embedder = CachedQueries(make_embedder(settings.embedder), texts, args.cache)
    data: dict[str, dict] = {}
    saved = args.cache / f"signals-{'-'.join(langs)}.json" if args.cache else None
    if args.reuse_signals and saved is not None and saved.exists():
        data = json.loads(saved.read_text(encoding="utf-8"))
        if any(QUESTION not in r for group in data.values() for r in group["pos"][:1]):
            raise SystemExit(f"{saved} predates the question ids the folds need: run once without --reuse-signals")
    else:
        for lang in langs:
            workdir = Path(args.workdirs.replace("{LANG}", lang))
            data.update(collect(workdir, args.xquad, lang, embedder, settings, split=lang == "mixed"))
        if saved is not None:
            saved.write_text(json.dumps(data), encoding="utf-8")
    langs = list(data)  # groups: one per language, the mixed file's per paragraph language
    for lang in langs:
        print(f"{lang}: {len(data[lang]['pos'])} right top answers, {len(data[lang]['neg'])} gold-left-out")

    print("\nsignal AUC alone (right top answers vs gold-left-out), per language:")
    print(f"{'signal':20s} " + " ".join(f"{lang:>6s}" for lang in langs))
    for name in answerability.FEATURES:
        row = [auc(matrix(data[lang]["pos"], [name])[:, 0], matrix(data[lang]["neg"], [name])[:, 0]) for lang in langs]
        print(f"{name:20s} " + " ".join(f"{value:6.3f}" for value in row))

    article = articles(args.xquad)
    for pair in (False, True):
        what = f"{names}" + (f" + the pair (2 x {PAIR_WIDTH} columns; not shipped)" if pair else "")
        print(f"\nlogistic regression on {what}, each language and each quarter of the articles held out:")
        found = held_out(data, names, pair, article)
        for group, value in found.items():
            print(f"  held out {group:9s}: AUC {value:.3f}")
        print(f"  mean {np.mean(list(found.values())):.4f}")

    everything = (
        [r for lang in langs for r in data[lang]["pos"]],
        [r for lang in langs for r in data[lang]["neg"]],
    )
    model = train(*everything, names, pair=False)
    print("\nthe signals, fitted on everything (shipped):")
    threshold, per_lang = report(model, data, langs, args.flag_right)
    print("weights:", dict(zip(names, model.weights.round(3))), "bias", round(model.bias, 3))
    if args.write:
        provenance = {
            "data": [f"xquad.en.json questions against xquad.{lang}.json paragraphs" for lang in args.langs.split(",")],
            "command": "python " + " ".join(sys.argv),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "embedder": settings.embedder,
            "embedder_name": embedder.name,
            "threshold_rule": f"flags {args.flag_right:.1%} of the right top answers of all languages together",
            "per_language": per_lang,
        }
        # what the model applies to: the answerer falls back to the calibrated cut for any other embedder, or
        # where a signal source it weighs (the latent terms) is off; "checked_on" (other embedders measured to
        # hold, docs/quality.md) starts empty, since a new fit is checked on nothing else
        fitted_for = {"embedder": base_name(embedder.name), "signals": tuple(answerability.signals_needed(names))}
        shipped = replace(model, threshold=threshold, provenance=provenance, **fitted_for).to_json()
        answerability.MODEL_PATH.write_text(json.dumps(shipped, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {answerability.MODEL_PATH}")


def report(
    model: answerability.Model, data: dict[str, dict], langs: list[str], flag_right: float
) -> tuple[float, dict[str, dict]]:
    """The threshold flagging ``flag_right`` of the pooled right top answers, and each language's figures."""
    pooled_pos = np.concatenate([probabilities(model, data[lang]["pos"]) for lang in langs])
    threshold = float(np.quantile(pooled_pos, flag_right))
    print(f"threshold {threshold:.4f} flags {flag_right:.1%} of the right top answers")
    print(f"{'lang':9s} {'AUC':>6s} {'recall@1':>9s} {'answered_right':>15s} {'answered_unanswerable':>22s}")
    per_lang = {}
    files = sorted({lang.split(":")[0] for lang in langs if ":" in lang})  # the mixed file as a whole too
    for name, parts in [(lang, [data[lang]]) for lang in langs] + [
        (file, [data[lang] for lang in langs if lang.startswith(file + ":")]) for file in files
    ]:
        pos = np.concatenate([probabilities(model, d["pos"]) for d in parts])
        neg = np.concatenate([probabilities(model, d["neg"]) for d in parts])
        n = sum(d["questions"] for d in parts)
        row = {
            "no_answer_auc": round(auc(pos, neg), 4),
            "recall@1": round(sum(d["recall@1"] for d in parts) / n, 4),
            "answered_right": round(float(np.sum(pos >= threshold)) / n, 4),
            "answered_unanswerable": round(float(np.mean(neg >= threshold)), 4),
        }
        per_lang[name] = row
        print(
            f"{name:9s} {row['no_answer_auc']:6.3f} {row['recall@1']:9.4f} {row['answered_right']:15.4f} "
            f"{row['answered_unanswerable']:22.4f}"
        )
    return threshold, per_lang


if __name__ == "__main__":
    main()
