"""Language identification decides where the fused embedder lets USE read (qa.languages)."""

from __future__ import annotations

import pytest

from qa.languages import detect, readable


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Στον Ινδουισμό ο πνευματικός δάσκαλος είναι γνωστός ως γκουρού.", "el"),
        ("超级碗50是一场美式橄榄球比赛，以确定2015赛季的冠军。", "zh"),
        ("Управление осуществляет глава Индо-Тихоокеанского командования на Гавайях.", "ru"),
        ("The reactor was commissioned in 1987 near the coast.", "en"),
        ("1987 – 2024, 50 000", None),  # no letters: every model can read numbers
    ],
)
def test_detect_names_the_language_or_none_without_letters(text: str, code: str | None) -> None:
    assert detect(text) == code


USE_LANGUAGES = frozenset({"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"})


def test_sentences_are_judged_by_script_and_passages_by_language() -> None:
    assert readable("Кошка спит на диване.", USE_LANGUAGES)  # identified alone it reads as Macedonian
    assert not readable("Ο σκύλος γαβγίζει δυνατά.", USE_LANGUAGES)  # Greek script: no USE language uses it
    assert readable("1990, 2024", USE_LANGUAGES)
    czech = (
        "Praha je hlavní a současně největší město České republiky a 13. největší město Evropské unie. "
        "Leží mezi Mladou Boleslaví na severu a Benešovem na jihu, na řece Vltavě, a žije v ní přes milion lidí. "
        "Historické centrum Prahy je od roku 1992 zapsáno na seznamu světového dědictví UNESCO."
    )
    assert not readable(czech, USE_LANGUAGES)  # Latin script, but long enough to identify: Czech
