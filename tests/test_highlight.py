"""Denial cues decide where the highlight looks past the closest sentence (qa.highlight)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, answerer_over

from qa.embedding import Embedder
from qa.highlight import KIND_MARGIN, RUN_CHARS, best_sentence, is_negated, line_run
from qa.models import Chunk, Span
from qa.store import Hit, IndexData


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
        ("अमेरिकी कमांडर के पास कोई कमान अधिकार नहीं।", True),  # before the danda, after a vowel sign
        ("यह नया शहर है।", False),  # न starts "new"
        ("لا يملك القائد أي سلطة.", True),
        ("ولم يكن القائد هناك.", True),  # "and" attached
        ("لاعب كرة القدم.", False),  # لا starts "player"
        ("ผู้บัญชาการไม่มีอำนาจบังคับบัญชา", True),
        ("ไม่ว่าจะเป็นอะไรก็ตาม", False),  # "whatever"
        ("นักเรียนไม่กี่คน", False),  # "a few"
    ],
)
def test_denials_are_recognized_by_word_not_by_character(sentence: str, denies: bool) -> None:
    assert is_negated(sentence) is denies


def _hit_for(index: IndexData, embedder: Embedder, question: str, needle: str) -> tuple[Hit, np.ndarray]:
    """The retrieved passage of the seed article that holds ``needle``, and the question's vector."""
    query = embedder.encode_queries([question])[0]
    hit = next(h for h in index.search_hits(query, 30) if needle in h.chunk.text)
    return hit, query


def test_best_sentence_is_the_sentence_that_answers(seed_index: IndexData, default_embedder: Embedder) -> None:
    question = "What did Japan do with its arms export restrictions in December?"
    hit, query = _hit_for(seed_index, default_embedder, question, "ослабила ограничения")
    span, score = best_sentence(hit, query)
    assert span.text == "В декабре Япония значительно ослабила ограничения на экспорт оружия."
    # the span points into the document: the chunk's text at its offsets is the sentence
    assert hit.chunk.text[span.start - hit.chunk.start : span.end - hit.chunk.start] == span.text
    assert score == pytest.approx(float(max(hit.sentence_vectors @ query)))


def test_best_sentence_reads_past_a_denial(seed_index: IndexData, default_embedder: Embedder) -> None:
    hit, query = _hit_for(seed_index, default_embedder, JAPAN_QUESTION, "Индо-Тихоокеанского командования")
    span, _ = best_sentence(hit, query)
    # never the denial alone: the answer follows it
    assert span.text in JAPAN_ANSWERS
    # a question that itself asks about a negative keeps the closest sentence, the denial
    denied, _ = best_sentence(hit, query, question_denies=True)
    assert denied.text != JAPAN_ANSWER and "не имеет командных полномочий" in denied.text


def test_best_sentence_of_a_passage_without_sentences_is_the_passage(
    seed_index: IndexData, default_embedder: Embedder
) -> None:
    # a passage the sentence splitter found no sentence in (a table row, a list of numbers) is highlighted whole
    query = default_embedder.encode_queries(["Министры обороны"])[0]
    hit = seed_index.search_hits(query, 1)[0]
    bare = replace(
        hit, sentences=[], sentence_vectors=hit.sentence_vectors[:0], context_vectors=hit.context_vectors[:0]
    )
    span, score = best_sentence(bare, query)
    assert (span.start, span.end, span.text) == (hit.chunk.start, hit.chunk.end, hit.chunk.text) and score == 0.0


def _two_sentences(first: float, second: float) -> tuple[Hit, np.ndarray]:
    """A passage of two sentences whose cosines with the returned query are ``first`` and ``second``."""
    text = "The ministers met in Tokyo with their guests. The meeting was held on 29 July 2024."
    cut = text.index(" The meeting") + 1
    spans = [Span(0, cut - 1, text[: cut - 1]), Span(cut, len(text), text[cut:])]
    query = np.eye(3, dtype=np.float32)[0]
    rows = np.array([[first, np.sqrt(1 - first**2), 0], [second, 0, np.sqrt(1 - second**2)]], np.float32)
    hit = Hit(0.8, Chunk("meeting.txt", 0, len(text), text), "Meeting", spans, rows, rows.copy())
    return hit, query


def test_a_when_question_is_answered_by_the_sentence_with_a_date_when_both_read_alike() -> None:
    hit, query = _two_sentences(0.80, 0.80 - KIND_MARGIN / 2)
    assert best_sentence(hit, query)[0].text == "The ministers met in Tokyo with their guests."
    span, score = best_sentence(hit, query, kind="when")
    assert span.text == "The meeting was held on 29 July 2024."
    assert score == pytest.approx(0.80)  # the passage ranks by its closest sentence, as without a kind
    # farther than the margin, or a question that asks for no number: the closest sentence stays
    far, query = _two_sentences(0.80, 0.80 - 2 * KIND_MARGIN)
    assert best_sentence(far, query, kind="when")[0].text == "The ministers met in Tokyo with their guests."
    assert best_sentence(hit, query, kind="who")[0].text == "The ministers met in Tokyo with their guests."


def test_a_question_naming_a_number_is_answered_by_the_sentence_holding_it_when_both_read_alike() -> None:
    hit, query = _two_sentences(0.80, 0.80 - KIND_MARGIN / 2)
    span, score = best_sentence(hit, query, asked=frozenset({"2024"}))  # "who met in July 2024?"
    assert span.text == "The meeting was held on 29 July 2024." and score == pytest.approx(0.80)
    assert best_sentence(hit, query, asked=frozenset({"1998"}))[0].text.startswith("The ministers")
    far, query = _two_sentences(0.80, 0.80 - 2 * KIND_MARGIN)
    assert best_sentence(far, query, asked=frozenset({"2024"}))[0].text.startswith("The ministers")


# The seed's trap written in Hindi and Arabic: a denial closest to the question, the answer after it.
TRAPS = {
    "hi": (
        "जापान के रक्षा मंत्री ने बुधवार को टोक्यो में अपने अमेरिकी समकक्ष से मुलाकात की। "
        "दोनों देशों ने सैन्य सहयोग बढ़ाने पर सहमति जताई। "
        "जापान में तैनात अमेरिकी सेना के कमांडर के पास कोई कमान अधिकार नहीं है। ",
        "हवाई में हिंद-प्रशांत कमान का प्रमुख इन सैनिकों की कमान संभालता है।",
    ),
    "ar": (
        "التقى وزير الدفاع الياباني بنظيره الأمريكي في طوكيو يوم الأربعاء. واتفق البلدان على تعزيز التعاون العسكري. "
        "ولا يملك قائد القوات الأمريكية في اليابان أي سلطة قيادة. ",
        "ويتولى رئيس قيادة المحيطين الهندي والهادئ في هاواي قيادة هذه القوات.",
    ),
}


@pytest.mark.parametrize("language", sorted(TRAPS))
def test_the_highlight_reads_past_a_denial_in_hindi_and_arabic(
    tmp_path: Path, default_embedder: Embedder, language: str
) -> None:
    before, answer = TRAPS[language]
    answerer = answerer_over(tmp_path, {"article.txt": before + answer}, default_embedder)
    reply = answerer.ask(JAPAN_QUESTION, 1)
    assert answer in reply.answer  # not the denial alone


def test_an_unsure_answer_line_grows_into_the_sentences_it_hesitates_between() -> None:
    """The learned choice's shares of a passage's five sentences: a sure pick is the line alone; an unsure
    one takes in the neighbour it favours next until the line holds RUN_SHARE, within RUN_CHARS characters."""
    short = [60] * 5
    sure = np.array([0.05, 0.8, 0.1, 0.03, 0.02])
    assert line_run(sure, short, 1) == (1, 1, pytest.approx(0.8))
    torn = np.array([0.05, 0.45, 0.1, 0.35, 0.05])  # the runner-up is not adjacent: the line reads through
    assert line_run(torn, short, 1) == (1, 3, pytest.approx(0.9))
    between = np.array([0.3, 0.45, 0.15, 0.05, 0.05])
    assert line_run(between, short, 1) == (0, 1, pytest.approx(0.75))
    assert line_run(between, [RUN_CHARS // 2 + 1] * 5, 1) == (1, 1, pytest.approx(0.45))  # two would be too long
    assert line_run(np.array([0.5, 0.5]), short, 0)[2] == pytest.approx(1.0)
