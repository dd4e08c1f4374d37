"""Collections over a real Milvus: the filter is Milvus's own (inside the search), a small collection gets the
top k it gets alone, and uploads, listings and /ask over HTTP carry and honour collections as with FAISS."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import synthetic_corpus
from conftest import TINY, LiveServer

from qa import ranking
from qa.api import create_app, load_answerer
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.stores.milvus import MilvusIndex, MilvusWriter


def _written(uri: str, documents: list) -> MilvusIndex:
    writer = MilvusWriter.open(uri, f"c_{uuid.uuid4().hex[:8]}", synthetic_corpus.HEADER, rebuild=True, origin="test")
    for rows in documents:
        writer.put(rows)
    return writer.commit()


def test_a_small_collection_in_milvus_gets_the_top_k_it_gets_alone(milvus_uri: str) -> None:
    small = synthetic_corpus.documents("small/", 20, 4, seed=1)
    others = [
        *synthetic_corpus.documents("", 150, 8, seed=2),
        *synthetic_corpus.documents("big/", 150, 8, seed=3, languages=("fr", "en")),
    ]
    corpus, alone = _written(milvus_uri, [*small, *others]), _written(milvus_uri, small)
    assert corpus.num_chunks == 2480 and corpus.collection_counts() == {"small": 20, "default": 150, "big": 150}
    scope = frozenset({"small"})
    drowned = 0
    for query in synthetic_corpus.queries(10, seed=5):
        inside = ranking.search(corpus, query, 10, scope)
        expected = ranking.search(alone, query, 10)
        assert [(h.chunk.doc_id, h.chunk.start) for h in inside] == [(h.chunk.doc_id, h.chunk.start) for h in expected]
        assert [h.score for h in inside] == pytest.approx([h.score for h in expected], abs=1e-4)
        drowned += sum(h.chunk.doc_id.startswith("small/") for h in ranking.search(corpus, query, 30)) < 10
    assert drowned == 10
    assert corpus.search_rows(synthetic_corpus.queries(1, seed=6)[0], 5, collections=frozenset({'x"] or true'})) == []
    both = corpus.language_stats(frozenset({"small", "big"}))
    assert both.counts == {"en": 40 + 600, "de": 40, "fr": 600}
    page, total = corpus.document_page(5, 3, frozenset({"small"}))
    assert [row[0] for row in page] == [f"small/doc-{i:04d}.txt" for i in (5, 6, 7)] and total == 20
    page, total = corpus.document_page(148, 5)
    assert [row[0] for row in page] == ["big/doc-0148.txt", "big/doc-0149.txt", "doc-0000.txt", "doc-0001.txt",
                                        "doc-0002.txt"] and total == 320  # fmt: skip


def test_collections_over_http_with_milvus(milvus_uri: str, tmp_path: Path, e5: Embedder) -> None:
    (tmp_path / "seeds").mkdir()
    for name, text in TINY.items():
        (tmp_path / "seeds" / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", store="milvus",
                        milvus_uri=milvus_uri, milvus_collection=f"h_{uuid.uuid4().hex[:8]}")  # fmt: skip
    build_index(settings, embedder=e5)
    with LiveServer(create_app(settings, answerer=load_answerer(settings))) as server:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            files = [("file", ("holidays.txt", b"Every employee has twenty-eight days of paid holiday a year."))]
            upload = http.post("/documents", files=files, data={"collection": "hr"})
            assert upload.status_code == 201 and upload.json()["documents"][0]["id"] == "hr/holidays.txt"
            listing = http.get("/documents").json()
            assert [(d["id"], d["collection"]) for d in listing["documents"]] == [
                ("bakery.txt", "default"), ("harbour.txt", "default"), ("hr/holidays.txt", "hr")
            ]  # fmt: skip
            assert [d["id"] for d in http.get("/documents?collection=hr").json()["documents"]] == ["hr/holidays.txt"]
            question = {"question": "Who is the harbour master?", "top_k": 5}
            assert {c["collection"] for c in http.post("/ask", json=question).json()["citations"]} == {"hr", "default"}
            only_hr = http.post("/ask", json={**question, "collections": ["hr"]}).json()["citations"]
            assert [c["document"] for c in only_hr] == ["hr/holidays.txt"] and only_hr[0]["collection"] == "hr"
            assert http.get("/collections").json()["collections"] == [
                {"name": "default", "documents": 2, "writable": True}, {"name": "hr", "documents": 1, "writable": True}
            ]  # fmt: skip
            assert http.delete("/documents/hr/holidays.txt").status_code == 204
            assert http.get("/documents?collection=hr").json()["total"] == 0
