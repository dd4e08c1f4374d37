"""How sure an answer is: "high" where its highlight usually holds the answer, "low" where it often does not.

Every answer used to look equally sure, yet the no-answer decision still answers many questions whose paragraph
is missing, and in about one right passage in five the highlighted sentence is the wrong one (issue 23). Where
the no-answer model decides, a second logistic regression (qa/data/confidence.json, fitted by
bench/fit_confidence.py on whether the top highlight held the answer) reads what that decision read (the
signals of qa.answerability), its probability, and the sentence choice's margin: the share of the passage's
choice the answer line holds (qa.highlight.Choice.sureness; 1.0 for a passage of one sentence), or without the
learned choice the closest sentence's cosine lead (``sentence_margin``). Its threshold is fitted so that a
"high" answer's highlight holds the answer at least 90% of the time on every development corpus
(docs/quality.md, "Confidence"). A corpus too small for the no-answer model (the single calibrated cut on the
top score decides there, qa.answer) is judged by that score's lead over its cut and the margin instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa import answerability
from qa.stores.base import Hit

MODEL_PATH = Path(__file__).with_name("data") / "confidence.json"
# where the no-answer model does not decide (few documents): the top score's lead over the calibrated cut, not
# fitted, and the line's share (0.80: the margin the 2026-12-07 two-threshold fit chose with 0.85)
MIN_SCORE_LEAD = 0.05
MIN_MARGIN = 0.80
ALONE = 1.0  # the margin of a passage of one sentence: nothing to confuse its highlight with


def inputs(probability: float, margin: float, signals: Mapping[str, float]) -> dict[str, float]:
    """The confidence model's inputs: the no-answer signals, the log-odds of their probability, the margin."""
    p, margin = min(max(probability, 1e-4), 1 - 1e-4), max(margin, 0.0)
    return {**signals, "log_odds": float(np.log(p / (1 - p))), "line_margin": margin, "line_margin_sqrt": margin**0.5}


@lru_cache(maxsize=1)
def model() -> answerability.Model:
    """The shipped model (a logistic regression in qa.answerability's format; its threshold is P(holds))."""
    return answerability.load_model(MODEL_PATH)


def sentence_margin(hit: Hit, query: np.ndarray) -> float:
    """The closest sentence's cosine with the question minus the next closest's, in the same passage."""
    if len(hit.sentences) < 2:
        return ALONE
    closest = np.sort(hit.sentence_vectors @ query)[-2:]
    return float(closest[1] - closest[0])


def level(probability: float, margin: float, signals: Mapping[str, float]) -> str:
    """ "high" or "low" from the no-answer model's signals and probability and the sentence margin."""
    fitted = model()
    return "high" if fitted.probability(inputs(probability, margin, signals)) >= fitted.threshold else "low"


def level_by_score(score: float, cut: float, margin: float) -> str:
    """The same where only the single cut on the top score decides (a corpus of a few documents)."""
    return "high" if score >= cut + MIN_SCORE_LEAD and margin >= MIN_MARGIN else "low"
