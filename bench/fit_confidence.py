"""Fit qa/data/confidence.json: a "high" answer's highlight must hold the answer >= 90% of the time.

For every development corpus, every English question is asked through the service's own ``Answerer.reply`` over
the index `qa eval --workdir` keeps; each answered question gives the no-answer model's signals and probability,
the sentence margin (the share of the choice the answer line holds), and whether the top highlight holds the
answer (the top document right and an answer text in the highlight, as `qa eval`'s answer_in_highlight@1). A
logistic regression on those (qa.confidence.inputs) predicts that the highlight holds the answer; its threshold
is the one whose worst corpus has the largest share of high-confidence answers while every corpus keeps a
precision of at least ``--precision``. Held out as bench/fit_answerability.py holds out: each corpus in turn,
and within it each quarter of XQuAD's 48 articles, fitted (model and threshold) on the other corpora's other
articles. For comparison, the two thresholds shipped before (the probability and the margin alone).

    for L in de el zh en mixed; do python bench/eval_rows.py --contexts ../shared/data/xquad/xquad.$L.json \\
        --workdir /tmp/choice-eval-$L --rows /tmp/confidence-fit/$L.json; done
    python bench/fit_confidence.py --workdirs /tmp/choice-eval-{LANG} --cache /tmp/confidence-fit --write

Rows are cached per corpus in --cache (delete it after the pipeline changes); bench/eval_rows.py writes them
from a `qa eval`-identical run, so the refit needs no pass of its own.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
from _common import ROOT, machine
from fit_answerability import articles, fit_logistic

from qa import answerability, confidence
from qa.config import Settings
from qa.eval import Judged, distinct_documents, holds_answer, indexed, load_eval_set

DATA = ROOT.parent / "shared" / "data" / "xquad"
FOLDS = 4
THRESHOLDS = np.round(np.arange(0.30, 0.996, 0.005), 3)
FEATURES = (*answerability.FEATURES, "log_odds", "line_margin", "line_margin_sqrt")
# the two thresholds shipped before the model, for comparison
PROBABILITIES = np.round(np.arange(0.30, 0.96, 0.01), 2)
MARGINS = np.round(np.arange(0.30, 1.001, 0.02), 3)


def row(question: str, probability: float, margin: float, answered: bool, holds: bool, signals: dict) -> dict:
    """One question's cached row (bench/eval_rows.py writes the same)."""
    return {
        "question": question,
        "probability": probability,
        "margin": margin,
        "answered": answered,
        "holds": holds,
        "signals": signals,
    }


def rows(language: str, workdir: Path, cache: Path) -> list[dict]:
    """The rows of every question, asked over the kept index (or read from the cache)."""
    path = cache / f"{language}.json"
    if path.exists():
        return json.loads(path.read_text())
    eval_set = load_eval_set(DATA / "xquad.en.json", DATA / f"xquad.{language}.json")
    out = []
    with indexed(Settings(), eval_set, workdir=workdir) as (answerer, _seconds):
        for question in eval_set.questions:
            reply = answerer.reply(question.text, 30)
            answer = reply.answer
            top = answer.citations[0].highlight.text if answer.citations else ""
            holds = holds_answer(Judged(question, distinct_documents(answer), top))
            out.append(row(question.id, reply.confidence, reply.margin, not answer.no_answer, holds, reply.signals))
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def matrix(data: list[dict]) -> np.ndarray:
    """The model's inputs of each row (computed once a row and kept in it)."""
    for r in data:
        if "x" not in r:
            values = confidence.inputs(r["probability"], r["margin"], r["signals"])
            r["x"] = [values[name] for name in FEATURES]
    return np.array([r["x"] for r in data], np.float64)


def train(data: list[dict]) -> answerability.Model:
    """The logistic regression on the answered rows the no-answer model decided (with signals)."""
    use = [r for r in data if r["answered"] and r["signals"]]
    x, y = matrix(use), np.array([r["holds"] for r in use], np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    weights, bias = fit_logistic((x - mean) / scale, y)
    return answerability.Model(FEATURES, mean, scale, weights, bias, 0.5, {})


def high(model: answerability.Model, data: list[dict], threshold: float) -> np.ndarray:
    """Which rows the model calls "high" at ``threshold``."""
    decided = np.array([bool(r["answered"] and r["signals"]) for r in data])
    out = np.zeros(len(data), bool)
    if decided.any():
        out[decided] = model.probabilities(matrix([r for r, d in zip(data, decided) if d])) >= threshold
    return out


def figures(data: list[dict], chosen: np.ndarray) -> tuple[float, float]:
    """(confident share, confident precision) of one corpus."""
    holds = np.array([r["holds"] for r in data], bool)
    return float(chosen.mean()), float(holds[chosen].mean()) if chosen.any() else 0.0


def threshold(model: answerability.Model, corpora: dict[str, list[dict]], precision: float) -> float:
    """The threshold maximising the worst corpus's share with every corpus's precision >= ``precision``."""
    best, chosen = -1.0, 1.0
    for t in THRESHOLDS:
        scored = [figures(data, high(model, data, t)) for data in corpora.values()]
        if all(prec >= precision for _, prec in scored) and min(s for s, _ in scored) > best:
            best, chosen = min(s for s, _ in scored), float(t)
    return chosen


def two_thresholds(corpora: dict[str, list[dict]], precision: float) -> tuple[float, float]:
    """The probability and margin thresholds shipped before the model, fitted the same way."""
    best, chosen = -1.0, (1.0, 1.0)
    for p in PROBABILITIES:
        for m in MARGINS:
            scored = [
                figures(d, np.array([r["answered"] and r["probability"] >= p and r["margin"] >= m for r in d]))
                for d in corpora.values()
            ]
            if all(prec >= precision for _, prec in scored) and min(s for s, _ in scored) > best:
                best, chosen = min(s for s, _ in scored), (float(p), float(m))
    return chosen


def held_out(corpora: dict[str, list[dict]], lang: str, article: dict[str, int], precision: float) -> tuple:
    """(share, precision) of ``lang`` scored by models fitted on the other corpora's other articles."""
    chosen, holds = [], []
    for fold in range(FOLDS):
        others = {k: [r for r in v if article[r["question"]] % FOLDS != fold] for k, v in corpora.items() if k != lang}
        model = train([r for v in others.values() for r in v])
        t = threshold(model, others, precision)
        mine = [r for r in corpora[lang] if article[r["question"]] % FOLDS == fold]
        chosen.append(high(model, mine, t))
        holds += [r["holds"] for r in mine]
    return figures([{"holds": h} for h in holds], np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="de,el,zh,en,mixed")
    parser.add_argument("--workdirs", default="/tmp/choice-eval-{LANG}", help="qa eval --workdir of each corpus")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/confidence-fit"))
    parser.add_argument("--precision", type=float, default=0.90)
    parser.add_argument("--write", action="store_true", help="write qa/data/confidence.json")
    args = parser.parse_args()
    print(machine())
    corpora = {
        lang: rows(lang, Path(args.workdirs.replace("{LANG}", lang)), args.cache) for lang in args.langs.split(",")
    }
    article = articles(DATA)
    model = train([r for v in corpora.values() for r in v])
    t = threshold(model, corpora, args.precision)
    p, m = two_thresholds(corpora, args.precision)
    print(f"fitted on {', '.join(corpora)}: P(holds) >= {t}; the two thresholds alone: ({p}, {m})")
    print("| corpus | the model: share / precision | held out: share / precision | two thresholds: share / precision |")
    print("|---|---|---|---|")
    for lang, data in corpora.items():
        share, prec = figures(data, high(model, data, t))
        hs, hp = held_out(corpora, lang, article, args.precision)
        ts, tp = figures(data, np.array([r["answered"] and r["probability"] >= p and r["margin"] >= m for r in data]))
        print(f"| {lang} | {share:.3f} / {prec:.3f} | {hs:.3f} / {hp:.3f} | {ts:.3f} / {tp:.3f} |")
    print("weights (standardised):", ", ".join(f"{n} {w:+.3f}" for n, w in zip(FEATURES, model.weights)))
    if args.write:
        decision = answerability.load_model()
        provenance = {
            "data": [f"xquad.en.json questions against xquad.{lang}.json paragraphs" for lang in corpora],
            "label": "the top highlight holds an answer text (answer_in_highlight@1), answered questions",
            "command": "python " + " ".join(sys.argv),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "threshold_rule": f"every corpus's precision >= {args.precision}, the worst corpus's share largest",
        }
        shipped = answerability.Model(
            FEATURES,
            model.mean,
            model.scale,
            model.weights,
            model.bias,
            t,
            provenance,
            decision.embedder,
            decision.checked_on,
            decision.signals,
        )
        confidence.MODEL_PATH.write_text(json.dumps(shipped.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {confidence.MODEL_PATH}")


if __name__ == "__main__":
    main()
