"""`qa serve` answers at once and builds the index behind it: progress in /healthz, 503 naming it, then answers.

In-process, a gated embedder holds the build at its first model call for as long as the test needs, so the
"still indexing" states are observed by condition, not by timing. One real `qa serve` subprocess on a corpus
that takes minutes to embed checks the same from the outside.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ROOT, TINY, TINY_ANSWER, LiveServer, free_port

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder

FERRY = "The night ferry to Kirkwall leaves at 23:45 from pier four."
WAIT = 120  # seconds: only a broken service gets near it


class GatedEmbedder:
    """The real e5 model, except that passages wait for ``gate``: the build stops there until the test says."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.gate = threading.Event()
        self.entered = threading.Event()  # a build is waiting at the gate
        self.encode_sparse = getattr(inner, "encode_sparse", None)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(WAIT), "the test never opened the gate"
        return self.inner.encode_passages(texts)


def _until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture()
def gated(tmp_path: Path, e5: Embedder) -> Iterator[tuple[httpx.Client, GatedEmbedder, Settings]]:
    """A service started on a corpus that has no index yet, its build held at the gate."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in TINY.items():
        (seeds / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5")
    embedder = GatedEmbedder(e5)
    app = create_app(settings, answerer=Answerer(embedder, None), index_on_start=True)
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            yield http, embedder, settings
    finally:
        embedder.gate.set()  # never leave the build thread waiting


def test_answers_at_once_then_from_the_first_index_once_it_lands(gated) -> None:
    http, embedder, _ = gated
    assert embedder.entered.wait(WAIT)  # the start-up build is embedding, and cannot finish
    health = http.get("/healthz").json()
    assert health["status"] == "indexing" and health["documents"] == 0
    progress = health["indexing"]
    assert progress["files_total"] == 2 and progress["failed"] == 0 and progress["started_at"] > 0
    assert progress["current_file"] in TINY
    ask = http.post("/ask", json={"question": "Who is the harbour master?"})
    assert ask.status_code == 503 and ask.headers["retry-after"] == "5"
    assert ask.json()["detail"].startswith("no index yet: the index is being built (")
    assert f"of {progress['files_total']} files done" in ask.json()["detail"]
    assert http.get("/admin/reindex").json()["progress"]["files_total"] == 2
    assert http.get("/documents").json()["total"] == 0

    embedder.gate.set()
    _until(lambda: http.get("/healthz").json()["status"] == "ok", "the first generation")
    assert http.post("/ask", json={"question": "Who is the harbour master?"}).json()["answer"] == TINY_ANSWER
    health = http.get("/healthz").json()
    assert health["indexing"] is None and health["documents"] == 2
    status = http.get("/admin/reindex").json()
    assert status["last_trigger"] == "start-up" and status["progress"] is None
    assert sorted(status["last_report"]["added"]) == sorted(TINY)


def test_the_previous_generation_answers_while_the_next_one_builds(gated) -> None:
    http, embedder, settings = gated
    embedder.gate.set()
    _until(lambda: http.get("/healthz").json()["status"] == "ok", "the first generation")
    embedder.gate.clear()
    embedder.entered.clear()
    (settings.seeds_dir / "ferry.txt").write_text(FERRY, encoding="utf-8")
    assert http.post("/admin/reindex").status_code == 202
    assert embedder.entered.wait(WAIT)  # the second build is held

    assert http.post("/ask", json={"question": "Who is the harbour master?"}).json()["answer"] == TINY_ANSWER
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 2 and health["indexing"]["files_total"] == 3
    assert http.get("/documents/ferry.txt").status_code == 404

    embedder.gate.set()
    _until(lambda: http.get("/documents/ferry.txt").status_code == 200, "the second generation")
    assert http.get("/healthz").json()["documents"] == 3


def test_a_real_qa_serve_answers_healthz_long_before_its_index_is_built(tmp_path: Path) -> None:
    """3000 files take minutes to embed on two cores; /healthz answers as soon as the model is loaded."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n in range(3000):
        (seeds / f"note-{n:04d}.txt").write_text(
            f"Harbour note {n}. The tide on day {n} was {n % 7} metres. Boat {n * 13} left at {n % 24}:00.",
            encoding="utf-8",
        )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QA_EMBEDDER": "e5", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "qa", "serve", "--port", str(port), "--no-watch"]
    command += ["--seeds-dir", str(seeds), "--index-dir", str(tmp_path / "index")]
    log = tmp_path / "serve.log"  # a file, not a pipe: a full pipe would stall the server's logging
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        # the model loads first (seconds); then it answers, while the embedding has minutes of work ahead
        _until(answering, "qa serve to answer /healthz")
        _until(lambda: (httpx.get(f"{url}/healthz").json()["indexing"] or {}).get("files_total"), "the file count")
        first = httpx.get(f"{url}/healthz").json()
        assert first["status"] == "indexing" and first["indexing"]["files_total"] == 3000
        assert first["indexing"]["files_done"] < 3000 and first["documents"] == 0
        ask = httpx.post(f"{url}/ask", json={"question": "What was the tide on day 12?"}, timeout=30)
        assert ask.status_code == 503 and "of 3000 files done" in ask.json()["detail"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
