"""An upload never loses what it replaces: a service shutting down mid-upload, a kill -9 followed by the next
start (`qa serve` or `qa index`), and a name that a folder holds. (Milvus going away mid-upload is in
test_store_failures.py, beside its proxy.)

The upload is held after its file is placed, deterministically, by the test holding the index lock
(``index/.lock``) that every build takes first: the build waits, and so does the upload.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from conftest import (
    JAPAN_ANSWER,
    JAPAN_QUESTION,
    ROOT,
    SEEDS,
    TINY_ANSWER,
    LiveServer,
    free_port,
    index_files,
    session_token_in,
)
from filelock import FileLock

from qa import staging, store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import LOCK

WAIT = 120  # seconds: only a broken service gets near it
SEED = "us-japan-security-talks.txt"
UNCONFIRMED = "This replacement of the talks was uploaded, but the service died before it said so."
STAGING = ".qa-uploads"


def _until(check: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _holds(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.is_file() and path.read_text(encoding="utf-8") == text


@pytest.fixture()
def service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[httpx.Client, Settings, object]]:
    """The tiny corpus (harbour.txt, bakery.txt) copied into a private folder, served with the real model."""
    shutil.copytree(tiny_settings.seeds_dir, tmp_path / "seeds")
    shutil.copytree(tiny_settings.index_dir, tmp_path / "index")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5")
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=WAIT) as http:
        yield http, settings, app


def test_a_service_shutting_down_mid_upload_keeps_the_earlier_version(service) -> None:
    http, settings, app = service
    harbour = settings.seeds_dir / "harbour.txt"
    earlier = harbour.read_text(encoding="utf-8")
    newer = "The harbour master of Valdoria is now Per Hansen, since March."
    with FileLock(settings.index_dir / LOCK), ThreadPoolExecutor(1) as pool:  # the upload's build waits here
        reply = pool.submit(http.post, "/documents", files=[("file", ("harbour.txt", newer.encode()))])
        _until(_holds(harbour, newer), "the new file to be placed")
        app.state.reindexer.close(timeout=0)  # what the service's shutdown does first
        response = reply.result(WAIT)
    assert response.status_code == 503 and "shutting down" in response.json()["detail"]
    assert harbour.read_text(encoding="utf-8") == earlier  # before the fix: only the new, unindexed file was left
    assert not (settings.seeds_dir / STAGING).exists()


def test_a_start_beside_a_live_upload_leaves_it_alone(service) -> None:
    """`qa index` run while `qa serve` uploads into the same folder: the upload is live, not a crash's leftover."""
    http, settings, _ = service
    harbour = settings.seeds_dir / "harbour.txt"
    newer = "The harbour master of Valdoria is now Per Hansen, since March."
    with ThreadPoolExecutor(1) as pool:
        with FileLock(settings.index_dir / LOCK):  # the upload's build waits here
            reply = pool.submit(http.post, "/documents", files=[("file", ("harbour.txt", newer.encode()))])
            _until(_holds(harbour, newer), "the new file to be placed")
            assert staging.recover(settings.seeds_dir) == []  # what a start runs first
            assert harbour.read_text(encoding="utf-8") == newer
        response = reply.result(WAIT)
    assert response.status_code == 201 and response.json()["documents"][0]["status"] == "indexed"
    answer = http.post("/ask", json={"question": "Who is the harbour master?"}).json()["answer"]
    assert answer.startswith("The harbour master of Valdoria is now Per Hansen")
    assert not (settings.seeds_dir / STAGING).exists()


def test_uploading_a_name_that_a_folder_holds_is_409_and_touches_nothing(service) -> None:
    http, settings, _ = service
    folder = settings.seeds_dir / "minutes.txt"
    folder.mkdir()
    (folder / "march.txt").write_text("The March minutes: the pier is to be repaired.", encoding="utf-8")
    files = [("file", ("minutes.txt", b"New minutes.")), ("file", ("agenda.txt", b"The agenda for April."))]
    response = http.post("/documents", files=files)
    assert response.status_code == 409, response.text
    assert "minutes.txt is a folder" in response.json()["detail"]
    assert (folder / "march.txt").read_text(encoding="utf-8") == "The March minutes: the pier is to be repaired."
    assert sorted(p.name for p in settings.seeds_dir.iterdir()) == ["bakery.txt", "harbour.txt", "minutes.txt"]
    assert http.post("/ask", json={"question": "Who is the harbour master?"}).json()["answer"] == TINY_ANSWER


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "QA_EMBEDDER": "e5", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"}


class Serve:
    """A real `qa serve` subprocess on the folders of ``settings``, its log in a file (a full pipe would stall it)."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "qa", "serve", "--port", str(self.port), "--no-watch"]
        command += ["--seeds-dir", str(settings.seeds_dir), "--index-dir", str(settings.index_dir)]
        self.proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=log.open("w"))

    def settled(self) -> bool:
        """Answering, and done with its start-up build."""
        assert self.proc.poll() is None, self.log.read_text()
        try:
            status = httpx.get(f"{self.url}/admin/reindex", timeout=5).json()
        except httpx.TransportError:
            return False
        return status["runs"] >= 1 and not status["in_progress"] and not status["pending"]

    def owner(self) -> dict[str, str]:
        """The header the person at the machine sends: the session token this process printed at start."""
        token = session_token_in(self.log.read_text())
        assert token, self.log.read_text()
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait(30)


@pytest.mark.parametrize("next_start", ["qa serve", "qa index"])
def test_kill_9_mid_upload_is_rolled_back_at_the_next_start(tmp_path: Path, e5: Embedder, next_start: str) -> None:
    original = (SEEDS / SEED).read_text(encoding="utf-8")
    settings = index_files(tmp_path, {SEED: original}, e5)
    seed = settings.seeds_dir / SEED
    server = Serve(settings, tmp_path / "serve.log")
    try:
        _until(server.settled, "qa serve to answer and finish its start-up build")
        with FileLock(settings.index_dir / LOCK), ThreadPoolExecutor(1) as pool:  # the upload's build waits here
            files = [("file", (SEED, UNCONFIRMED.encode()))]
            reply = pool.submit(
                httpx.post, f"{server.url}/documents", files=files, headers=server.owner(), timeout=WAIT
            )
            _until(_holds(seed, UNCONFIRMED), "the new file to be placed")
            server.proc.send_signal(signal.SIGKILL)
            assert server.proc.wait(30) == -signal.SIGKILL
            with pytest.raises(httpx.TransportError):  # the client never heard back
                reply.result(WAIT)
    finally:
        server.stop()
    assert (settings.seeds_dir / STAGING).is_dir()  # the crash left its staging folder

    if next_start == "qa serve":
        server = Serve(settings, tmp_path / "restart.log")
        try:
            _until(server.settled, "the restarted qa serve to finish its start-up build")
            answer = httpx.post(f"{server.url}/ask", json={"question": JAPAN_QUESTION}, timeout=WAIT).json()
        finally:
            server.stop()
        said = server.log.read_text()
    else:
        command = [sys.executable, "-m", "qa", "index", "--seeds-dir", str(settings.seeds_dir)]
        command += ["--index-dir", str(settings.index_dir)]
        run = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        said = run.stderr
        answer = asdict(Answerer(e5, store.load(settings.index_dir)).ask(JAPAN_QUESTION))
    assert seed.read_text(encoding="utf-8") == original  # before the fix: the unconfirmed upload was the document
    assert not (settings.seeds_dir / STAGING).exists()  # nor an orphaned earlier version
    said = " ".join(said.split())  # rich wraps long lines
    assert f"rolled back an upload that was never confirmed (the service stopped mid-upload): {SEED}" in said
    assert "earlier version put back" in said
    top = answer["citations"][0]
    assert top["document"] == SEED and UNCONFIRMED not in top["text"]
    assert any(JAPAN_ANSWER in c["text"] for c in answer["citations"])
