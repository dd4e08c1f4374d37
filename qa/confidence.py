"""How sure an answer is: "high" where its highlight usually holds the answer, "low" where it often does not.

Every answer used to look equally sure, yet the no-answer decision still answers many questions whose paragraph
is missing, and in about one right passage in five the highlighted sentence is the wrong one (issue 23). Two
signals say when to doubt: the no-answer model's probability that the top passage answers (qa.answerability),
and the sentence choice's margin: where the learned choice picks the answer line (qa.sentence_choice), the
share of the passage's choice its answer line holds (qa.highlight.Choice.sureness, 1.0 for a passage of one
sentence), else the closest sentence's cosine minus the next closest's (``sentence_margin``); either way, a
near tie means the highlight may be the wrong sentence. Both thresholds are fitted by bench/fit_confidence.py
so that a "high" answer's highlight holds the answer at least 90% of the time on every
development corpus (docs/quality.md). A corpus too small for the model (the single calibrated cut on the top
score decides there, qa.answer) is judged by that score's lead over its cut instead.
"""

from __future__ import annotations

import numpy as np

from qa.stores.base import Hit

# Fitted by bench/fit_confidence.py on XQuAD de, el, zh, en and mixed, 2026-12-07 (third session), with the
# share the answer line holds (the learned choice's pick, grown where unsure) as the margin (docs/quality.md,
# "Confidence"): precision 0.900-0.944, share de 0.40, el 0.21, zh 0.19, en 0.65, mixed 0.39
MIN_PROBABILITY = 0.85
MIN_MARGIN = 0.80
MIN_SCORE_LEAD = 0.05  # over the calibrated cut, where the model does not decide (few documents); not fitted
ALONE = 1.0  # the margin of a passage of one sentence: nothing to confuse its highlight with


def sentence_margin(hit: Hit, query: np.ndarray) -> float:
    """The closest sentence's cosine with the question minus the next closest's, in the same passage."""
    if len(hit.sentences) < 2:
        return ALONE
    closest = np.sort(hit.sentence_vectors @ query)[-2:]
    return float(closest[1] - closest[0])


def level(probability: float, margin: float) -> str:
    """ "high" or "low" from the no-answer model's probability and the sentence margin."""
    return "high" if probability >= MIN_PROBABILITY and margin >= MIN_MARGIN else "low"


def level_by_score(score: float, cut: float, margin: float) -> str:
    """The same where only the single cut on the top score decides (a corpus of a few documents)."""
    return "high" if score >= cut + MIN_SCORE_LEAD and margin >= MIN_MARGIN else "low"
