"""`qa eval`: retrieval and highlight quality on SQuAD/XQuAD-format files, measured through the real pipeline.

Every paragraph of the contexts file becomes its own document in a temporary index built by
:func:`qa.indexer.build_index`, and every question goes through :meth:`qa.answer.Answerer.ask`, exactly as
the service answers it. Questions and paragraphs are paired by question id, so English questions can be
scored against German paragraphs (XQuAD's ids match across languages).

Every question is also asked as if its own paragraph were absent: ``Answerer.ask(exclude_documents=...)``
leaves that document out of the search (the index itself is unchanged), so the best other passage answers.
Where that passage lacks the answer text the question is unanswerable, and the no-answer decision should
flag it: ``answered_unanswerable`` is how often it does not, ``no_answer_auc`` how well the decision's
confidence separates right top answers from these.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.answer import Answerer
from qa.config import Settings
from qa.errors import QAError
from qa.models import Answer, Turn

Progress = Callable[[str, int, int], None]  # (stage, done, total)
KEYS = (
    "questions",
    "recall@1",
    "recall@5",
    "mrr@10",
    "answer_in_highlight@1",
    "highlight_chars",
    "passage_chars",
    "confident_share",
    "confident_precision",
    "answered_right",
    "answered_unanswerable",
    "no_answer_auc",
    "index_seconds",
    "median_ms",
    "p95_ms",
    "decision",
    "decision_note",
)
NO_ANSWER_KEYS = ("answered_right", "answered_unanswerable", "no_answer_auc")
MARKER = ".qa-eval"  # in a workdir eval created: only such a folder's seeds/ and index/ are ever rewritten


class EvalDataError(QAError):
    """A questions or contexts file that is not usable SQuAD format."""


class WorkdirRefused(QAError):
    """A --workdir that qa eval did not create: its seeds/ and index/ may be real, so nothing is touched."""


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    doc_id: str  # the paragraph (document) of the contexts file that answers it
    answers: tuple[str, ...]  # answer texts from the contexts file
    article: int = 0  # the contexts file's article (XQuAD: one Wikipedia page, several paragraphs)


@dataclass(frozen=True)
class EvalSet:
    paragraphs: dict[str, str]  # document id -> paragraph text
    questions: list[Question]


@dataclass(frozen=True)
class Judged:
    """One asked question: the distinct documents cited, best first, and the top citation's highlight.

    The rest is the no-answer decision: on the question as asked (``flagged``, ``confidence``) and with the
    question's own document left out of the search (``left_out_*``; ``left_out_text`` is the top passage).
    """

    question: Question
    documents: list[str]
    top_highlight: str
    flagged: bool = False
    confidence: float = 0.0
    left_out_text: str = ""
    left_out_flagged: bool = True
    left_out_confidence: float = 0.0
    took_ms: float = 0.0  # the question's own ask (not the left-out one)
    passage_chars: int = 0  # length of the top citation's passage
    confident: bool = False  # answered with confidence "high"
    margin: float = 0.0  # the top passage's sentence margin (qa.confidence)
    signals: dict[str, float] = field(default_factory=dict)  # the no-answer model's, where it decided


def _squad(path: Path) -> list[tuple[int, dict]]:
    """Every paragraph of a SQuAD-format file with the number of its article."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        articles = data["data"]
        return [(number, p) for number, article in enumerate(articles) for p in article["paragraphs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvalDataError(f"{path} is not a readable SQuAD-format file ({type(exc).__name__}: {exc})") from exc


def load_eval_set(questions_path: Path, contexts_path: Path, limit: int | None = None) -> EvalSet:
    """Paragraphs of the contexts file and the questions of the questions file that pair with them by id."""
    paragraphs: dict[str, str] = {}
    answers_by_id: dict[str, tuple[str, tuple[str, ...], int]] = {}
    for row, (article, paragraph) in enumerate(_squad(contexts_path)):
        doc_id = f"p{row:04d}.txt"
        paragraphs[doc_id] = paragraph["context"]
        for qa in paragraph.get("qas", []):
            answers = tuple(a["text"] for a in qa.get("answers", []) if a.get("text"))
            answers_by_id[qa["id"]] = (doc_id, answers, article)
    questions = []
    for _article, paragraph in _squad(questions_path):
        for qa in paragraph.get("qas", []):
            if qa["id"] in answers_by_id and qa.get("question", "").strip():
                doc_id, answers, article = answers_by_id[qa["id"]]
                questions.append(Question(qa["id"], qa["question"].strip(), doc_id, answers, article))
    if not questions:
        raise EvalDataError(f"no question id of {questions_path} appears in {contexts_path}")
    return EvalSet(paragraphs, questions[:limit] if limit else questions)


def distinct_documents(answer: Answer) -> list[str]:
    """Cited documents in citation order, each once (several passages of one paragraph count once)."""
    return list(dict.fromkeys(c.document for c in answer.citations))


def metrics(judged: Sequence[Judged]) -> dict[str, float]:
    """recall@1, recall@5, MRR@10 over documents, and how often the top highlight holds the answer."""
    n = len(judged)
    if n == 0:
        return {"recall@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0, "answer_in_highlight@1": 0.0}
    ranks = [j.documents.index(j.question.doc_id) + 1 if j.question.doc_id in j.documents else 0 for j in judged]
    in_highlight = [
        rank == 1 and any(text in j.top_highlight for text in j.question.answers) for rank, j in zip(ranks, judged)
    ]
    return {
        "recall@1": sum(r == 1 for r in ranks) / n,
        "recall@5": sum(1 <= r <= 5 for r in ranks) / n,
        "mrr@10": sum(1 / r for r in ranks if 1 <= r <= 10) / n,
        "answer_in_highlight@1": sum(in_highlight) / n,
    }


def holds_answer(judged: Judged) -> bool:
    """The top document is the question's and its highlight holds an answer text."""
    return judged.documents[:1] == [judged.question.doc_id] and any(
        text in judged.top_highlight for text in judged.question.answers
    )


def confidence_metrics(judged: Sequence[Judged]) -> dict[str, float]:
    """Mean length of the top highlight and of its passage, in characters (a longer highlight holds the answer
    more often without helping anyone), the share of questions answered with high confidence, and how often
    those answers' highlights hold the answer."""
    cited = [j for j in judged if j.top_highlight]
    confident = [j for j in judged if j.confident]
    return {
        "highlight_chars": sum(len(j.top_highlight) for j in cited) / len(cited) if cited else 0.0,
        "passage_chars": sum(j.passage_chars for j in cited) / len(cited) if cited else 0.0,
        "confident_share": len(confident) / len(judged) if judged else 0.0,
        "confident_precision": sum(map(holds_answer, confident)) / len(confident) if confident else 0.0,
    }


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney statistic)."""
    if not len(positives) or not len(negatives):
        return float("nan")
    values = np.concatenate([np.asarray(positives, np.float64), np.asarray(negatives, np.float64)])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):  # average ranks of ties
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    n = len(positives)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * len(negatives)))


def no_answer_metrics(judged: Sequence[Judged]) -> dict[str, float]:
    """answered_right, answered_unanswerable and no_answer_auc (see the module docstring)."""
    n = len(judged)
    right = [j for j in judged if j.documents[:1] == [j.question.doc_id]]
    unanswerable = [j for j in judged if not any(text in j.left_out_text for text in j.question.answers)]
    return {
        "answered_right": sum(not j.flagged for j in right) / n if n else 0.0,
        "answered_unanswerable": (
            sum(not j.left_out_flagged for j in unanswerable) / len(unanswerable) if unanswerable else 0.0
        ),
        "no_answer_auc": auc([j.confidence for j in right], [j.left_out_confidence for j in unanswerable]),
    }


@contextmanager
def indexed(
    settings: Settings,
    eval_set: EvalSet,
    *,
    progress: Progress | None = None,
    workdir: Path | None = None,
    announce: Callable[[str], None] | None = None,
    milvus_uri: str | None = None,
) -> Iterator[tuple[Answerer, float]]:
    """The paragraphs indexed in a temporary folder (or ``workdir``), and an answerer over them with the seconds
    the build took. A kept ``workdir`` re-embeds nothing on a second run (the indexer is incremental); it must be
    new, empty, or made by an earlier run (``MARKER``), else WorkdirRefused. The
    paragraphs always go to a FAISS index of their own, never to the configured store (``announce`` is told where);
    with ``milvus_uri``, to a Milvus collection of their own there instead (a fresh name, dropped afterwards), so
    the same figures are measured on that store.
    """
    from qa.indexer import build_index

    if workdir is not None:
        claim_workdir(workdir)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        base = workdir or Path(tmp)
        seeds = base / "seeds"
        if seeds.exists():  # a kept workdir: drop paragraphs of an earlier, different contexts file
            for path in seeds.glob("*.txt"):
                if path.name not in eval_set.paragraphs:
                    path.unlink()
        seeds.mkdir(parents=True, exist_ok=True)
        for doc_id, text in eval_set.paragraphs.items():
            path = seeds / doc_id
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
        local = eval_settings(settings, seeds, base / "index", milvus_uri)
        if announce:
            where = (
                f"Milvus at {local.milvus_uri}, collection {local.milvus_collection} (dropped afterwards)"
                if milvus_uri
                else f"FAISS index in {local.index_dir}"
            )
            announce(f"qa eval indexes into its own {where} (the configured {settings.store} store is not touched)")
        try:
            started = time.perf_counter()
            report, data = build_index(
                local, progress=(lambda _id, done, total: progress("indexing", done, total)) if progress else None
            )
            index_seconds = time.perf_counter() - started
            if data is None or report.failed:
                failed = ", ".join(f"{f.path}: {f.reason}" for f in report.failed)
                raise EvalDataError(f"the paragraphs could not all be indexed ({failed or 'empty index'})")
            yield Answerer.from_settings(local, data), index_seconds
        finally:
            if milvus_uri:
                from qa.stores.milvus import drop_collections

                drop_collections(local.milvus_uri, local.milvus_collection)


def judge(answerer: Answerer, question: Question, turns: Sequence[Turn] = (), top_k: int = 10) -> Judged:
    """Ask ``question`` (after ``turns``), and once more with its own paragraph left out of the search."""
    # more passages than documents wanted: several passages of one paragraph count once
    started = time.perf_counter()
    reply = answerer.reply(question.text, top_k * 3, turns)
    took_ms = (time.perf_counter() - started) * 1000
    answer = reply.answer
    top = answer.citations[0].highlight.text if answer.citations else ""
    # the same question with its paragraph left out of the search (its vectors are reused)
    left_out = answerer.reply(question.text, top_k * 3, turns, exclude_documents={question.doc_id})
    other = left_out.answer.citations[0].text if left_out.answer.citations else ""
    return Judged(
        question,
        distinct_documents(answer)[:top_k],
        top,
        answer.no_answer,
        reply.confidence,
        other,
        left_out.answer.no_answer,
        left_out.confidence,
        took_ms,
        len(answer.citations[0].text) if answer.citations else 0,
        answer.confidence == "high",
        reply.margin,
        reply.signals,
    )


def evaluate(
    settings: Settings,
    eval_set: EvalSet,
    *,
    top_k: int = 10,
    progress: Progress | None = None,
    history: str | None = None,
    workdir: Path | None = None,
    announce: Callable[[str], None] | None = None,
    milvus_uri: str | None = None,
) -> dict[str, float | int | str]:
    """Index the paragraphs (``indexed``), ask every question, and return the report (``KEYS``).

    ``history``, when given, is sent as an earlier user turn with every question: the questions do not
    depend on it, so any drop in recall is what an unrelated chat history costs standalone questions.
    ``decision`` says which no-answer decision ran ("model" or "cut"), ``decision_note`` what and why.
    """
    with indexed(settings, eval_set, progress=progress, workdir=workdir, announce=announce, milvus_uri=milvus_uri) as (
        answerer,
        index_seconds,
    ):
        turns = [Turn("user", history)] if history else []
        judged = []
        total = len(eval_set.questions)
        for done, question in enumerate(eval_set.questions, 1):
            judged.append(judge(answerer, question, turns, top_k))
            if progress:
                progress("asking", done, total)
    result: dict[str, float | int | str] = {"questions": total}
    result.update({key: round(value, 4) for key, value in metrics(judged).items()})
    result.update({key: round(value, 4) for key, value in no_answer_metrics(judged).items()})
    result.update({key: round(value, 4) for key, value in confidence_metrics(judged).items()})
    result["index_seconds"] = round(index_seconds, 2)
    times = [j.took_ms for j in judged]
    result["median_ms"] = round(float(np.median(times)), 2)
    result["p95_ms"] = round(float(np.percentile(times, 95)), 2)
    result["decision"], result["decision_note"] = answerer.rule.kind, answerer.rule.why
    return {key: result[key] for key in KEYS}


def claim_workdir(workdir: Path) -> None:
    """Mark ``workdir`` as eval's own, or refuse it: a run replaces every ``*.txt`` of its seeds/ with the
    paragraphs and builds into its index/, so a folder of real documents (``--workdir .``) must never be one."""
    if (workdir / MARKER).is_file():
        return
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirRefused(f"--workdir {workdir} is not a folder")
    if workdir.is_dir() and any(workdir.iterdir()):
        raise WorkdirRefused(
            f"--workdir {workdir} is not empty and qa eval did not create it (it has no {MARKER} marker): "
            "a run would replace the *.txt files in its seeds/ and build into its index/. "
            "Name a new or empty folder; nothing was changed"
        )
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / MARKER).write_text("made by qa eval: seeds/ and index/ here are rewritten by every run\n")
    except OSError as exc:
        raise WorkdirRefused(f"--workdir {workdir} cannot be used: {exc.strerror or exc}") from exc


def eval_settings(settings: Settings, seeds_dir: Path, index_dir: Path, milvus_uri: str | None = None) -> Settings:
    """The configured pipeline, with a store of eval's own: eval never reads or writes the configured store
    (with ``QA_STORE=milvus`` it once deleted every real document as "removed"). A FAISS index in
    ``index_dir``, or with ``milvus_uri`` a collection named afresh, never the configured one."""
    update: dict[str, object] = {"seeds_dir": seeds_dir, "index_dir": index_dir, "store": "faiss"}
    if milvus_uri:
        collection = settings.milvus_collection
        while collection == settings.milvus_collection:
            collection = f"qa_eval_{uuid.uuid4().hex[:12]}"
        update.update(store="milvus", milvus_uri=milvus_uri, milvus_collection=collection)
    return settings.model_copy(update=update)
