"""`qa eval`'s figures and, from the same asks, the rows bench/fit_confidence.py fits on: one pass, not two.

Every question is judged exactly as `qa eval` judges it (qa.eval.judge: asked, and asked again with its paragraph
left out), over the index a `qa eval --workdir` run kept; the report is qa eval's JSON, and each question's
row (probability, margin, answered, holds, the no-answer signals) goes to ``--rows`` in fit_confidence's cache
format, so a refit of the confidence model after a pipeline change needs no second pass over the questions.

    python bench/eval_rows.py --contexts ../shared/data/xquad/xquad.de.json --workdir /tmp/choice-eval-de \\
        --rows /tmp/confidence-fit/de.json > /tmp/after-de.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)
import numpy as np
from fit_confidence import row

from qa.config import Settings
from qa.eval import KEYS, confidence_metrics, holds_answer, indexed, judge, load_eval_set, metrics, no_answer_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=Path("../shared/data/xquad/xquad.en.json"))
    parser.add_argument("--contexts", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rows", type=Path, required=True)
    args = parser.parse_args()
    eval_set = load_eval_set(args.questions, args.contexts)
    with indexed(Settings(), eval_set, workdir=args.workdir) as (answerer, seconds):
        judged = [judge(answerer, q) for q in eval_set.questions]
        rule = answerer.rule
    result: dict = {"questions": len(judged)}
    for part in (metrics(judged), no_answer_metrics(judged), confidence_metrics(judged)):
        result.update({k: round(v, 4) for k, v in part.items()})
    times = [j.took_ms for j in judged]
    result.update(index_seconds=round(seconds, 2), median_ms=round(float(np.median(times)), 2))
    result.update(p95_ms=round(float(np.percentile(times, 95)), 2), decision=rule.kind, decision_note=rule.why)
    print(json.dumps({k: result[k] for k in KEYS}))
    args.rows.parent.mkdir(parents=True, exist_ok=True)
    rows = [row(j.question.id, j.confidence, j.margin, not j.flagged, holds_answer(j), j.signals) for j in judged]
    args.rows.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
