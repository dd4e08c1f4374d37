"""The answerer on the seed corpus: Russian questions, chat follow-ups, and questions it cannot answer."""

from __future__ import annotations

import pytest
from conftest import JAPAN_ANSWER, JAPAN_QUESTION

from qa.answer import Answerer, follow_up_text, numbers
from qa.models import Turn

JAPAN_CHAT = [Turn("user", JAPAN_QUESTION), Turn("assistant", JAPAN_ANSWER)]


def test_russian_question_is_answered_with_the_russian_sentence(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("Кто руководит американскими военными в Японии?")
    assert not answer.no_answer
    assert answer.answer == JAPAN_ANSWER


@pytest.mark.parametrize("question", ["where is that command based?", "where is it based?"])
def test_follow_up_question_is_read_after_the_previous_turn(seed_answerer: Answerer, question: str) -> None:
    # "where is it based?" names nothing: alone it matches unrelated passages, after the chat it is about the command
    answer = seed_answerer.ask(question, history=JAPAN_CHAT)
    assert not answer.no_answer
    assert "Гавай" in answer.citations[0].text  # Hawaii, where the Indo-Pacific Command sits
    assert answer.answer == JAPAN_ANSWER


def test_unrelated_history_does_not_change_a_standalone_answer(seed_answerer: Answerer) -> None:
    question = "Что Япония сделала с ограничениями на экспорт оружия?"
    alone = seed_answerer.ask(question)
    with_history = seed_answerer.ask(question, history=JAPAN_CHAT)
    assert "ослабила ограничения на экспорт оружия" in alone.answer
    assert with_history.answer == alone.answer


def test_follow_up_text_uses_only_the_latest_exchange() -> None:
    history = [Turn("user", "old topic"), Turn("assistant", "old answer"), *JAPAN_CHAT]
    text = follow_up_text("where is that command based?", history)
    assert text == f"{JAPAN_QUESTION} where is that command based?"
    assert follow_up_text("anything?", []) is None
    assert follow_up_text("anything?", [Turn("assistant", "hello")]) is None


def test_unrelated_question_is_flagged_no_answer_with_citations(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("Who won the football World Cup final in 2018?")
    assert answer.no_answer
    assert answer.answer == ""
    assert answer.citations  # the closest passages are still listed


def test_on_topic_questions_are_not_flagged(seed_answerer: Answerer) -> None:
    for question in (JAPAN_QUESTION, "How many US troops are stationed in Japan?", "Кто такой Ллойд Остин?"):
        assert not seed_answerer.ask(question).no_answer, question


def test_numbers_agree_across_separators_and_scripts() -> None:
    assert numbers("Der Rhein ist 1.233 km lang, seit 2015") == numbers("The Rhine is 1,233 km long, since 2015")
    assert numbers("莱茵河长1233公里") == {"1233"}
    assert numbers("no digits here") == set()
