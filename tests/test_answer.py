"""The answerer on the seed corpus: Russian questions, chat follow-ups, and questions it cannot answer."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, answerer_over

from qa import store
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import Embedder
from qa.models import Turn
from qa.numerals import numbers, numerals
from qa.sentences import split_sentences

JAPAN_CHAT = [Turn("user", JAPAN_QUESTION), Turn("assistant", JAPAN_ANSWER)]


def test_russian_question_is_answered_with_the_russian_sentence(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("Кто руководит американскими военными в Японии?")
    assert not answer.no_answer
    assert answer.answer in JAPAN_ANSWERS  # the correction, after its denial or alone (conftest), never the denial


@pytest.mark.parametrize("question", ["where is that command based?", "where is it based?"])
def test_follow_up_question_is_read_after_the_previous_turn(seed_answerer: Answerer, question: str) -> None:
    # "where is it based?" names nothing: alone it matches unrelated passages, after the chat it is about the command
    answer = seed_answerer.ask(question, history=JAPAN_CHAT)
    assert not answer.no_answer
    assert "Гавай" in answer.citations[0].text  # Hawaii, where the Indo-Pacific Command sits
    # the correction, alone or after the denial it corrects: which of the two sentences also shows sits on a near
    # tie that bf16 on AMX decides otherwise than fp32 (issue 22); a user reads the answer either way
    assert answer.answer in JAPAN_ANSWERS


def test_unrelated_history_does_not_change_a_standalone_answer(seed_answerer: Answerer) -> None:
    question = "Что Япония сделала с ограничениями на экспорт оружия?"
    alone = seed_answerer.ask(question)
    with_history = seed_answerer.ask(question, history=JAPAN_CHAT)
    assert "ослабила ограничения на экспорт оружия" in alone.answer
    assert with_history.answer == alone.answer


@pytest.mark.parametrize("question", ["What is the capital of France?", "How tall is Mount Everest?"])
def test_an_off_corpus_question_after_an_on_topic_one_is_still_not_found(
    seed_answerer: Answerer, question: str
) -> None:
    # read after the Japan question, both once scored like it and were answered with the Hawaii sentence
    assert seed_answerer.ask(question).no_answer_reason == "not_found"
    after = seed_answerer.ask(question, history=JAPAN_CHAT)
    assert after.no_answer and after.no_answer_reason == "not_found" and after.answer == ""


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("Who did Kihara meet before the talks?", "Кихара встретился со своим южнокорейским коллегой Шин Вон Сиком"),
        # read after the Japan question it was answered with «На встрече министры договорились…»
        ("When did the ministers meet?", None),
    ],
)
def test_a_question_complete_alone_is_answered_as_when_asked_alone(
    seed_answerer: Answerer, question: str, sentence: str | None
) -> None:
    alone = seed_answerer.ask(question)
    after = seed_answerer.ask(question, history=JAPAN_CHAT)
    assert sentence is None or sentence in alone.answer
    assert after.answer == alone.answer and not after.no_answer
    assert [(c.document, c.start, c.highlight.start) for c in after.citations] == [
        (c.document, c.start, c.highlight.start) for c in alone.citations
    ]


def test_unrelated_question_is_flagged_no_answer_with_citations(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("Who won the football World Cup final in 2018?")
    assert answer.no_answer and answer.no_answer_reason == "not_found"
    assert answer.answer == ""
    assert answer.citations  # the closest passages are still listed


def test_on_topic_questions_are_not_flagged(seed_answerer: Answerer) -> None:
    for question in (JAPAN_QUESTION, "How many US troops are stationed in Japan?", "Кто такой Ллойд Остин?"):
        assert not seed_answerer.ask(question).no_answer, question


def test_numbers_agree_across_separators_and_scripts() -> None:
    assert numbers("Der Rhein ist 1.233 km lang, seit 2015") == numbers("The Rhine is 1,233 km long, since 2015")
    assert numbers("莱茵河长1233公里") == {"1233"}
    assert numbers("बंदरगाह १९९८ में बना") == numbers("ميناء ١٩٩٨") == numbers("ท่าเรือ ๑๙๙๘") == {"1998"}
    assert numbers("no digits here") == set()
    # Roman numerals stay Latin in Greek or Russian text; a lone capital I is a word, not a numeral
    asked = numerals("Who won Super Bowl XXXIII in 1999?")
    assert asked == numerals("Το Super Bowl XXXIII το 1999") == {"XXXIII", "1999"}
    assert numerals("I think so") == set()


@pytest.mark.parametrize("question", [JAPAN_QUESTION, "Что Япония сделала с ограничениями на экспорт оружия?"])
def test_citations_are_ranked_exact_and_never_repeat_a_sentence(seed_answerer: Answerer, question: str) -> None:
    answer = seed_answerer.ask(question, top_k=6)
    citations = answer.citations
    assert [c.rank for c in citations] == list(range(1, len(citations) + 1)) and 1 < len(citations) <= 6
    assert [c.score for c in citations] == sorted((c.score for c in citations), reverse=True)
    text = seed_answerer.document(citations[0].document).text
    for c in citations:
        # the passage and its highlight are the document's own text at the cited offsets
        assert text[c.start : c.end] == c.text
        assert c.start <= c.highlight.start < c.highlight.end <= c.end
        assert text[c.highlight.start : c.highlight.end] == c.highlight.text
        assert c.page is None  # a text file has no pages
    # overlapping passages that would highlight the same sentence are cited once
    assert len({(c.document, c.highlight.start) for c in citations}) == len(citations)
    assert answer.answer == citations[0].highlight.text
    assert len(seed_answerer.ask(question, top_k=1).citations) == 1


def test_a_left_out_document_is_never_cited(tiny_settings: Settings, e5: Embedder) -> None:
    answerer = Answerer(e5, store.load(tiny_settings.index_dir))
    question = "Who is the harbour master of Valdoria?"
    assert answerer.ask(question).citations[0].document == "harbour.txt"
    left_out = answerer.ask(question, exclude_documents={"harbour.txt"})
    assert [c.document for c in left_out.citations] == ["bakery.txt"]
    nothing = answerer.ask(question, exclude_documents={"harbour.txt", "bakery.txt"})
    assert nothing.no_answer and nothing.no_answer_reason == "not_found" and nothing.citations == []


VALDORIA = {
    "hi": "वाल्डोरिया एक छोटा तटीय नगर है। नगर की जनसंख्या लगभग चालीस हज़ार है। यहाँ का बंदरगाह 1998 में फिर से बनाया "
    "गया था। हर सितंबर में बंदरगाह पर लालटेन उत्सव होता है। नगर का संग्रहालय सोमवार को बंद रहता है।",
    "th": "วัลโดเรียเป็นเมืองชายฝั่งขนาดเล็ก ท่าเรือของเมืองถูกสร้างขึ้นใหม่ในปี 1998 หลังจากพายุทำลายท่าเทียบเรือเก่า "
    "ทุกเดือนกันยายนจะมีเทศกาลโคมลอยที่ท่าเรือ พิพิธภัณฑ์ของเมืองปิดทุกวันจันทร์",
}


@pytest.fixture(scope="module")
def valdoria(tmp_path_factory: pytest.TempPathFactory, default_embedder: Embedder) -> dict[str, Answerer]:
    """A one-document index per language."""
    return {
        language: answerer_over(tmp_path_factory.mktemp(language), {"valdoria.txt": text}, default_embedder)
        for language, text in VALDORIA.items()
    }


@pytest.mark.parametrize(
    ("language", "question", "sentence"),
    [
        ("hi", "When was the harbour rebuilt?", "यहाँ का बंदरगाह 1998 में फिर से बनाया गया था।"),
        ("hi", "When is the lantern festival held?", "हर सितंबर में बंदरगाह पर लालटेन उत्सव होता है।"),
        ("hi", "On which day is the museum closed?", "नगर का संग्रहालय सोमवार को बंद रहता है।"),
        ("th", "When was the harbour rebuilt?", "ท่าเรือของเมืองถูกสร้างขึ้นใหม่ในปี 1998 หลังจากพายุทำลายท่าเทียบเรือเก่า"),
        ("th", "When is the lantern festival held?", "ทุกเดือนกันยายนจะมีเทศกาลโคมลอยที่ท่าเรือ"),
        ("th", "On which day is the museum closed?", "พิพิธภัณฑ์ของเมืองปิดทุกวันจันทร์"),
    ],
)
def test_hindi_and_thai_passages_are_ranked_by_their_sentences_and_highlighted_whole(
    valdoria: dict[str, Answerer], language: str, question: str, sentence: str
) -> None:
    """Hindi ends sentences with the danda (।), Thai with a space that also stands around numbers (PyThaiNLP's
    model cuts it): the passage is still scored by its sentences, but the line is the whole passage, since on
    hidden Hindi and Thai XQuAD a sentence line held the answer less often than the passage had (issue 23)."""
    assert sentence in [s.text for s in split_sentences(VALDORIA[language])]  # sentences, for the ranking
    answer = valdoria[language].ask(question, 1)
    top = answer.citations[0]
    assert top.highlight.text == top.text == answer.answer and sentence in answer.answer


def test_an_answer_says_how_sure_it_is(seed_answerer: Answerer, seed_index) -> None:
    sure = seed_answerer.ask(JAPAN_QUESTION)
    assert sure.confidence == "high"
    assert seed_answerer.ask("Who won the football World Cup final in 2018?").confidence is None  # not found
    # the seed is one document, so the single cut on the top score decides: just above it, the answer is unsure
    barely = Answerer(seed_answerer.embedder, seed_index, min_score=sure.citations[0].score - 0.02)
    unsure = barely.ask(JAPAN_QUESTION)
    assert not unsure.no_answer and unsure.answer == sure.answer and unsure.confidence == "low"


def test_a_when_question_is_answered_with_the_date_not_with_a_count(seed_answerer: Answerer) -> None:
    """The seed's article says the ministers "met on 29 July"; another passage says the talks were the first
    "in 15 years", a number, but not a date (issue 23)."""
    answer = seed_answerer.ask("When did the ministers meet?")
    assert "29 июля" in answer.answer and "15 лет" not in answer.answer


BRIDGE = {
    "bridge.txt": "The Harwick bridge over the Lune was the first bridge built on the river in 40 years. "
    "The Harwick bridge was finished on 14 May 1887, after a long dispute over the toll. "
    "Today it carries a footpath and a cycle lane.",
    "mill.txt": "The Harwick mill ground corn for the valley until its wheel broke. Its owners sold it to the town.",
    "school.txt": "The village school has two classrooms and a library. It teaches 60 children from the valley.",
    "church.txt": "The church of St Anne stands on a hill above the village. Its tower can be seen from the bridge.",
    "market.txt": "A market is held in the square every Saturday. Farmers sell cheese, bread and apples there.",
}


def test_a_when_question_whose_closest_sentence_holds_the_wrong_number_is_answered_with_the_date(
    tmp_path, default_embedder: Embedder
) -> None:
    answerer = answerer_over(tmp_path, BRIDGE, default_embedder)
    question = "When was the Harwick bridge built?"
    reply = answerer.reply(question, 3)
    hit = reply.ranked[0].hit
    closest = hit.sentences[int(np.argmax(hit.sentence_vectors @ reply.query))]
    assert "40 years" in closest.text  # the trap: the closest sentence holds a number, but not the date
    dated = "The Harwick bridge was finished on 14 May 1887, after a long dispute over the toll."
    # the line holds the dated sentence whole; where the choice is unsure of it against the trap, both are shown
    # (qa.highlight.line_run), never the trap alone
    assert reply.answer.answer.endswith(dated)
