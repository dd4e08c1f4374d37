"""`qa eval`: pairing questions to paragraphs by id, the metrics on hand-computed cases, and the command's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT
from typer.testing import CliRunner

from qa import store
from qa.cli import app
from qa.eval import KEYS, Judged, Question, auc, load_eval_set, metrics, no_answer_metrics
from qa.eval_conversation import CONDITIONS, OFF_CORPUS, previous_turns

DATA = ROOT / "tests" / "data"
QUESTIONS, CONTEXTS = DATA / "tiny.en.json", DATA / "tiny.de.json"


def test_questions_pair_with_paragraphs_of_the_other_file_by_id() -> None:
    eval_set = load_eval_set(QUESTIONS, CONTEXTS)
    assert list(eval_set.paragraphs) == ["p0000.txt", "p0001.txt", "p0002.txt"]
    assert eval_set.paragraphs["p0002.txt"].startswith("Kaffee stammt")
    # English question text, German answer text and paragraph; the id missing from the contexts is dropped
    assert [(q.id, q.doc_id, q.answers) for q in eval_set.questions] == [
        ("rhein-1", "p0000.txt", ("1233 Kilometer",)),
        ("rhein-2", "p0000.txt", ("Nordsee",)),
        ("berg-1", "p0001.txt", ("2962 Metern",)),
        ("kaffee-1", "p0002.txt", ("Brasilien",)),
    ]
    assert eval_set.questions[0].text == "How long is the Rhine?"
    assert len(load_eval_set(QUESTIONS, CONTEXTS, limit=2).questions) == 2


def _q(doc_id: str, answer: str) -> Question:
    return Question(id=doc_id + answer, text="?", doc_id=doc_id, answers=(answer,))


def test_metrics_match_hand_computed_values() -> None:
    judged = [
        # found first, answer inside the highlight
        Judged(_q("a", "1233"), ["a", "b"], "Er ist 1233 Kilometer lang."),
        # found third; the wrong top document happens to contain the answer text: not counted
        Judged(_q("a", "Nordsee"), ["b", "c", "a"], "Nordsee"),
        # found first, but the highlight is another sentence
        Judged(_q("b", "2962"), ["b"], "Sie liegt im Wettersteingebirge."),
        # found sixth: outside recall@5, still in MRR@10
        Judged(_q("c", "Brasilien"), ["a", "b", "d", "e", "f", "c"], ""),
        # not found at all
        Judged(_q("c", "Brasilien"), [], ""),
    ]
    assert metrics(judged) == {
        "recall@1": 2 / 5,
        "recall@5": 3 / 5,
        "mrr@10": (1 + 1 / 3 + 1 + 1 / 6) / 5,
        "answer_in_highlight@1": 1 / 5,
    }


def test_qa_eval_json_prints_exactly_the_keys() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "--questions", str(QUESTIONS), "--contexts", str(CONTEXTS), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert list(result) == list(KEYS)
    assert result["questions"] == 4
    # four easy English questions over three German paragraphs: the default pipeline finds them all
    assert result["recall@1"] == 1.0 and result["mrr@10"] == 1.0
    assert result["median_ms"] > 0 and result["p95_ms"] >= result["median_ms"] and result["index_seconds"] > 0
    assert result["decision"] == "model" and "answerability.json" in result["decision_note"]


def test_qa_eval_says_which_no_answer_decision_ran() -> None:
    """With the latent terms off the model's signals are missing: the figures are the calibrated cut's, and say so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa",
            "eval",
            "--questions",
            str(QUESTIONS),
            "--contexts",
            str(CONTEXTS),
            "--limit",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env | {"PYTHONPATH": str(ROOT), "QA_SPARSE_WEIGHT": "0"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    line = next(line.strip() for line in run.stdout.splitlines() if line.strip().startswith("decision"))
    assert line.startswith("decision  cut: the cut calibrated for this embedder, 0.55") and "QA_SPARSE_WEIGHT=0" in line
    assert "decision_note" not in run.stdout


def test_qa_eval_names_a_bad_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": 5}')
    result = CliRunner().invoke(app, ["eval", "--questions", str(bad), "--contexts", str(CONTEXTS)])
    assert result.exit_code == 1
    assert "bad.json" in result.output and "SQuAD" in result.output


def test_no_answer_metrics_match_hand_computed_values() -> None:
    judged = [
        # right top answer, answered (confidence 0.9); left out, the other passage lacks the answer and is flagged
        Judged(_q("a", "1233"), ["a"], "", False, 0.9, "Der Rhein fließt in die Nordsee.", True, 0.2),
        # right top answer but flagged (0.3); left out, the other passage is still answered (0.6)
        Judged(_q("b", "2962"), ["b"], "", True, 0.3, "Die Zugspitze ist ein Berg.", False, 0.6),
        # wrong top document: not a right answer; left out, the other passage holds the answer: not unanswerable
        Judged(_q("c", "Brasilien"), ["a"], "", False, 0.8, "Kaffee kommt aus Brasilien.", False, 0.7),
    ]
    result = no_answer_metrics(judged)
    assert result["answered_right"] == 1 / 3
    assert result["answered_unanswerable"] == 1 / 2
    # right answers score 0.9 and 0.3, unanswerable ones 0.2 and 0.6: three of four pairs ordered right
    assert result["no_answer_auc"] == 3 / 4


def test_auc_counts_ties_as_half() -> None:
    assert auc([1.0, 2.0], [0.0]) == 1.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([0.0], [1.0, 2.0]) == 0.0


def test_qa_eval_refuses_a_workdir_it_did_not_create_and_touches_nothing(tmp_path) -> None:
    """`--workdir .` in a service's folder once deleted its documents and built into its index."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "minutes.txt").write_text("The real minutes of the harbour board.", encoding="utf-8")
    (tmp_path / "index").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = ["eval", "--questions", str(QUESTIONS), "--contexts", str(CONTEXTS), "--workdir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    printed = " ".join(result.output.split())  # rich wraps long lines
    assert "is not empty and qa eval did not create it" in printed and "nothing was changed" in printed
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "seeds" / "minutes.txt").read_text(encoding="utf-8") == "The real minutes of the harbour board."


def test_qa_eval_reuses_a_workdir_it_created(tmp_path) -> None:
    workdir = tmp_path / "eval"
    args = ["eval", "--questions", str(QUESTIONS), "--contexts", str(CONTEXTS), "--workdir", str(workdir), "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in (workdir / "seeds").iterdir()) == ["p0000.txt", "p0001.txt", "p0002.txt"]
    built = (workdir / "index" / store.CURRENT).read_text()
    again = CliRunner().invoke(app, args)  # its own folder (the marker it wrote): accepted, the index reused
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.splitlines()[-1])["recall@1"] == 1.0
    assert (workdir / "index" / store.CURRENT).read_text() == built  # nothing changed, no generation written


def test_conversation_partners_are_same_article_other_article_and_off_corpus() -> None:
    questions = [
        Question(f"q{i}", f"question {i}?", "p.txt", ("x",), article) for i, article in enumerate([0, 0, 0, 1])
    ]
    turns = previous_turns(questions)
    assert turns["alone"] == [None] * 4
    # the question before it in its article; an article's first takes the next; a lone article has no partner
    assert turns["same_article"] == ["question 1?", "question 0?", "question 1?", None]
    assert [t and int(t.split()[1][0]) for t in turns["other_article"]] == [3, 3, 3, 1]
    assert turns["after_off_corpus"] == list(OFF_CORPUS[:4])


def test_qa_eval_conversation_reports_each_chat_and_the_follow_ups() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"PYTHONPATH": str(ROOT)}
    command = ["eval", "--questions", str(QUESTIONS), "--contexts", str(CONTEXTS), "--json", "--conversation"]
    run = subprocess.run(
        [sys.executable, "-m", "qa", *command, "--follow-ups", str(DATA / "tiny.follow_ups.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert list(result) == ["questions", *CONDITIONS, "off_corpus", "follow_ups"]
    # complete questions are read alone whatever was asked before them: the same figures in every chat
    for condition in CONDITIONS:
        assert result[condition]["read_after"] == 0.0
        assert result[condition]["recall@1"] == result["alone"]["recall@1"] == 1.0
    assert result["off_corpus"]["questions"] == len(OFF_CORPUS)
    assert result["off_corpus"]["flagged_after_on_topic"] == result["off_corpus"]["flagged_alone"]
    # "Into which sea does it flow?" after "How long is the Rhine?" is read after it and found; the follow-up
    # whose question id is not in the contexts is left out
    follow_ups = result["follow_ups"]
    assert follow_ups["questions"] == 1
    assert follow_ups["in_conversation"]["read_after"] == 1.0 and follow_ups["in_conversation"]["recall@1"] == 1.0
