"""`qa eval --conversation`: the development questions asked inside a chat, against the same questions asked alone.

A chat sends the earlier turns with every question, and the answerer reads a question after the previous user
turn when it leans on it (qa.conversation). Whether that helps real follow-ups without hurting questions that
stand alone is measured here, on the same index and questions as ``qa eval``:

- every question asked alone, after another question about the same article (the common case in a chat: the
  question before it in the file, or after it for an article's first), after one about another article, and
  after an off-corpus question; each with recall@1, answer_in_highlight@1 and the no-answer figures of ``qa eval``
  (its paragraph left out for ``answered_unanswerable``), and ``read_after``, the share read after the turn;
- off-corpus questions ("how tall is Mount Everest?") asked alone and after each article's first question: the
  share flagged "not found" should not fall;
- real follow-ups (``qa/data/follow_ups.json``: pronouns and ellipsis in several languages, each scored with the
  paragraph and answers of the XQuAD question it rewrites) asked alone and after the question they follow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from qa.answer import Answerer
from qa.config import Settings
from qa.conversation import needs_previous
from qa.eval import EvalDataError, EvalSet, Judged, Progress, Question, indexed, judge, metrics, no_answer_metrics
from qa.models import Turn

FOLLOW_UPS = Path(__file__).with_name("data") / "follow_ups.json"
CONDITIONS = ("alone", "same_article", "other_article", "after_off_corpus")
# Questions no XQuAD paragraph answers, in the languages of the seed's and the development set's users
OFF_CORPUS = (
    "What is the capital of France?",
    "How tall is Mount Everest?",
    "Who painted the Mona Lisa?",
    "How do I bake sourdough bread?",
    "Who won the football World Cup final in 2018?",
    "Wie viele Einwohner hat Lissabon?",
    "Какая самая длинная река в Африке?",
    "Ποιος έγραψε την Οδύσσεια;",
    "珠穆朗玛峰有多高？",
    "¿Quién escribió Don Quijote?",
)
ON_TOPIC_ASKED = 48  # on-topic questions each off-corpus question is asked after (one per article)


def previous_turns(questions: Sequence[Question]) -> dict[str, list[str | None]]:
    """For each condition, the user turn asked before each question (None: asked alone)."""
    n = len(questions)
    by_article: dict[int, list[int]] = {}
    for i, question in enumerate(questions):
        by_article.setdefault(question.article, []).append(i)
    same: list[str | None] = []
    other: list[str | None] = []
    for i, question in enumerate(questions):
        siblings = by_article[question.article]
        at = siblings.index(i)
        partner = siblings[at - 1] if at else (siblings[1] if len(siblings) > 1 else None)
        same.append(questions[partner].text if partner is not None else None)
        away = next(
            (j % n for j in range(i + n // 2, i + n // 2 + n) if questions[j % n].article != question.article), None
        )
        other.append(questions[away].text if away is not None else None)
    return {
        "alone": [None] * n,
        "same_article": same,
        "other_article": other,
        "after_off_corpus": [OFF_CORPUS[i % len(OFF_CORPUS)] for i in range(n)],
    }


def load_follow_ups(path: Path, questions: Sequence[Question]) -> list[tuple[str, Question]]:
    """(previous question's text, follow-up) pairs whose XQuAD questions are both among ``questions``."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["follow_ups"]
        by_id = {q.id: q for q in questions}
        pairs = []
        for row in rows:
            target, after = by_id.get(row["id"]), by_id.get(row["after"])
            if target is not None and after is not None:
                follow_up = Question(f"{row['id']}/follow-up", row["question"], target.doc_id, target.answers)
                pairs.append((after.text, follow_up))
        return pairs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvalDataError(f"{path} is not a readable follow-up file ({type(exc).__name__}: {exc})") from exc


def _report(judged: Sequence[Judged], previous: Sequence[str | None]) -> dict[str, float]:
    figures = metrics(judged) | no_answer_metrics(judged)
    read_after = [p is not None and needs_previous(j.question.text, p) for j, p in zip(judged, previous)]
    figures["read_after"] = sum(read_after) / len(judged) if judged else 0.0
    return {key: round(value, 4) for key, value in figures.items()}


def _turns(previous: str | None) -> list[Turn]:
    return [] if previous is None else [Turn("user", previous)]


def ask_in_conversations(
    answerer: Answerer,
    eval_set: EvalSet,
    follow_ups: Sequence[tuple[str, Question]],
    *,
    top_k: int = 10,
    progress: Progress | None = None,
) -> dict[str, object]:
    """The report (module docstring) from an answerer over the eval set's paragraphs."""
    questions = eval_set.questions
    previous = previous_turns(questions)
    judged: dict[str, list[Judged]] = {condition: [] for condition in CONDITIONS}
    for done, question in enumerate(questions):
        for condition in CONDITIONS:  # one question after another: its readings' vectors are reused
            judged[condition].append(judge(answerer, question, _turns(previous[condition][done]), top_k))
        if progress:
            progress("conversations", done + 1, len(questions))
    report: dict[str, object] = {"questions": len(questions)}
    report.update({condition: _report(judged[condition], previous[condition]) for condition in CONDITIONS})
    on_topic = list({q.article: q.text for q in reversed(questions)}.values())[:ON_TOPIC_ASKED]  # each article's first
    flagged_alone = [answerer.ask(question, top_k).no_answer for question in OFF_CORPUS]
    flagged_after = [answerer.ask(q, top_k, _turns(before)).no_answer for q in OFF_CORPUS for before in on_topic]
    report["off_corpus"] = {
        "questions": len(OFF_CORPUS),
        "flagged_alone": round(sum(flagged_alone) / len(flagged_alone), 4),
        "flagged_after_on_topic": round(sum(flagged_after) / len(flagged_after), 4) if flagged_after else 0.0,
    }
    report["follow_ups"] = {"questions": len(follow_ups)}
    if follow_ups:  # none where the eval set is not XQuAD's
        follow_alone = [judge(answerer, q, [], top_k) for _, q in follow_ups]
        follow_after = [judge(answerer, q, _turns(before), top_k) for before, q in follow_ups]
        report["follow_ups"] |= {
            "alone": _report(follow_alone, [None] * len(follow_ups)),
            "in_conversation": _report(follow_after, [before for before, _ in follow_ups]),
        }
    return report


def evaluate_conversation(
    settings: Settings,
    eval_set: EvalSet,
    *,
    top_k: int = 10,
    progress: Progress | None = None,
    workdir: Path | None = None,
    announce: Callable[[str], None] | None = None,
    follow_ups: Path = FOLLOW_UPS,
    pool: Sequence[Question] | None = None,
    milvus_uri: str | None = None,
) -> dict[str, object]:
    """Index the paragraphs as ``qa eval`` does and ask every question alone and in the conversations above.

    ``pool``: the questions the follow-ups are paired from (all of the file's, where ``--limit`` cut the set)."""
    pairs = load_follow_ups(follow_ups, eval_set.questions if pool is None else pool)
    with indexed(settings, eval_set, progress=progress, workdir=workdir, announce=announce, milvus_uri=milvus_uri) as (
        answerer,
        _seconds,
    ):
        return ask_in_conversations(answerer, eval_set, pairs, top_k=top_k, progress=progress)
