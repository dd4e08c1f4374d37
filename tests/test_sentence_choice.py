"""The learned sentence choice (qa.sentence_choice, qa.sentence_signals): what a reader sees as the answer line."""

from __future__ import annotations

import numpy as np
import pytest

from qa.answer import Answerer
from qa.embedding import Embedder, make_embedder
from qa.sentence_choice import MODEL_PATH, load_model
from qa.sentence_signals import NAMES, Cues, has_date, rows


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Министры встретились 29 июля.", True),
        ("The arches were completed on 14 May 1887.", True),
        ("Die Brücke wurde im 19. Jahrhundert gebaut.", True),
        ("Η γέφυρα άνοιξε τον Μάιο.", True),
        ("大桥于1887年建成。", True),
        ("Это первые переговоры за последние 15 лет.", False),
        ("The bridge is 120 metres long and carries 40 cars.", False),
    ],
)
def test_a_date_is_told_from_a_bare_count(text: str, date: bool) -> None:
    assert has_date(text) is date


def test_the_shipped_model_says_where_it_comes_from_and_reads_known_signals() -> None:
    model = load_model(MODEL_PATH)
    assert set(model.features) <= set(NAMES)
    assert model.provenance["command"].startswith("python bench/fit_sentence_choice.py")
    assert model.fits(make_embedder("e5:0.9+use:0.1").name)
    assert not model.fits(make_embedder("e5").name)  # another embedder's cosines: the hand rules choose


def test_signals_are_one_row_per_sentence_in_the_order_of_names() -> None:
    texts = ["The bridge crosses the Lune.", "It was opened on 14 May 1887.", "It is 120 metres long."]
    alone = np.array([0.80, 0.78, 0.70])
    x = rows(texts, alone, alone * 0.9, alone, Cues.of("When was the bridge over the Lune opened?"))
    assert x.shape == (3, len(NAMES))
    column = dict(zip(NAMES, x.T))
    assert column["top"].tolist() == [1, 0, 0]
    assert column["when_date"].tolist() == [0, 1, 0]
    assert column["when_number"].tolist() == [0, 0, 1]  # a number, but no date
    assert column["gap"][0] == 0 and column["gap"][2] == pytest.approx(0.10)


def test_an_answerer_with_another_embedder_keeps_the_hand_rules(default_embedder: Embedder, e5: Embedder) -> None:
    assert Answerer(default_embedder, None).chooser is not None
    assert Answerer(e5, None).chooser is None
