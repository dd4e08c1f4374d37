"""Denial cues decide where the highlight looks past the closest sentence (qa.highlight)."""

from __future__ import annotations

import pytest

from qa.highlight import is_negated


@pytest.mark.parametrize(
    ("sentence", "denies"),
    [
        ("Командующий войсками США в Японии не имеет командных полномочий.", True),
        ("The Broncos did not win the game.", True),
        ("Der Kommandeur hat keine Befehlsgewalt.", True),
        ("Ο διοικητής δεν έχει εξουσία.", True),
        ("他没有指挥权。", True),
        ("这不是总统的决定。", True),
        ("Управление осуществляет глава Индо-Тихоокеанского командования на Гавайях.", False),
        ("非洲是世界第二大洲。", False),  # 非 in "Africa" denies nothing
        ("未来的计划很重要。", False),  # nor 未 in "future"
        ("这两个城市不同。", False),  # nor 不 in "different"
    ],
)
def test_denials_are_recognized_by_word_not_by_character(sentence: str, denies: bool) -> None:
    assert is_negated(sentence) is denies
