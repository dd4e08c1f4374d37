"""The `qa` command as a user runs it: real subprocesses, real model, the repository's seed corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import JAPAN_ANSWERS, JAPAN_QUESTION, SEEDS

# Square brackets are Rich markup: printed as markup, the first line crashes (a closing tag that closes nothing)
# and the second loses "[citation needed]". File names can hold them too.
BRACKETS_FILE = "[red] notes.txt"  # as markup: "notes.txt" in red
BRACKETS_TEXT = "Files live in [/usr/share].\n\nParis [citation needed] is big.\n"


def qa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("cli")
    shutil.copytree(SEEDS, base / "seeds")
    (base / "seeds" / "broken.pdf").write_bytes(b"%PDF-1.4 junk")
    (base / "seeds" / BRACKETS_FILE).write_text(BRACKETS_TEXT, encoding="utf-8")
    return {**os.environ, "QA_SEEDS_DIR": str(base / "seeds"), "QA_INDEX_DIR": str(base / "index"), "COLUMNS": "200"}


def test_ask_without_an_index_says_how_to_build_it(env: dict[str, str]) -> None:
    result = qa("ask", JAPAN_QUESTION, env=env)
    assert result.returncode == 1
    assert "qa index" in result.stderr and "Traceback" not in result.stderr


def test_index_then_ask(env: dict[str, str]) -> None:
    result = qa("index", env=env)
    assert result.returncode == 0, result.stderr
    assert "added    us-japan-security-talks.txt" in result.stderr
    assert f"added    {BRACKETS_FILE}" in result.stderr
    assert "failed   broken.pdf: corrupt PDF" in result.stderr
    assert "2 added, 0 updated, 0 removed, 0 unchanged, 1 failed" in result.stderr

    again = qa("index", env=env)
    assert "0 added, 0 updated, 0 removed, 2 unchanged" in again.stderr

    answer = qa("ask", JAPAN_QUESTION, "--top-k", "2", env=env)
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert lines[0] in JAPAN_ANSWERS
    assert any(line.startswith("[1] ") and "us-japan-security-talks.txt" in line for line in lines)
    assert not any(line.startswith("[3] ") for line in lines)

    body = json.loads(qa("ask", "кто командует войсками США в Японии?", "--json", "-k", "1", env=env).stdout)
    assert set(body) == {"question", "answer", "no_answer", "no_answer_reason", "citations", "took_ms", "confidence"}
    assert body["answer"] in JAPAN_ANSWERS and len(body["citations"]) == 1


def test_bad_question_is_refused_by_name(env: dict[str, str]) -> None:
    result = qa("ask", "   ", env=env)
    assert result.returncode == 1 and "question" in result.stderr


def test_document_text_prints_literally_never_as_markup(env: dict[str, str]) -> None:
    assert qa("index", env=env).returncode == 0  # incremental: nothing to do after test_index_then_ask
    result = qa("ask", "Where do files live?", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    assert "Files live in [/usr/share]." in result.stdout
    assert "Paris [citation needed] is big." in result.stdout
    assert f"({BRACKETS_FILE}:" in result.stdout


def test_ask_searches_only_the_collections_named(env: dict[str, str]) -> None:
    assert qa("index", env=env).returncode == 0  # incremental: nothing to do after test_index_then_ask
    everywhere = json.loads(qa("ask", "Where do files live?", "--json", env=env).stdout)
    assert {c["collection"] for c in everywhere["citations"]} == {"default"}
    elsewhere = json.loads(
        qa("ask", "Where do files live?", "--json", "--collection", "hr", "-c", "eng", env=env).stdout
    )
    assert elsewhere["citations"] == [] and elsewhere["no_answer"]
    bad = qa("ask", "Where do files live?", "--collection", "HR", env=env)
    assert bad.returncode == 1 and "invalid collection" in bad.stderr and "lowercase letters" in bad.stderr
