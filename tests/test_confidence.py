"""The confidence levels where the no-answer model does not decide (a corpus of a few documents)."""

from __future__ import annotations

from qa.confidence import MIN_MARGIN, MIN_SCORE_LEAD, level_by_score

# the fitted model (level) is tested on a real corpus in tests/test_answerability.py


def test_without_the_model_the_lead_over_the_cut_decides() -> None:
    assert level_by_score(0.60 + MIN_SCORE_LEAD, 0.60, MIN_MARGIN) == "high"
    assert level_by_score(0.60 + MIN_SCORE_LEAD - 0.01, 0.60, 1.0) == "low"
    assert level_by_score(0.9, 0.60, MIN_MARGIN - 0.001) == "low"
