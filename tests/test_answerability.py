"""The no-answer decision's signals: the question's kind in several languages, and the shipped model."""

from __future__ import annotations

import pytest
from conftest import answerer_over

from qa.answer import Answerer
from qa.answerability import FEATURES, MODEL_PATH, load_model
from qa.embedding import Embedder
from qa.kinds import kind_met, question_kind

# Signals measured on the town below: "Who is the harbour master of Valdoria?" (answered by harbour.txt) and
# "When was the Valdoria railway station built?" (no document says; the harbour's rebuilding comes first)
ANSWERING = {
    "score": 0.772, "margin": 0.089, "margin_z": 2.183, "lead_z": 2.133, "gap4_z": 2.409, "sentence_margin_z": 1.521,
    "sentence_gain": 0.0, "terms_lead": 0.151, "terms_rank": 1.0, "terms_z": 2.078, "terms_margin": 0.14,
    "sentence": 0.863, "kind": 1.0, "kind_passage": 1.0, "coverage": 0.608, "coverage_lead": 0.217,
    "coverage_margin": 0.215, "dense_lead_z": 2.142, "agree": 1.0, "numbers_missing": 0.0,
}  # fmt: skip
NEIGHBOUR = {
    "score": 0.675, "margin": 0.006, "margin_z": 0.307, "lead_z": 1.135, "gap4_z": 1.022, "sentence_margin_z": 0.429,
    "sentence_gain": -0.009, "terms_lead": 0.023, "terms_rank": 0.6, "terms_z": 0.854, "terms_margin": -0.004,
    "sentence": 0.779, "kind": 1.0, "kind_passage": 1.0, "coverage": 0.348, "coverage_lead": 0.039,
    "coverage_margin": 0.0, "dense_lead_z": 0.895, "agree": 0.333, "numbers_missing": 0.0,
}  # fmt: skip

# A town the corpus almost covers: six documents about Valdoria's harbour, bridge, museum, school, festival and
# market, with dates, names and numbers; none about its railway station, hospitals or football club.
TOWN = {
    "harbour.txt": "The harbour of Valdoria was rebuilt in 1998 after a storm destroyed the old piers. The harbour "
    "master of Valdoria is Ingrid Olsen. Each summer about 400 fishing boats moor there, and a ferry leaves for "
    "the islands twice a day.",
    "bridge.txt": "The Valdoria bridge crosses the river Lenna with three stone arches. It was opened in 1874 and "
    "carries cars, bicycles and a tram line. In 2011 engineers strengthened its foundations against floods.",
    "museum.txt": "The Valdoria city museum shows the history of the town's fishing fleet. Its garden holds seven "
    "fountains and a sculpture of a sailor. The museum is closed on Mondays and entry is free for children.",
    "school.txt": "Valdoria's oldest school was founded by the Benedictine monks in 1620. Today it teaches 900 "
    "pupils, and its library keeps manuscripts from the seventeenth century.",
    "festival.txt": "Every September Valdoria holds a lantern festival on the harbour front. Thousands of paper "
    "lanterns are floated on the water, and the festival ends with fireworks over the bay.",
    "market.txt": "The covered market of Valdoria opens at six in the morning. Farmers from the Lenna valley sell "
    "cheese, honey and apples, and the fish hall sells the morning's catch.",
}


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
        ("बंदरगाह कब बनाया गया?", "when"),
        ("शहर में कितने स्कूल हैं?", "how many"),
        ("बंदरगाह का प्रबंधक कौन है?", "who"),
        ("ท่าเรือสร้างขึ้นเมื่อไร", "when"),
        ("ตลาดเปิดกี่โมง", "when"),  # "what time"
        ("เมืองนี้มีโรงเรียนกี่แห่ง", "how many"),
        ("ใครเป็นนายท่าเรือ", "who"),
        ("متى بني الميناء؟", "when"),
        ("كم عدد المدارس في المدينة؟", "how many"),
        ("من هو مدير الميناء؟", "who"),
        ("ما اسم الشركة من فضلك؟", None),  # من is also "from"/"please": alone it asks for no one
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
    assert kind_met("who", "वार्ता का नेतृत्व ब्लिंकन ने किया।") == 0.0  # nor in Hindi, Thai or Arabic
    assert kind_met("who", "การเจรจานำโดยบลิงเคน") == 0.0
    assert kind_met("who", "قاد المحادثات بلينكن.") == 0.0
    assert kind_met("when", "बंदरगाह १९९८ में बना।") == 1.0  # Devanagari digits are digits
    assert kind_met(None, "anything") == 0.0


def test_the_shipped_model_names_known_signals_and_its_provenance() -> None:
    model = load_model(MODEL_PATH)
    assert set(model.features) <= set(FEATURES)
    assert {"data", "command", "date", "embedder"} <= set(model.provenance)
    assert set(FEATURES) == set(ANSWERING) == set(NEIGHBOUR)
    # the signals of a passage that answers (the harbour master's) and of a neighbour that does not (the station's)
    assert model.probability(ANSWERING) > model.threshold > model.probability(NEIGHBOUR)


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory, default_embedder: Embedder) -> Answerer:
    return answerer_over(tmp_path_factory.mktemp("town"), TOWN, default_embedder)


@pytest.mark.parametrize(
    ("question", "document", "answer"),
    [
        ("Who is the harbour master of Valdoria?", "harbour.txt", "Ingrid Olsen"),
        ("How many fountains are in the museum garden?", "museum.txt", "seven fountains"),
        ("When was the bridge over the Lenna opened?", "bridge.txt", "1874"),
        ("Wann wurde die Schule gegründet?", "school.txt", "1620"),
    ],
)
def test_questions_the_town_documents_answer_are_answered(
    town: Answerer, question: str, document: str, answer: str
) -> None:
    reply = town.reply(question, 5)
    assert reply.signals, "six documents: the answerability model decides, not the fallback cut"
    assert not reply.answer.no_answer, (question, reply.confidence, reply.signals)
    assert reply.answer.citations[0].document == document and answer in reply.answer.citations[0].text


@pytest.mark.parametrize(
    "question",
    [
        "When was the Valdoria railway station built?",
        "Wann wurde der Bahnhof von Valdoria gebaut?",
        "How many hospitals does Valdoria have?",
        "Как называется футбольный клуб Вальдории?",
        # the bridge's documented works were in 2011: a year the question names and no passage holds
        "What did engineers do to the Valdoria bridge in 1955?",
    ],
)
def test_a_question_the_corpus_almost_covers_is_flagged_not_found(town: Answerer, question: str) -> None:
    reply = town.reply(question, 5)
    assert reply.signals and reply.answer.no_answer and reply.answer.no_answer_reason == "not_found", (
        question,
        reply.confidence,
        reply.signals,
    )
    assert reply.answer.answer == "" and reply.answer.citations  # the nearest passages are still shown, as such
