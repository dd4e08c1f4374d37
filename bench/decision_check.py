"""Check the no-answer model on a configuration it was not fitted for: `qa eval`'s no-answer figures with the
decision the answerer picks for that configuration, then with the fitted model forced, on one kept index.

What ``checked_on`` in qa/data/answerability.json rests on (docs/quality.md, "What the model was fitted for"):
an embedder goes there only where the forced model beats that embedder's calibrated cut. Quality figures only:
nothing here is timed.

    python bench/decision_check.py --embedder e5 --contexts data/xquad/xquad.de.json --limit 400
    python bench/decision_check.py --sparse-weight 0 --contexts data/xquad/xquad.de.json --limit 400
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)

from qa import answerability
from qa.config import Settings
from qa.eval import evaluate, load_eval_set

SHOWN = ("recall@1", "answered_right", "answered_unanswerable", "no_answer_auc", "decision", "decision_note")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=Path("data/xquad/xquad.en.json"))
    parser.add_argument("--contexts", type=Path, required=True)
    parser.add_argument("--embedder", default=None, help="QA_EMBEDDER for the check (default: the configured one)")
    parser.add_argument("--sparse-weight", type=float, default=None, help="QA_SPARSE_WEIGHT for the check")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the index here (a rerun embeds nothing)")
    args = parser.parse_args()
    overrides = {"embedder": args.embedder, "sparse_weight": args.sparse_weight}
    settings = Settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    eval_set = load_eval_set(args.questions, args.contexts, args.limit)
    workdir = args.workdir or Path(f"/tmp/qa-decision-check-{args.contexts.stem}")
    report = {
        "embedder": settings.embedder,
        "sparse_weight": settings.sparse_weight,
        "questions": len(eval_set.questions),
    }
    report["as configured"] = {k: v for k, v in evaluate(settings, eval_set, workdir=workdir).items() if k in SHOWN}
    answerability.Model.unfit_for = lambda self, *_: None  # type: ignore[method-assign]  (the model, whatever it reads)
    report["model forced"] = {k: v for k, v in evaluate(settings, eval_set, workdir=workdir).items() if k in SHOWN}
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
