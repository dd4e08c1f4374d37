"""The HTTP API over a real socket: answers, citation invariants, documents, health, and every bad input."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Sequence

import httpx
import numpy as np
import pytest
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, LiveServer
from rawhttp import raw_request

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder, engine_of
from qa.errors import IndexCorrupt
from qa.parts import QueryParts, query_parts
from qa.store import IndexData


def _document_text(client: httpx.Client, doc_id: str) -> str:
    response = client.get(f"/documents/{doc_id}")
    assert response.status_code == 200
    return response.json()["text"]


def test_japan_question_cites_the_indo_pacific_command(client: httpx.Client) -> None:
    body = client.post("/ask", json={"question": JAPAN_QUESTION}).json()
    assert body["answer"] in JAPAN_ANSWERS
    top = body["citations"][0]
    assert top["rank"] == 1
    assert JAPAN_ANSWER in top["text"]
    assert top["highlight"]["text"] in JAPAN_ANSWERS
    assert body["no_answer"] is False
    assert body["took_ms"] > 0


@pytest.mark.parametrize(
    "question",
    [JAPAN_QUESTION, "кто командует американскими войсками в Японии?", "What did Japan decide about arms exports?"],
)
def test_every_citation_is_exact(client: httpx.Client, question: str) -> None:
    body = client.post("/ask", json={"question": question, "top_k": 6}).json()
    assert 1 <= len(body["citations"]) <= 6
    texts: dict[str, str] = {}
    for rank, citation in enumerate(body["citations"], 1):
        text = texts.setdefault(citation["document"], _document_text(client, citation["document"]))
        assert citation["rank"] == rank
        assert citation["text"] == text[citation["start"] : citation["end"]]
        highlight = citation["highlight"]
        assert citation["start"] <= highlight["start"] < highlight["end"] <= citation["end"]
        assert highlight["text"] == text[highlight["start"] : highlight["end"]]
    scores = [c["score"] for c in body["citations"]]
    assert scores == sorted(scores, reverse=True)
    assert body["answer"] == body["citations"][0]["highlight"]["text"]


def test_russian_question_finds_the_arms_export_passage(client: httpx.Client) -> None:
    body = client.post("/ask", json={"question": "Что Япония сделала с ограничениями на экспорт оружия?"}).json()
    assert "ослабила ограничения на экспорт оружия" in body["answer"]


def test_document_endpoint_and_path_tricks(client: httpx.Client) -> None:
    body = client.get("/documents/us-japan-security-talks.txt").json()
    assert body["id"] == "us-japan-security-talks.txt" and JAPAN_ANSWER in body["text"] and body["title"]
    assert body["pages"] == []  # a .txt has no pages
    for bad in [
        "nope.txt",
        "../README.md",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "%2E%2E/README.md",
        "/etc/passwd",
        "../../../../etc/passwd",
    ]:
        # sent byte for byte: httpx would resolve "../" itself, and the trick would never reach the endpoint
        status, error = raw_request(str(client.base_url), "GET", f"/documents/{bad}")
        assert status == 404, bad
        assert "no document" in error["detail"], bad


def test_healthz(client: httpx.Client, seed_index: IndexData, default_embedder: Embedder) -> None:
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "documents": 1,
        "chunks": seed_index.num_chunks,
        "embedder": default_embedder.name,
        "engine": engine_of(default_embedder),  # the torch engine where torch imports: the default install
        "engine_fallback": None,
        "indexing": None,
    }
    assert body["chunks"] >= 3
    assert body["engine"].startswith("torch-")  # torch is in the default install (issue 25)


def test_citations_carry_the_language_their_passage_was_indexed_in(client: httpx.Client) -> None:
    """The web page tags each passage with it (lang=…), so a screen reader reads the Russian seed in Russian."""
    cited = client.post("/ask", json={"question": JAPAN_QUESTION}).json()["citations"]
    assert cited and {citation["language"] for citation in cited} == {"ru"}  # asked in English, cited in Russian
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CitationOut"]["properties"]
    assert {"type": "null"} in schema["language"]["anyOf"]  # null where the language was not identified


def test_citations_carry_page_and_answers_their_no_answer_reason(client: httpx.Client) -> None:
    answered = client.post("/ask", json={"question": JAPAN_QUESTION}).json()
    assert answered["no_answer_reason"] is None
    assert all(citation["page"] is None for citation in answered["citations"])  # the seed is a .txt
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["AskResponse"]["properties"]["no_answer_reason"]["anyOf"][0]["enum"] == ["small_talk", "not_found"]
    assert schema["AskResponse"]["properties"]["confidence"]["anyOf"][0]["enum"] == ["high", "low"]
    # an answer says how sure it is; "not found" is no answer to be sure of
    assert answered["confidence"] in ("high", "low")
    missing = client.post("/ask", json={"question": "Who won the football World Cup final in 2018?"}).json()
    assert missing["no_answer_reason"] == "not_found" and missing["confidence"] is None
    assert "page" in schema["CitationOut"]["properties"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   \n "}, "question"),
        ({"question": "x" * 2001}, "question"),
        ({}, "question"),
        ({"question": 5}, "question"),
        ({"question": "ok?", "top_k": 0}, "top_k"),
        ({"question": "ok?", "top_k": 21}, "top_k"),
        ({"question": "ok?", "top_k": "many"}, "top_k"),
        ({"question": "ok?", "history": [{"role": "system", "content": "x"}]}, "history.0.role"),
    ],
)
def test_bad_input_is_422_naming_the_field(client: httpx.Client, payload: dict, field: str) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert field in body["detail"]
    assert any(item["field"] == field for item in body["errors"])


@pytest.mark.parametrize("body", [b'{"question": "who', b"\xff\xfe\xe4\x80\x90\xff\x16"], ids=["truncated", "not-utf8"])
def test_malformed_json_is_422(client: httpx.Client, body: bytes) -> None:
    response = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "malformed JSON" in response.json()["detail"]


def test_no_index_is_503_saying_how_to_build(tmp_path, e5) -> None:
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    with LiveServer(create_app(settings, answerer=Answerer(e5, None))) as server:
        response = httpx.post(f"{server.url}/ask", json={"question": JAPAN_QUESTION})
        health = httpx.get(f"{server.url}/healthz").json()
    assert response.status_code == 503
    assert "qa index" in response.json()["detail"]
    assert health["status"] == "empty" and health["documents"] == 0


class RecordingQueries:
    """The real embedder under a name of its own (so nothing it read before is remembered), recording the
    questions it is asked to read."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.dim = inner, inner.dim
        self.name = f"{inner.name}#recorded"  # an engine tag: calibrations still apply, caches keyed by name don't
        self.read: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.read.extend(texts)
        return self.inner.encode_queries(texts)

    def encode_query_parts(self, texts: Sequence[str]) -> QueryParts:
        self.read.extend(texts)
        return query_parts(self.inner, texts)

    def encode_sparse(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_sparse(texts)  # type: ignore[attr-defined]

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_passages(texts)


def test_the_first_question_after_start_reads_only_itself(
    seed_settings: Settings, seed_index: IndexData, default_embedder: Embedder
) -> None:
    """What a question needs once per process (small talk's prototypes, USE's model, the language identifier) is
    loaded while the service starts, not while the first person waits."""
    recording = RecordingQueries(default_embedder)
    with LiveServer(create_app(seed_settings, answerer=Answerer(recording, seed_index))) as server:
        assert "hi" in recording.read  # a small-talk prototype, read at start
        recording.read.clear()
        body = httpx.post(f"{server.url}/ask", json={"question": JAPAN_QUESTION}).json()
    assert body["answer"] in JAPAN_ANSWERS
    assert recording.read == [JAPAN_QUESTION]


def test_openapi_docs_are_served(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/healthz", "/documents/{doc_id}"} <= set(schema["paths"])


def test_a_damaged_index_raises_a_fresh_error_each_time(tiny_settings: Settings, e5) -> None:
    """Re-raising one stored exception lengthened its traceback on every request, and kept every frame alive."""
    answerer = Answerer(e5, None, problem=IndexCorrupt("index file x is damaged; run `qa index --rebuild`"))
    raised = []
    for _ in range(3):
        with pytest.raises(IndexCorrupt, match="qa index --rebuild") as caught:
            answerer.ask("who is the harbour master?")
        raised.append(caught.value)
    assert raised[0] is not raised[1] is not raised[2]
    depths = [len(traceback.extract_tb(error.__traceback__)) for error in raised]
    assert depths[0] == depths[1] == depths[2]


class BlockingIndex:
    """A store whose reads wait until released, like Milvus behind a slow network (up to 30 s)."""

    def __init__(self, inner: IndexData) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def _wait(self) -> None:
        self.entered.set()
        assert self.release.wait(60)

    @property
    def num_documents(self) -> int:
        self._wait()
        return self.inner.num_documents

    @property
    def num_chunks(self) -> int:
        return self.inner.num_chunks

    def document(self, doc_id: str):
        self._wait()
        return self.inner.document(doc_id)

    def search_hits(self, query, k, language=None, collections=None):
        return self.inner.search_hits(query, k, language, collections)

    def search_rows(self, query, k, language=None, collections=None):
        return self.inner.search_rows(query, k, language, collections)

    def search_groups(self, query, wanted, collections=None):
        return self.inner.search_groups(query, wanted, collections)

    def hits(self, rows):
        return self.inner.hits(rows)

    def language_stats(self, collections=None):
        return self.inner.language_stats(collections)


@pytest.mark.parametrize("path", ["/healthz", "/documents/us-japan-security-talks.txt"])
def test_a_slow_store_never_blocks_the_event_loop(
    seed_settings: Settings, seed_index: IndexData, e5, path: str
) -> None:
    index = BlockingIndex(seed_index)
    with LiveServer(create_app(seed_settings, answerer=Answerer(e5, index))) as server:
        stuck = threading.Thread(target=lambda: httpx.get(f"{server.url}{path}", timeout=90), daemon=True)
        stuck.start()
        try:
            assert index.entered.wait(60)  # a request is inside the store call
            # were it on the event loop, nothing else could be answered until the store call returned
            assert httpx.get(f"{server.url}/openapi.json", timeout=10).status_code == 200
        finally:
            index.release.set()
            stuck.join(60)
