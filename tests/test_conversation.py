"""Which chat questions lean on the previous turn: pronouns and continuations do, new subjects do not."""

from __future__ import annotations

import pytest
from conftest import JAPAN_QUESTION

from qa.conversation import follow_up_text, needs_previous
from qa.models import Turn

KIHARA = "Who did Kihara meet before the talks?"


@pytest.mark.parametrize(
    "question",
    [
        "where is it based?",
        "where is that command based?",
        "and where is it based?",
        "When was that?",
        "How many people live there?",
        "What about South Korea?",  # a continuation, whatever it names
        "Und wann?",
        "Wo ist er stationiert?",
        "А где она находится?",
        "Где он находится?",
        "Πού βρίσκεται αυτή;",
        "它的总部在哪里？",
        "¿Y cuántos soldados tiene?",
        "Who leads them in Japan?",  # names only what the previous turn named
        "Where did he meet Shin Won-sik?",  # a name after the pronoun is what is asked about
        "What was their number in 2010?",  # a number is no subject
    ],
)
def test_a_question_pointing_back_is_a_follow_up(question: str) -> None:
    assert needs_previous(question, JAPAN_QUESTION)


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "How tall is Mount Everest?",
        KIHARA,
        "When did the ministers meet?",
        "What is the name of the river that flows through Cologne?",  # a relative "that"
        "How many US troops are there in Japan?",  # an existential "there", and a complete question
        "Where did Tesla live for much of his life?",  # the pronoun stands for the subject it names
        "Кто такой Ллойд Остин?",
    ],
)
def test_a_complete_question_or_a_new_subject_is_read_alone(question: str) -> None:
    assert not needs_previous(question, JAPAN_QUESTION)


def test_follow_up_text_uses_only_the_latest_user_turn() -> None:
    history = [Turn("user", "old topic"), Turn("assistant", "old answer"), Turn("user", JAPAN_QUESTION)]
    assert follow_up_text("where is it based?", history) == f"{JAPAN_QUESTION} where is it based?"
    assert follow_up_text(KIHARA, history) is None
    assert follow_up_text("where is it based?", []) is None
    assert follow_up_text("where is it based?", [Turn("assistant", "hello")]) is None
