"""Live re-indexing and concurrency over real HTTP: the watcher, POST /admin/reindex, swaps under load."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import JAPAN_QUESTION, TINY_ANSWER, LiveServer

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.live import Reindexer
from qa.store import IndexData

HARBOUR_QUESTION = "Who is the harbour master?"
FERRY = "The night ferry to Kirkwall leaves at 23:45 from pier four."


@pytest.fixture()
def tiny_copy(tiny_settings: Settings, tmp_path: Path) -> Settings:
    """A private copy of the tiny corpus and its index, free to change."""
    shutil.copytree(tiny_settings.seeds_dir, tmp_path / "seeds")
    shutil.copytree(tiny_settings.index_dir, tmp_path / "index")
    return Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")


class Hammer:
    """Threads asking one question over and over, recording every status and answer."""

    def __init__(self, url: str, question: str, threads: int = 4) -> None:
        self.url, self.question = url, question
        self.results: list[tuple[int, str, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self._stop.is_set():
                response = http.post("/ask", json={"question": self.question})
                body = response.json()
                top = body["citations"][0]["document"] if response.status_code == 200 else ""
                self.results.append((response.status_code, body.get("answer", body.get("detail")), top))

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def _until(check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _status(http: httpx.Client, path: str) -> int:
    return http.get(path).status_code


def test_watcher_picks_up_added_changed_and_removed_files_while_answering(tiny_copy: Settings, e5: Embedder) -> None:
    settings = tiny_copy.model_copy(update={"watch": True})
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        with Hammer(server.url, HARBOUR_QUESTION, threads=2) as hammer:
            assert app.state.watcher.ready.wait(30)  # the watch is in place: no event can be missed
            (settings.seeds_dir / "ferry.txt").write_text(FERRY, encoding="utf-8")
            _until(lambda: _status(http, "/documents/ferry.txt") == 200)
            top = http.post("/ask", json={"question": "When does the night ferry leave?"}).json()["citations"][0]
            assert top["document"] == "ferry.txt"

            (settings.seeds_dir / "bakery.txt").write_text("The bakery closed in 2020.", encoding="utf-8")
            _until(lambda: "closed" in http.get("/documents/bakery.txt").json()["text"])
            (settings.seeds_dir / "ferry.txt").unlink()
            _until(lambda: _status(http, "/documents/ferry.txt") == 404)
        status = http.get("/admin/reindex").json()
    assert status["runs"] >= 3 and status["last_error"] is None and status["last_trigger"].startswith("files changed")
    assert status["last_report"]["removed"] == ["ferry.txt"]
    assert len(hammer.results) > 5
    assert {code for code, _, _ in hammer.results} == {200}
    assert {answer for _, answer, _ in hammer.results} == {TINY_ANSWER}


def test_watcher_follows_a_folder_renamed_and_removed(tiny_copy: Settings, e5: Embedder) -> None:
    settings = tiny_copy.model_copy(update={"watch": True})
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert app.state.watcher.ready.wait(30)
        (settings.seeds_dir / "hr").mkdir()
        (settings.seeds_dir / "hr" / "ferry.txt").write_text(FERRY, encoding="utf-8")
        _until(lambda: _status(http, "/documents/hr/ferry.txt") == 200)
        # a folder's name changes: every document in it moves (the events name the folders, not each file)
        (settings.seeds_dir / "hr").rename(settings.seeds_dir / "ops")
        _until(lambda: _status(http, "/documents/ops/ferry.txt") == 200)
        _until(lambda: _status(http, "/documents/hr/ferry.txt") == 404)
        shutil.rmtree(settings.seeds_dir / "ops")
        _until(lambda: _status(http, "/documents/ops/ferry.txt") == 404)
        top = http.post("/ask", json={"question": "When does the night ferry leave?"}).json()["citations"]
        assert all(c["document"] != "ops/ferry.txt" for c in top)
        assert http.post("/ask", json={"question": HARBOUR_QUESTION}).json()["answer"] == TINY_ANSWER


def test_post_admin_reindex_rebuilds_in_the_background(tiny_copy: Settings, e5: Embedder) -> None:
    app = create_app(tiny_copy, answerer=Answerer(e5, store.load(tiny_copy.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        (tiny_copy.seeds_dir / "ferry.txt").write_text(FERRY, encoding="utf-8")
        # no watcher unless QA_WATCH is on: nothing watches the folder, so nothing can ever trigger a build
        assert app.state.watcher is None and not any(t.name == "qa-watch" for t in threading.enumerate())
        assert http.get("/admin/reindex").json()["runs"] == 0
        assert _status(http, "/documents/ferry.txt") == 404
        with Hammer(server.url, HARBOUR_QUESTION, threads=2) as hammer:
            accepted = http.post("/admin/reindex")
            assert accepted.status_code == 202 and accepted.json()["accepted"] == "started"
            _until(lambda: http.get("/admin/reindex").json()["runs"] == 1)
        status = http.get("/admin/reindex").json()
        assert _status(http, "/documents/ferry.txt") == 200
    assert status["in_progress"] is False and status["last_trigger"] == "POST /admin/reindex"
    assert status["last_report"]["added"] == ["ferry.txt"] and status["last_report"]["written"] is True
    assert {code for code, _, _ in hammer.results} == {200}


def test_an_upload_and_a_deletion_read_their_own_files_alone(tiny_copy: Settings, e5: Embedder) -> None:
    app = create_app(tiny_copy, answerer=Answerer(e5, store.load(tiny_copy.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        # a file put in the folder by hand, no watcher: only a build of the whole folder would read it
        (tiny_copy.seeds_dir / "lighthouse.txt").write_text("The lighthouse is painted red.", encoding="utf-8")
        uploaded = http.post("/documents", files=[("file", ("ferry.txt", FERRY.encode()))])
        assert uploaded.status_code == 201, uploaded.text
        assert [d["status"] for d in uploaded.json()["documents"]] == ["indexed"]
        report = http.get("/admin/reindex").json()["last_report"]
        assert report["added"] == ["ferry.txt"] and report["removed"] == [] and report["failed"] == []
        assert _status(http, "/documents/lighthouse.txt") == 404  # the upload did not read the rest of the folder
        top = http.post("/ask", json={"question": "When does the night ferry leave?"}).json()["citations"][0]
        assert top["document"] == "ferry.txt"
        assert http.post("/ask", json={"question": HARBOUR_QUESTION}).json()["answer"] == TINY_ANSWER

        assert http.delete("/documents/ferry.txt").status_code == 204
        report = http.get("/admin/reindex").json()["last_report"]
        assert report["removed"] == ["ferry.txt"] and report["added"] == []
        assert _status(http, "/documents/ferry.txt") == 404 and _status(http, "/documents/lighthouse.txt") == 404

        assert http.post("/admin/reindex").status_code == 202  # the whole folder, when asked
        _until(lambda: _status(http, "/documents/lighthouse.txt") == 200)
        assert http.post("/ask", json={"question": HARBOUR_QUESTION}).json()["answer"] == TINY_ANSWER


def test_bursts_of_requests_are_coalesced(tiny_copy: Settings, e5: Embedder) -> None:
    answerer = Answerer(e5, store.load(tiny_copy.index_dir))
    reindexer = Reindexer(tiny_copy, lambda: answerer)
    try:
        for n in range(6):
            (tiny_copy.seeds_dir / f"note-{n}.txt").write_text(f"Note {n}: the tide was high.", encoding="utf-8")
            reindexer.request(f"burst {n}")
        assert reindexer.wait_idle(120)
    finally:
        reindexer.close()
    assert 1 <= reindexer.status()["runs"] <= 2
    assert answerer.document("note-5.txt").text == "Note 5: the tide was high."


def test_a_failed_rebuild_keeps_serving_the_old_index(tiny_copy: Settings, e5: Embedder, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    answerer = Answerer(e5, store.load(tiny_copy.index_dir))
    reindexer = Reindexer(tiny_copy.model_copy(update={"index_dir": blocker}), lambda: answerer)
    try:
        reindexer.request("test")
        assert reindexer.wait_idle(60)
    finally:
        reindexer.close()
    assert reindexer.status()["last_error"]
    assert answerer.ask(HARBOUR_QUESTION).answer == TINY_ANSWER


QUESTIONS = [
    JAPAN_QUESTION,
    "кто командует американскими войсками в Японии?",
    "What did Japan decide about arms exports?",
    "Когда встретились министры обороны Японии и США?",
]


def _key(body: dict) -> tuple:
    cited = tuple((c["document"], c["start"], c["end"], c["highlight"]["start"]) for c in body["citations"])
    return body["answer"], cited


def test_sixteen_concurrent_clients_get_the_same_answers_as_one(client: httpx.Client, seed_server: LiveServer) -> None:
    expected = {q: _key(client.post("/ask", json={"question": q}).json()) for q in QUESTIONS}

    def ask(n: int) -> tuple[str, int, tuple | None]:
        question = QUESTIONS[n % len(QUESTIONS)]
        response = httpx.post(f"{seed_server.url}/ask", json={"question": question}, timeout=120)
        return question, response.status_code, _key(response.json()) if response.status_code == 200 else None

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, range(48)))
    assert [status for _, status, _ in results] == [200] * 48
    for question, _, key in results:
        assert key == expected[question], question


@pytest.fixture()
def swap_server(
    seed_settings: Settings, seed_index: IndexData, default_embedder: Embedder
) -> Iterator[tuple[str, Answerer]]:
    answerer = Answerer(default_embedder, seed_index)
    with LiveServer(create_app(seed_settings, answerer=answerer)) as server:
        yield server.url, answerer


def test_swaps_in_the_middle_of_a_stream_of_requests_never_fail(
    swap_server: tuple[str, Answerer],
    seed_index: IndexData,
    tiny_settings: Settings,
    default_embedder: Embedder,
    tmp_path: Path,
) -> None:
    url, answerer = swap_server
    # the two-document corpus, built with the seed index's embedder so one answerer can search both
    _, other = build_index(
        tiny_settings.model_copy(update={"index_dir": tmp_path / "index"}), embedder=default_embedder
    )
    assert other is not None
    expected = {}
    for data in (seed_index, other):
        answer = Answerer(default_embedder, data).ask(JAPAN_QUESTION)
        expected[(answer.answer, answer.citations[0].document)] = data
    with Hammer(url, JAPAN_QUESTION, threads=6) as hammer:
        deadline = time.monotonic() + 60
        swaps = 0
        while time.monotonic() < deadline:
            answerer.swap(other if swaps % 2 == 0 else seed_index)
            swaps += 1
            time.sleep(0.05)
            seen = {(answer, top) for _, answer, top in hammer.results}
            if swaps >= 20 and len(seen) == 2:
                break
    assert {code for code, _, _ in hammer.results} == {200}
    # every answer is exactly one index's answer, and both indexes answered during the stream
    assert {(answer, top) for _, answer, top in hammer.results} == set(expected)
