"""Small talk is recognised before any passage is shown, in any language, and never swallows a real question."""

from __future__ import annotations

import pytest
from conftest import JAPAN_QUESTION

from qa.answer import Answerer


@pytest.mark.parametrize(
    "question",
    [
        "hi",
        "hello, who are you?",
        "what is the weather tomorrow?",
        "Какая погода завтра?",
        "aaaa",
        "Danke schön!",
        "merci beaucoup",
        "谢谢你",
        # Hindi, Arabic, Thai: phrasings that are not themselves prototypes (each answered before they had some)
        "तुम्हारा नाम क्या है?",
        "आज मौसम कैसा है?",
        "كيف الطقس اليوم؟",
        "كم الوقت الآن؟",
        "วันนี้อากาศเป็นยังไง",
        "คุณชื่ออะไรครับ",
        # worded unlike any prototype, each answered with a passage before the prototypes of 2026-12-04 late
        "hey, what's up?",
        "what's the weather like today?",
        "пошути",
        "क्या तुम रोबोट हो?",
        "หวัดดี",
        # languages with no prototype (Polish, Dutch, Turkish, Korean): recognised through the encoders
        "dzień dobry",
        "dank je wel",
        "merhaba",
        "감사합니다",
    ],
)
def test_small_talk_is_flagged_with_its_reason_and_no_passage(seed_answerer: Answerer, question: str) -> None:
    answer = seed_answerer.ask(question)
    assert answer.no_answer
    assert answer.no_answer_reason == "small_talk"
    assert answer.answer == "" and answer.citations == []


@pytest.mark.parametrize(
    "question",
    [
        JAPAN_QUESTION,
        "Кто руководит американскими военными в Японии?",
        "How many US troops are stationed in Japan?",
        "When did the ministers meet?",
        "Когда министры встретились в Токио?",
        "What did Japan do with its arms export restrictions?",
        "Кто такой Ллойд Остин?",
        "जापान में अमेरिकी सैनिकों की कमान कौन संभालता है?",
        "من يقود القوات الأمريكية في اليابان؟",
        "ใครเป็นผู้บัญชาการทหารสหรัฐในญี่ปุ่น",
    ],
)
def test_questions_about_the_article_are_answered(seed_answerer: Answerer, question: str) -> None:
    answer = seed_answerer.ask(question)
    assert not answer.no_answer, question
    assert answer.no_answer_reason is None
    assert answer.answer and answer.citations
