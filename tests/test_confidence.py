"""The confidence levels: "high" needs both a likely passage and a clear sentence choice."""

from __future__ import annotations

from qa.confidence import MIN_MARGIN, MIN_PROBABILITY, MIN_SCORE_LEAD, level, level_by_score


def test_high_needs_the_probability_and_the_sentence_margin() -> None:
    assert level(MIN_PROBABILITY, MIN_MARGIN) == "high"
    assert level(MIN_PROBABILITY - 0.01, 1.0) == "low"  # the passage may not answer
    assert level(1.0, MIN_MARGIN - 0.001) == "low"  # two sentences nearly tie: the highlight may be the wrong one


def test_without_the_model_the_lead_over_the_cut_decides() -> None:
    assert level_by_score(0.60 + MIN_SCORE_LEAD, 0.60, MIN_MARGIN) == "high"
    assert level_by_score(0.60 + MIN_SCORE_LEAD - 0.01, 0.60, 1.0) == "low"
    assert level_by_score(0.9, 0.60, MIN_MARGIN - 0.001) == "low"
