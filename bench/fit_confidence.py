"""Fit the thresholds of qa/confidence.py: a "high" answer's highlight must hold the answer >= 90% of the time.

For every development corpus, every English question is asked through the service's own ``Answerer.reply`` over
the index `qa eval --workdir` keeps; each answered question gives the no-answer model's probability, the
sentence margin, and whether the top highlight holds the answer (the top document right and an answer text in
the highlight, as `qa eval`'s answer_in_highlight@1). The thresholds kept are those whose worst corpus has the
largest share of high-confidence answers while every corpus keeps a precision of at least ``--precision``.
Held out: each corpus in turn, thresholds fitted on the others and scored on it.

    for L in de el zh en mixed; do qa eval --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.$L.json --workdir /tmp/answer-eval-$L; done
    python bench/fit_confidence.py --workdirs /tmp/answer-eval-{LANG} --cache /tmp/confidence-fit

Rows are cached per corpus in --cache (delete it after the pipeline changes); bench/eval_rows.py writes them
from a `qa eval`-identical run, so the refit needs no pass of its own. Copy the printed thresholds into
qa/confidence.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import ROOT, machine

from qa.config import Settings
from qa.eval import Judged, distinct_documents, holds_answer, indexed, load_eval_set

DATA = ROOT.parent / "shared" / "data" / "xquad"
PROBABILITIES = np.round(np.arange(0.30, 0.96, 0.01), 2)
# the margin is the learned choice's share for its pick (0-1) where it chooses, else a cosine lead (0-0.06)
MARGINS = np.round(np.r_[np.arange(0.0, 0.061, 0.002), np.arange(0.30, 1.001, 0.02)], 3)


def rows(language: str, workdir: Path, cache: Path) -> np.ndarray:
    """(probability, margin, answered, holds) per question, asked over the kept index."""
    path = cache / f"{language}.json"
    if path.exists():
        return np.array(json.loads(path.read_text()), np.float64)
    eval_set = load_eval_set(DATA / "xquad.en.json", DATA / f"xquad.{language}.json")
    out = []
    with indexed(Settings(), eval_set, workdir=workdir) as (answerer, _seconds):
        for question in eval_set.questions:
            reply = answerer.reply(question.text, 30)
            answer = reply.answer
            top = answer.citations[0].highlight.text if answer.citations else ""
            holds = holds_answer(Judged(question, distinct_documents(answer), top))
            out.append((reply.confidence, reply.margin, not answer.no_answer, holds))
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return np.array(out, np.float64)


def figures(data: np.ndarray, probability: float, margin: float) -> tuple[float, float]:
    """(confident share, confident precision) of one corpus at the thresholds."""
    high = (data[:, 2] > 0) & (data[:, 0] >= probability) & (data[:, 1] >= margin)
    return float(high.mean()), float(data[high, 3].mean()) if high.any() else 0.0


def fit(corpora: dict[str, np.ndarray], precision: float) -> tuple[float, float]:
    """The thresholds maximising the worst corpus's share with every corpus's precision >= ``precision``."""
    best, chosen = -1.0, (1.0, 1.0)
    for p in PROBABILITIES:
        for m in MARGINS:
            scored = [figures(data, p, m) for data in corpora.values()]
            if all(prec >= precision for _, prec in scored) and min(s for s, _ in scored) > best:
                best, chosen = min(s for s, _ in scored), (float(p), float(m))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="de,el,zh,en,mixed")
    parser.add_argument("--workdirs", default="/tmp/answer-eval-{LANG}", help="qa eval --workdir of each corpus")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/confidence-fit"))
    parser.add_argument("--precision", type=float, default=0.90)
    args = parser.parse_args()
    print(machine())
    corpora = {
        lang: rows(lang, Path(args.workdirs.replace("{LANG}", lang)), args.cache) for lang in args.langs.split(",")
    }
    p, m = fit(corpora, args.precision)
    print(f"fitted on {', '.join(corpora)}: MIN_PROBABILITY = {p}, MIN_MARGIN = {m}")
    print("| corpus | confident_share | confident_precision | held out: share / precision (thresholds) |")
    print("|---|---|---|---|")
    for lang, data in corpora.items():
        share, prec = figures(data, p, m)
        others = {k: v for k, v in corpora.items() if k != lang}
        held = ""
        if others:
            hp, hm = fit(others, args.precision)
            hs, hprec = figures(data, hp, hm)
            held = f"{hs:.3f} / {hprec:.3f} ({hp}, {hm})"
        print(f"| {lang} | {share:.3f} | {prec:.3f} | {held} |")


if __name__ == "__main__":
    main()
