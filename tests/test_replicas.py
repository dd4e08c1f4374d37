"""Replicas over one real Milvus, each with its own seeds folder (as on two machines): none removes what it did
not add, an upload through one is listed, answered and deletable through all, and a replacement, a long title
or an interrupted rebuild never costs a document (issue 22)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import LiveServer

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import StoreUnavailable
from qa.indexer import build_index
from qa.stores import milvus

LIGHTHOUSE = "The lighthouse on Kelp Island was built in 1874 and is still lit every night by a keeper."
BAKERY = "The bakery on Mill Street sells rye bread baked in a wood-fired oven since 1921."
REACTOR = "The research reactor at Halden was shut down in 2018 after sixty years of operation."
REACTOR_V2 = "The research reactor at Halden is being dismantled; the work will take until 2030."
WAIT = 120


def _replica(base: Path, name: str, files: dict[str, str], uri: str, collection: str) -> Settings:
    seeds = base / name / "seeds"
    seeds.mkdir(parents=True)
    for file, text in files.items():
        (seeds / file).write_text(text, encoding="utf-8")
    return Settings(
        seeds_dir=seeds, index_dir=base / name / "index", embedder="e5", store="milvus",
        milvus_uri=uri, milvus_collection=collection, replica=name,
    )  # fmt: skip


@contextmanager
def _serve(settings: Settings, e5: Embedder) -> Iterator[httpx.Client]:
    """`qa serve` as it starts: the folder synced into the shared store before the test goes on."""
    app = create_app(settings, answerer=Answerer(e5, None), index_on_start=True)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=WAIT) as http:
        assert app.state.reindexer.wait_idle(WAIT)
        assert app.state.reindexer.status()["last_error"] is None
        yield http


def _cited(http: httpx.Client, question: str) -> list[str]:
    response = http.post("/ask", json={"question": question, "top_k": 3})
    assert response.status_code == 200, response.text
    return [citation["document"] for citation in response.json()["citations"]]


def _upload(http: httpx.Client, name: str, text: str) -> httpx.Response:
    return http.post("/documents", files={"file": (name, text.encode(), "text/plain")})


@pytest.fixture()
def two(tmp_path: Path, milvus_uri: str) -> tuple[Settings, Settings]:
    collection = f"rep_{uuid.uuid4().hex[:8]}"
    a = _replica(tmp_path, "a", {"island.txt": f"Kelp Island\n\n{LIGHTHOUSE}\n"}, milvus_uri, collection)
    b = _replica(tmp_path, "b", {"town.txt": f"Town\n\n{BAKERY}\n"}, milvus_uri, collection)
    return a, b


def test_an_upload_through_one_replica_survives_the_other_and_is_deleted_through_it(two, e5: Embedder) -> None:
    a, b = two
    with _serve(a, e5) as http_a, _serve(b, e5) as http_b:
        assert _cited(http_a, "Where can I buy rye bread?")[0] == "town.txt"  # b's folder, answered by a
        assert _upload(http_a, "reactor.txt", REACTOR).status_code == 201
        assert _cited(http_b, "When was the Halden reactor shut down?")[0] == "reactor.txt"
        report, _ = build_index(b, embedder=e5)  # `qa index` on b: before the fix "removed reactor.txt"
        assert report.removed == [] and report.unchanged == ["town.txt"]
        assert not (a.seeds_dir / "reactor.txt").exists()  # the upload lives in the store: no shared disk
    with _serve(b, e5) as http_b, _serve(a, e5) as http_a:  # both restarted: each start-up sync ran
        assert _cited(http_a, "When was the Halden reactor shut down?")[0] == "reactor.txt"
        assert _cited(http_b, "When was the Halden reactor shut down?")[0] == "reactor.txt"
        listed = [doc["id"] for doc in http_a.get("/documents").json()["documents"]]
        assert listed == ["island.txt", "reactor.txt", "town.txt"]

        # a's folder holds island.txt: b can neither delete it nor upload over it
        refused = http_b.delete("/documents/island.txt")
        assert refused.status_code == 409 and "on host a" in refused.json()["detail"]
        over = _upload(http_b, "island.txt", REACTOR)
        assert over.status_code == 422 and "change the file there" in over.json()["detail"]
        assert _cited(http_b, "When was the lighthouse built?")[0] == "island.txt"

        assert http_b.delete("/documents/reactor.txt").status_code == 204
        assert http_a.get("/documents/reactor.txt").status_code == 404
        assert "reactor.txt" not in _cited(http_a, "When was the Halden reactor shut down?")
        again, _ = build_index(a, embedder=e5)
        assert again.added == [] and again.removed == []
    with _serve(a, e5) as http_a:  # and it stays gone after a's restart
        assert http_a.get("/documents/reactor.txt").status_code == 404
        assert http_a.get("/documents").json()["total"] == 2


def test_a_document_two_folders_hold_stays_until_both_let_go(tmp_path: Path, e5: Embedder, milvus_uri: str) -> None:
    collection = f"both_{uuid.uuid4().hex[:8]}"
    files = {"island.txt": f"Kelp Island\n\n{LIGHTHOUSE}\n"}
    a = _replica(tmp_path, "a", files, milvus_uri, collection)
    b = _replica(tmp_path, "b", files, milvus_uri, collection)
    assert build_index(a, embedder=e5)[0].added == ["island.txt"]
    assert build_index(b, embedder=e5)[0].unchanged == ["island.txt"]  # the same file: held by both, kept
    (a.seeds_dir / "island.txt").unlink()
    report, index = build_index(a, embedder=e5)
    assert report.removed == [] and index.document("island.txt") is not None  # b's folder still holds it
    (b.seeds_dir / "island.txt").unlink()
    report, index = build_index(b, embedder=e5)
    assert report.removed == ["island.txt"] and index.document("island.txt") is None


def test_a_replacement_that_fails_midway_keeps_the_earlier_version(
    tmp_path: Path, e5: Embedder, milvus_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _replica(tmp_path, "a", {"island.txt": LIGHTHOUSE}, milvus_uri, f"repl_{uuid.uuid4().hex[:8]}")
    with _serve(a, e5) as http:
        assert _upload(http, "reactor.txt", REACTOR).status_code == 201
        real = milvus._Client.__getattr__

        def failing(self: milvus._Client, name: str):  # the server goes away once the new chunks are written
            call = real(self, name)

            def write(collection: str, rows: list[dict], *args, **kwargs):
                if collection.endswith("_documents") and rows and rows[0]["id"] != milvus.META_ID:
                    raise StoreUnavailable(f"Milvus at {self.uri} failed ({name}): connection reset")
                return call(collection, rows, *args, **kwargs)

            return write if name in ("insert", "upsert") else call

        monkeypatch.setattr(milvus._Client, "__getattr__", failing)
        assert _upload(http, "reactor.txt", REACTOR_V2).status_code == 503
        monkeypatch.undo()
        document = http.get("/documents/reactor.txt")
        assert document.status_code == 200 and document.json()["text"] == REACTOR  # before the fix: 404
        assert _cited(http, "When was the Halden reactor shut down?")[0] == "reactor.txt"
        assert _upload(http, "reactor.txt", REACTOR_V2).status_code == 201  # the next try replaces it
        assert http.get("/documents/reactor.txt").json()["text"] == REACTOR_V2
        hits = _cited(http, "When will the dismantling of the Halden reactor end?")
        assert hits[0] == "reactor.txt" and hits.count("reactor.txt") == 1  # the earlier rows are gone


def test_a_title_over_the_varchar_limit_is_cut_on_a_character(tmp_path: Path, e5: Embedder, milvus_uri: str) -> None:
    title = "Заголовок 😀 " * 400  # 6,400 characters, 8,000+ UTF-8 bytes, emoji across the 4,096-byte cut
    page = f"<html><head><title>{title}</title></head><body><p>{LIGHTHOUSE}</p></body></html>"
    a = _replica(tmp_path, "a", {"long.html": page, "town.txt": BAKERY}, milvus_uri, f"long_{uuid.uuid4().hex[:8]}")
    report, index = build_index(a, embedder=e5)  # before the fix: StoreUnavailable, no document written
    assert sorted(report.added) == ["long.html", "town.txt"] and not report.failed
    stored = index.document("long.html")
    assert stored is not None and LIGHTHOUSE in stored.text
    assert len(stored.title.encode()) <= milvus.ID_MAX and title.strip().startswith(stored.title.strip())
    assert len(stored.title) > 1000
    hit = index.search_hits(e5.encode_queries(["When was the lighthouse built?"])[0], 1)[0]
    assert hit.chunk.doc_id == "long.html" and hit.title == stored.title


class Negated:
    """Another model of the same size: e5's passage vectors turned around, so its rows answer nothing."""

    name, dim = "e5-negated", 384

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.dim = inner, inner.dim

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return -self.inner.encode_passages(texts)


class Crash(BaseException):
    """A process killed mid-build (no handler catches it)."""


def test_a_rebuild_that_stopped_halfway_is_not_kept_by_the_next_model(
    tmp_path: Path, e5: Embedder, milvus_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"island.txt": LIGHTHOUSE, "town.txt": BAKERY}
    a = _replica(tmp_path, "a", files, milvus_uri, f"hdr_{uuid.uuid4().hex[:8]}")
    build_index(a, embedder=e5)
    real = milvus.MilvusStore.write_documents
    written: list[str] = []

    def first_only(self: milvus.MilvusStore, batch, stored) -> None:
        written.append(batch[0].doc.id)
        real(self, batch[:1], stored)
        raise Crash

    monkeypatch.setattr(milvus.MilvusStore, "write_documents", first_only)
    with pytest.raises(Crash):  # a rebuild with another model stops after its first document
        build_index(a.model_copy(update={"index_dir": tmp_path / "other"}), embedder=Negated(e5))
    monkeypatch.undo()
    report, index = build_index(a, embedder=e5)  # back to e5: before the fix, the negated rows were kept
    assert report.rebuilt and sorted(report.added) == ["island.txt", "town.txt"]
    hit = index.search_hits(e5.encode_queries([f"{written[0]}: " + files[written[0]]])[0], 1)[0]
    assert hit.chunk.doc_id == written[0] and hit.score > 0.5


def test_uploads_survive_a_rebuild_of_the_shared_index(tmp_path: Path, e5: Embedder, milvus_uri: str) -> None:
    a = _replica(tmp_path, "a", {"island.txt": LIGHTHOUSE}, milvus_uri, f"carry_{uuid.uuid4().hex[:8]}")
    with _serve(a, e5) as http:
        assert _upload(http, "reactor.txt", REACTOR).status_code == 201
        report, _ = build_index(a, embedder=e5, rebuild=True)  # `qa index --rebuild`: every collection dropped
        assert report.rebuilt and sorted(report.added) == ["island.txt", "reactor.txt"]
        assert http.get("/documents/reactor.txt").json()["text"] == REACTOR  # its only copy was in the store
        assert _cited(http, "When was the Halden reactor shut down?")[0] == "reactor.txt"
        assert http.delete("/documents/reactor.txt").status_code == 204  # still an upload: deletable by all


def test_a_replica_answers_from_its_own_upload_at_once(tmp_path: Path, e5: Embedder, milvus_uri: str) -> None:
    """Replies read at session consistency (the reads no longer wait for Milvus's next time tick): what this
    replica has just written is still answered, listed and gone at once, never a moment later."""
    a = _replica(tmp_path, "a", {"island.txt": LIGHTHOUSE}, milvus_uri, f"own_{uuid.uuid4().hex[:8]}")
    with _serve(a, e5) as http:
        assert _upload(http, "reactor.txt", REACTOR).status_code == 201
        assert _cited(http, "When was the Halden reactor shut down?")[0] == "reactor.txt"
        assert [doc["id"] for doc in http.get("/documents").json()["documents"]] == ["island.txt", "reactor.txt"]
        assert _upload(http, "reactor.txt", REACTOR_V2).status_code == 201
        response = http.post("/ask", json={"question": "When will the dismantling of the Halden reactor end?"})
        citation = response.json()["citations"][0]
        assert citation["document"] == "reactor.txt" and "2030" in citation["text"]
        assert http.delete("/documents/reactor.txt").status_code == 204
        assert "reactor.txt" not in _cited(http, "When was the Halden reactor shut down?")
