"""Fit the learned sentence choice (qa/data/sentence_choice.json) on XQuAD, from the indexes `qa eval --workdir` keeps.

Every English question is asked through the service's own ``Answerer.reply`` (with the hand rules choosing,
as before this model) over each development corpus. Each of the question's own paragraph's passages among the
top five gives one row per sentence: the signals of qa.sentence_signals, and whether the sentence holds an
answer text (as `qa eval`'s answer_in_highlight@1 asks of the highlight). A logistic regression scores each
sentence; a passage's answer is its highest-scoring sentence. Reported on the questions whose top passage is
their own paragraph's (where the highlight can be right at all): how often the top passage's pick holds the
answer, for the hand rules, and for the model held out the way bench/fit_answerability.py holds out: each
paragraph language in turn, and within it each quarter of XQuAD's 48 articles, fitted on the other languages'
other articles. Then each signal's held-out gain (the mean with all signals minus the mean without it),
scikit-learn's gradient-boosted trees on the same rows and folds (fit time only), and two-sentence answers
(the pick and the next sentence where that opens with a pronoun or continues a list).

    for L in de el zh en mixed; do qa eval --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.$L.json --workdir /tmp/choice-eval-$L; done
    python bench/fit_sentence_choice.py --workdirs /tmp/choice-eval-{LANG} --cache /tmp/choice-fit --write

scipy (the fit) and scikit-learn (--trees) come with the st extra (sentence-transformers needs both). Rows
(cosines and texts, not signals) are cached per corpus in --cache, so a change of the signals refits in
seconds; delete it after the index or the encoder changes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)
import numpy as np
from fit_answerability import articles, fit_logistic, paragraph_languages

from qa.config import Settings
from qa.embedding import base_name
from qa.eval import indexed, load_eval_set
from qa.highlight import RUN_CHARS, RUN_SHARE, line_run
from qa.sentence_choice import MODEL_PATH, Model
from qa.sentence_signals import NAMES, Cues, rows

LANGS = ("de", "el", "zh", "en", "mixed")
FOLDS = 4
PASSAGES = 5  # the top passages searched for the question's own paragraph's
L2 = 1e-3
CACHE = Path("/tmp/choice-fit")  # --cache
PAIR = 0  # --pair: columns of the question times the sentence (e5's lead the row), learned one by one
# a sentence that continues the one before: a pronoun or demonstrative opener, or a list going on
CONTINUES = re.compile(
    r"^\W*(?:it|its|he|she|they|this|these|those|his|her|their|there|such|also|and|but|"
    r"er|sie|es|dies|diese|dieser|dieses|sein|seine|ihr|ihre|auch|und|"
    r"это|этот|эта|эти|он|она|оно|они|его|её|ее|их|также|и|"
    r"αυτό|αυτή|αυτός|αυτοί|αυτές|αυτά|τον|την|το|επίσης|και|"
    r"[-•*–]|\d+[.)])(?!\w)|^\W*(?:他|她|它|他们|她们|它们|这|该|其|此|此外|并且|而且)",
    re.IGNORECASE,
)


def collect(lang: str, workdir: Path, xquad: Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """One record per (question, own-paragraph passage among the top ``PASSAGES``), hand rules choosing; and the
    question vector of each record and its sentences' vectors, in order (for the pair columns)."""
    contexts = xquad / f"xquad.{lang}.json"
    eval_set = load_eval_set(xquad / "xquad.en.json", contexts)
    languages = paragraph_languages(xquad, contexts) if lang == "mixed" else {}
    out, queries, sentences, asked = [], [], [], []
    with indexed(Settings(), eval_set, workdir=workdir) as (answerer, _seconds):
        answerer.chooser = None  # the hand rules, for the "before" figure
        fine = int(getattr(answerer.embedder, "fine_dim", answerer.embedder.dim))
        embedder = base_name(answerer.embedder.name)
        for done, q in enumerate(eval_set.questions, 1):
            reply = answerer.reply(q.text, 30)
            ranked, query = reply.ranked, reply.query
            cited = list(dict.fromkeys(c.document for c in reply.answer.citations))
            top = reply.answer.citations[0].highlight.text if reply.answer.citations else ""
            asked.append(  # what `qa eval` reads of the first ask: the "before" figures without a second run
                {
                    "question": q.id,
                    "right1": cited[:1] == [q.doc_id],
                    "right5": q.doc_id in cited[:5],
                    "holds": cited[:1] == [q.doc_id] and any(a in top for a in q.answers),
                    "chars": len(top),
                    "high": reply.answer.confidence == "high",
                }
            )
            if not ranked or query is None:
                continue
            for position, candidate in enumerate(ranked[:PASSAGES]):
                hit = candidate.hit
                if hit.chunk.doc_id != q.doc_id or not hit.sentences:
                    continue
                texts = [s.text for s in hit.sentences]
                queries.append(query.astype(np.float16))
                sentences.append(hit.sentence_vectors.astype(np.float16))
                out.append(
                    {
                        "question": q.id,
                        "text": q.text,
                        "group": f"{lang}:{languages[q.doc_id]}" if languages else lang,
                        "position": position,
                        "answers": list(q.answers),
                        "texts": texts,
                        "alone": (hit.sentence_vectors @ query).round(6).tolist(),
                        "fine": (hit.sentence_vectors[:, :fine] @ query[:fine]).round(6).tolist(),
                        "context": (hit.context_vectors @ query).round(6).tolist(),
                        "hand": candidate.span.text,
                        "embedder": embedder,
                    }
                )
            if done % 200 == 0:
                print(f"{lang}: {done}/{len(eval_set.questions)}", file=sys.stderr)
    (CACHE / f"{lang}-questions.json").write_text(json.dumps(asked))
    return out, np.stack(queries), np.vstack(sentences)


def records(langs: Sequence[str], workdirs: str, xquad: Path, cache: Path) -> list[dict]:
    found = []
    for lang in langs:
        path = cache / f"{lang}.json"
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            got, queries, sentences = collect(lang, Path(workdirs.replace("{LANG}", lang)), xquad)
            np.savez(cache / f"{lang}.npz", queries=queries, sentences=sentences)
            path.write_text(json.dumps(got))
        recs = json.loads(path.read_text())
        with np.load(cache / f"{lang}.npz") as saved:  # each array read once (an NpzFile reads it per access)
            queries, sentences = saved["queries"], saved["sentences"]
        bounds = np.cumsum([0] + [len(r["texts"]) for r in recs])
        for i, r in enumerate(recs):
            r["q"], r["s"] = queries[i], sentences[bounds[i] : bounds[i + 1]]
        found += recs
    return found


def prepare(recs: list[dict]) -> None:
    """Each record's signals (all of NAMES) and labels, computed afresh from the cached cosines and texts."""
    for r in recs:
        cues = Cues.of(r["text"])
        r["x"] = rows(r["texts"], np.array(r["alone"]), np.array(r["fine"]), np.array(r["context"]), cues)
        r["y"] = np.array([any(a in t for a in r["answers"]) for t in r["texts"]], np.float64)


class Logistic:
    """Per-sentence logistic regression on standardised signals: each sentence judged alone."""

    def __init__(self, x: np.ndarray, y: np.ndarray, passage: np.ndarray) -> None:
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        self.weights, _bias = fit_logistic((x - self.mean) / self.scale, y, l2=L2)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights


class Choice(Logistic):
    """Conditional logistic regression (a softmax over each passage's sentences, the shipped kind): fitted on
    the choice itself, the log of the probability the passage's right sentences get, so a signal counts by
    how it separates sentences of one passage, never by how it separates passages."""

    def __init__(self, x: np.ndarray, y: np.ndarray, passage: np.ndarray) -> None:
        from scipy.optimize import minimize

        self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = (x - self.mean) / self.scale
        n = int(passage.max()) + 1

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            s = z @ w
            top = np.full(n, -np.inf)
            np.maximum.at(top, passage, s)
            e = np.exp(s - top[passage])
            total, right = np.zeros(n), np.zeros(n)
            np.add.at(total, passage, e)
            np.add.at(right, passage, e * y)
            value = -np.sum(np.log(right) - np.log(total)) + L2 * len(z) / 2 * w @ w
            # d/ds: softmax over all minus softmax over the right ones
            grad_s = e / total[passage] - y * e / right[passage]
            return float(value), z.T @ grad_s + L2 * len(z) * w

        self.weights = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x


class Trees:
    """scikit-learn's HistGradientBoosting on the same rows (fit time only: never shipped unless it wins)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, passage: np.ndarray) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0)
        self.model.fit(x, y)  # pointwise: a tree model sees sentences, not passages

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.model.decision_function(x)


def design(r: dict, columns: np.ndarray) -> np.ndarray:
    """A record's model inputs: the chosen signals, then with ``PAIR`` the question's first ``PAIR`` columns times
    each sentence's, column by column."""
    x = r["x"][:, columns]
    if not PAIR:
        return x
    q, sv = np.asarray(r["q"][:PAIR], np.float64), np.asarray(r["s"][:, :PAIR], np.float64)
    return np.hstack([x, sv * q])


def training(recs: list[dict], columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of passages that can teach a choice (more than one sentence, at least one right), and each row's
    passage number."""
    use = [r for r in recs if len(r["texts"]) > 1 and r["y"].any()]
    passage = np.concatenate([np.full(len(r["texts"]), i) for i, r in enumerate(use)])
    return np.vstack([design(r, columns) for r in use]), np.concatenate([r["y"] for r in use]), passage


def top_records(recs: list[dict]) -> list[dict]:
    """The records of questions whose top passage is their own paragraph's (position 0)."""
    return [r for r in recs if r["position"] == 0]


def held_out(recs: list[dict], columns: np.ndarray, article: dict[str, int], kind: type = Choice) -> dict[str, list]:
    """Per group, the picks of the top passages scored by models that saw neither the group's paragraph language
    nor the article: for each quarter of the articles, fitted on the other languages' other articles."""
    groups = sorted({r["group"] for r in recs})
    picks: dict[str, list] = {g: [] for g in groups}
    for group in groups:
        language = group.split(":")[-1]
        for fold in range(FOLDS):
            fit = [r for r in recs if r["group"].split(":")[-1] != language and article[r["question"]] % FOLDS != fold]
            model = kind(*training(fit, columns))
            for r in top_records(recs):
                if r["group"] == group and article[r["question"]] % FOLDS == fold:
                    scores = model.scores(design(r, columns))
                    shares = np.exp(scores - scores.max())
                    picks[group].append((r, shares / shares.sum()))
    return picks


def accuracy(picks: list, two: bool = False, run: tuple[float, int] | None = None) -> tuple[float, float]:
    """(share of the picks holding an answer, mean highlight characters); ``two``: with a continuing next one;
    ``run``: the line grown where the pick is unsure (qa.highlight.line_run, with this floor and most chars)."""
    held, chars = [], []
    for r, shares in picks:
        i = int(np.argmax(shares))
        text = r["texts"][i]
        if two and i + 1 < len(r["texts"]) and CONTINUES.search(r["texts"][i + 1]):
            text = text + " " + r["texts"][i + 1]
        if run is not None:
            first, last, _ = line_run(shares, [len(t) for t in r["texts"]], i, *run)
            text = " ".join(r["texts"][first : last + 1])
        held.append(any(a in text for a in r["answers"]))
        chars.append(len(text))
    return float(np.mean(held)), float(np.mean(chars))


def hand(recs: list[dict]) -> tuple[float, float]:
    """The hand rules' top highlight: how often it holds an answer, its mean characters."""
    top = top_records(recs)
    return (
        float(np.mean([any(a in r["hand"] for a in r["answers"]) for r in top])),
        float(np.mean([len(r["hand"]) for r in top])),
    )


def summary(picks: dict[str, list]) -> float:
    return float(np.mean([accuracy(p)[0] for p in picks.values()]))


def main() -> None:
    global PAIR, L2, CACHE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", type=Path, default=Path("../shared/data/xquad"))
    parser.add_argument("--workdirs", default="/tmp/choice-eval-{LANG}", help="qa eval --workdir of each corpus")
    parser.add_argument("--langs", default=",".join(LANGS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/choice-fit"))
    parser.add_argument("--features", default=",".join(NAMES))
    parser.add_argument("--ablate", action="store_true", help="each signal's held-out gain (a fit per signal)")
    parser.add_argument("--trees", action="store_true", help="also gradient-boosted trees (scikit-learn)")
    parser.add_argument("--write", action="store_true", help="write qa/data/sentence_choice.json")
    parser.add_argument("--pair", type=int, default=0, help="add the pair columns (e5's: 384)")
    parser.add_argument("--l2", type=float, default=L2)
    args = parser.parse_args()
    PAIR, L2, CACHE = args.pair, args.l2, args.cache

    langs = args.langs.split(",")
    recs = records(langs, args.workdirs, args.xquad, args.cache)
    prepare(recs)
    names = args.features.split(",")
    columns = np.array([NAMES.index(n) for n in names], np.intp)
    article = articles(args.xquad)
    groups = sorted({r["group"] for r in recs})
    picks = held_out(recs, columns, article)
    print(f"{len(top_records(recs))} questions whose top passage is their paragraph's; {len(recs)} passages")
    print("| group | top right | hand rules | closest sentence | learned, held out | chars: hand / learned |")
    print("|---|---|---|---|---|---|")
    for g in groups:
        mine = [r for r in recs if r["group"] == g]
        hand_acc, hand_chars = hand(mine)
        closest = accuracy([(r, np.array(r["alone"])) for r in top_records(mine)])[0]
        acc, chars = accuracy(picks[g])
        print(
            f"| {g} | {len(top_records(mine))} | {hand_acc:.3f} | {closest:.3f} | {acc:.3f} | "
            f"{hand_chars:.0f} / {chars:.0f} |"
        )
    base = summary(picks)
    print(f"mean over groups, learned held out: {base:.4f}")

    two = {g: accuracy(p, two=True) for g, p in picks.items()}
    print("\ntwo-sentence answers (the pick and a continuing next sentence), held out:")
    for g in groups:
        one = accuracy(picks[g])
        print(f"  {g}: {one[0]:.3f} -> {two[g][0]:.3f}, chars {one[1]:.0f} -> {two[g][1]:.0f}")

    print("\nthe line grown where the pick is unsure (qa.highlight.line_run), held out: share holding / chars")
    grid = [(floor, most) for floor in (0.6, 0.7, 0.8) for most in (150, 250, 350)]
    print("| group | pick | " + " | ".join(f"{f} / {m}" for f, m in grid) + " |")
    print("|---|---|" + "---|" * len(grid))
    for g in groups:
        cells = [accuracy(picks[g], run=cell) for cell in grid]
        one = accuracy(picks[g])
        print(f"| {g} | {one[0]:.3f} / {one[1]:.0f} | " + " | ".join(f"{a:.3f} / {c:.0f}" for a, c in cells) + " |")
    shipped = accuracy([p for ps in picks.values() for p in ps], run=(RUN_SHARE, RUN_CHARS))
    print(f"shipped ({RUN_SHARE} / {RUN_CHARS}), all groups: {shipped[0]:.3f} / {shipped[1]:.0f}")

    if args.trees:
        pointwise = held_out(recs, columns, article, Logistic)
        trees = held_out(recs, columns, article, Trees)
        print("\nthe same rows and folds, other models (fit time only):")
        print("| group | conditional logistic (shipped) | pointwise logistic | gradient-boosted trees |")
        print("|---|---|---|---|")
        for g in groups:
            print(
                f"| {g} | {accuracy(picks[g])[0]:.3f} | {accuracy(pointwise[g])[0]:.3f} | {accuracy(trees[g])[0]:.3f} |"
            )
        print(f"| mean | {base:.4f} | {summary(pointwise):.4f} | {summary(trees):.4f} |")

    if args.ablate:
        print("\neach signal's held-out gain (mean over groups with all signals minus without it):")
        for i, name in enumerate(names):
            without = np.delete(columns, i)
            print(f"  {name:14s} {base - summary(held_out(recs, without, article)):+.4f}")

    model = Choice(*training(recs, columns))
    print("\nweights (standardised), fitted on everything:")
    print("  " + ", ".join(f"{n} {w:+.3f}" for n, w in zip(names, model.weights)))
    if args.write:
        shipped = Model(
            tuple(names),
            model.mean,
            model.scale,
            model.weights,
            recs[0]["embedder"],
            {
                "data": [f"xquad.en.json questions against xquad.{lang}.json paragraphs" for lang in langs],
                "label": "a sentence of the question's own paragraph's passage (top 5) holding an answer text",
                "command": "python " + " ".join(sys.argv),
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "held_out_mean": round(base, 4),
                "held_out": {g: round(accuracy(p)[0], 4) for g, p in picks.items()},
            },
            PAIR,
        )
        MODEL_PATH.write_text(json.dumps(shipped.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MODEL_PATH}")


if __name__ == "__main__":
    main()
