"""The no-answer decision's signals: the question's kind in several languages, and the shipped model."""

from __future__ import annotations

import pytest

from qa.answerability import FEATURES, MODEL_PATH, kind_met, load_model, question_kind


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the ministers meet?", "when"),
        ("In welchem Jahr wurde die Brücke gebaut?", "when"),
        ("Когда состоялась встреча?", "when"),
        ("会议是什么时候举行的？", "when"),
        ("How many US troops are stationed in Japan?", "how many"),
        ("Сколько американских военных в Японии?", "how many"),
        ("Πόσοι στρατιώτες είναι στην Ιαπωνία;", "how many"),
        ("日本有多少美军？", "how many"),
        ("Who commands US troops in Japan?", "who"),
        ("Wer ist der Hafenmeister?", "who"),
        ("Кто такой Ллойд Остин?", "who"),
        ("What did Japan do with its arms export restrictions?", None),
    ],
)
def test_question_kind_in_several_languages(question: str, kind: str | None) -> None:
    assert question_kind(question) == kind


def test_kind_is_met_by_the_form_of_the_answer() -> None:
    assert kind_met("when", "The ministers met on 29 July 2024.") == 1.0
    assert kind_met("when", "The ministers met in Tokyo.") == -1.0
    assert kind_met("how many", "Более 50 тыс. военнослужащих.") == 1.0
    assert kind_met("how many", "Es sind zwei Brücken.") == 1.0
    assert kind_met("who", "The talks were led by Antony Blinken.") == 1.0
    assert kind_met("who", "the talks were long.") == -1.0
    assert kind_met("who", "会谈由布林肯主持。") == 0.0  # no capitals to tell a name by
    assert kind_met(None, "anything") == 0.0


def test_the_shipped_model_names_known_signals_and_its_provenance() -> None:
    model = load_model(MODEL_PATH)
    assert set(model.features) <= set(FEATURES)
    assert {"data", "command", "date", "embedder"} <= set(model.provenance)
    # far above its neighbours in score and latent terms: an answer; level with them: not
    values = {name: 0.0 for name in FEATURES}
    high = {**values, "lead_z": 4.0, "margin": 0.1, "terms_lead": 0.2, "terms_z": 3.0, "sentence_gain": 0.03}
    flat = {**values, "lead_z": 1.0, "margin": 0.0, "terms_lead": 0.0, "terms_z": 0.3, "sentence_gain": 0.0}
    assert model.probability(high) > model.threshold > model.probability(flat)
