"""A full write queue answers 503 with Retry-After while /ask keeps answering (real model, real HTTP).

The writer is held on a condition the test controls: the model reads passages (what indexing an upload
does) only once the test opens a gate; questions (encode_queries) never wait on it.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TINY_ANSWER, LiveServer

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder

FERRY = "The night ferry to Kirkwall leaves at 23:45 from pier four."
LIGHTHOUSE = "The lighthouse on Skerry Point was automated in 1998 and is painted red."
ORCHARD = "The orchard behind the chapel grows twelve kinds of apple."


class GatedEmbedder:
    """The real model, except that reading passages waits until ``gate`` opens (``reading`` says it began)."""

    def __init__(self, model: Embedder) -> None:
        self._model = model
        self.gate = threading.Event()
        self.reading = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _held(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.reading.set()
        assert self.gate.wait(120), "the test never opened the gate"
        return getattr(self._model, method)(*args, **kwargs)

    def encode_passages(self, *args: Any, **kwargs: Any) -> Any:
        return self._held("encode_passages", *args, **kwargs)

    def encode_passage_parts(self, *args: Any, **kwargs: Any) -> Any:
        return self._held("encode_passage_parts", *args, **kwargs)


@pytest.fixture()
def held(
    request: pytest.FixtureRequest, tiny_settings: Settings, tmp_path: Path, e5: Embedder
) -> Iterator[tuple[httpx.Client, Any, GatedEmbedder]]:
    """The tiny corpus served with a write queue of one, and the model's passage reading held at a gate."""
    timeout = getattr(request, "param", 120.0)
    shutil.copytree(tiny_settings.seeds_dir, tmp_path / "seeds")
    shutil.copytree(tiny_settings.index_dir, tmp_path / "index")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", write_queue=1)
    settings = settings.model_copy(update={"write_timeout": timeout})
    model = GatedEmbedder(e5)
    app = create_app(settings, answerer=Answerer(model, store.load(settings.index_dir)))  # type: ignore[arg-type]
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        try:
            yield http, app, model
        finally:
            model.gate.set()  # a failed test must not leave the writer waiting


def _upload(http: httpx.Client, name: str, text: str) -> httpx.Response:
    return http.post("/documents", files=[("file", (name, text.encode()))])


def _wait(condition: Any, what: str) -> None:
    event = threading.Event()
    for _ in range(600):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_full_write_queue_is_503_with_retry_after_while_ask_answers(held) -> None:
    http, app, model = held
    seeds: Path = app.state.settings.seeds_dir
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(_upload, http, "ferry.txt", FERRY)
        assert model.reading.wait(60), "the first upload never reached the model"
        queued = pool.submit(_upload, http, "lighthouse.txt", LIGHTHOUSE)
        _wait(lambda: app.state.writes.waiting() == 1, "the second upload to queue")

        # the queue is full: a further upload and a delete are refused at once, and nothing is touched
        refused = _upload(http, "orchard.txt", ORCHARD)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "too many changes are waiting" in refused.json()["detail"]
        gone = http.delete("/documents/harbour.txt")
        assert gone.status_code == 503 and int(gone.headers["Retry-After"]) >= 1
        assert not (seeds / "orchard.txt").exists() and (seeds / "harbour.txt").exists()

        # questions are answered meanwhile, several at once, from the index as it was
        with ThreadPoolExecutor(4) as askers:
            answers = list(
                askers.map(lambda _: http.post("/ask", json={"question": "Who is the harbour master?"}), range(8))
            )
        assert all(a.status_code == 200 for a in answers)
        assert all(TINY_ANSWER in a.json()["citations"][0]["text"] for a in answers)
        assert not running.done() and not queued.done()

        model.gate.set()
        first, second = running.result(120), queued.result(120)
    assert first.status_code == 201 and first.json()["documents"][0]["status"] == "indexed", first.text
    assert second.status_code == 201 and second.json()["documents"][0]["status"] == "indexed", second.text
    top = http.post("/ask", json={"question": "When does the night ferry leave?"}).json()["citations"][0]
    assert top["document"] == "ferry.txt"
    top = http.post("/ask", json={"question": "When was the lighthouse automated?"}).json()["citations"][0]
    assert top["document"] == "lighthouse.txt"
    # the queue has room again: the refused upload goes through now
    assert _upload(http, "orchard.txt", ORCHARD).status_code == 201


@pytest.mark.parametrize("held", [1.0], indirect=True)
def test_a_write_that_cannot_start_in_time_is_503_and_changes_nothing(held) -> None:
    http, app, model = held
    seeds: Path = app.state.settings.seeds_dir
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(_upload, http, "ferry.txt", FERRY)
        assert model.reading.wait(60), "the first upload never reached the model"
        late = _upload(http, "lighthouse.txt", LIGHTHOUSE)  # waits its second behind the held one, then gives up
        assert late.status_code == 503 and int(late.headers["Retry-After"]) >= 1
        assert "without starting" in late.json()["detail"]
        assert not (seeds / "lighthouse.txt").exists()
        model.gate.set()
        assert running.result(120).status_code == 201  # the one that had started still finished
    assert app.state.writes.waiting() == 0
    top = http.post("/ask", json={"question": "When was the lighthouse automated?"}).json()["citations"][0]
    assert top["document"] != "lighthouse.txt"
