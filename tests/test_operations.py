"""The operations surface over real HTTP: /metrics, /readyz against /healthz, request ids, JSON log lines.

What an operator sees: a Prometheus scrape that parses and moves with the traffic, a readiness probe that
holds traffic back until the first index serves, and one id that joins a client's error body, the
response header and the server's log line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
from conftest import JAPAN_QUESTION, ROOT, TINY, LiveServer, free_port
from prometheus_client.parser import text_string_to_metric_families
from slack_standin import SECRET, TOKEN, FakeSlack, callback, direct, mention, replies_to, sign

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder

WAIT = 120  # seconds: only a broken service gets near it
OFF_TOPIC = "Who won the football World Cup final in 2018?"  # not in the seed corpus: not_found
FERRY = "The night ferry to Kirkwall leaves at 23:45 from pier four."
LEAVE = "Every employee has 25 days of paid leave a year, and unused days carry over to March."

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client, **headers: str) -> Samples:
    """Every sample of GET /metrics, parsed as Prometheus parses it."""
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_metrics_count_requests_by_route_template_and_status_and_answers_by_reason(client: httpx.Client) -> None:
    before = scrape(client)
    assert client.post("/ask", json={"question": JAPAN_QUESTION}).json()["no_answer_reason"] is None
    assert client.post("/ask", json={"question": OFF_TOPIC}).json()["no_answer_reason"] == "not_found"
    assert client.post("/ask", json={"question": "hi"}).json()["no_answer_reason"] == "small_talk"
    assert client.post("/ask", json={"question": ""}).status_code == 422
    assert client.get("/documents/us-japan-security-talks.txt").status_code == 200
    assert client.get("/documents/no-such-file.txt").status_code == 404
    assert client.get("/").status_code == 200 and client.get("/no-such-page.css").status_code == 404
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("qa_http_requests_total", method="POST", route="/ask", status="200") == 3
    assert moved("qa_http_requests_total", method="POST", route="/ask", status="422") == 1
    # the route's template, never the document id: one series however many documents are read
    document = "/documents/{doc_id:path}"
    assert moved("qa_http_requests_total", method="GET", route=document, status="200") == 1
    assert moved("qa_http_requests_total", method="GET", route=document, status="404") == 1
    # the web page's files: one series for the mount at "/", whatever the file
    assert moved("qa_http_requests_total", method="GET", route="/{path:path}", status="200") == 1
    assert moved("qa_http_requests_total", method="GET", route="/{path:path}", status="404") == 1
    assert not [key for key in after if any(raw in str(key) for raw in ("no-such", "us-japan"))]
    assert moved("qa_http_request_duration_seconds_count", method="POST", route="/ask") == 4
    assert moved("qa_http_request_duration_seconds_sum", method="POST", route="/ask") > 0
    assert moved("qa_answers_total", source="api", reason="answered") == 1
    assert moved("qa_answers_total", source="api", reason="not_found") == 1
    assert moved("qa_answers_total", source="api", reason="small_talk") == 1
    # the seed corpus is one file at the top of the seeds folder: the default collection
    assert value(after, "qa_documents", collection="default") == 1
    assert value(after, "qa_chunks", collection="default") == client.get("/healthz").json()["chunks"] > 0


@pytest.fixture()
def service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[httpx.Client, Settings]]:
    """The tiny corpus (harbour.txt, bakery.txt) copied into a private folder, served with the real model."""
    shutil.copytree(tiny_settings.seeds_dir, tmp_path / "seeds")
    shutil.copytree(tiny_settings.index_dir, tmp_path / "index")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5")
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        yield http, settings


def test_metrics_count_documents_and_chunks_by_collection_builds_failures_and_the_encoder(service) -> None:
    http, settings = service
    before = scrape(http)
    assert value(before, "qa_documents", collection="default") == 2
    assert value(before, "qa_documents", collection="hr") == 0
    chunks = value(before, "qa_chunks", collection="default")

    files = [("file", ("ferry.txt", FERRY.encode())), ("file", ("broken.pdf", b"%PDF-1.7 this is no PDF"))]
    outcomes = http.post("/documents", files=files).json()["documents"]
    assert [o["status"] for o in outcomes] == ["indexed", "failed"]
    uploaded = scrape(http)
    assert value(uploaded, "qa_documents", collection="default") == 3
    assert value(uploaded, "qa_chunks", collection="default") == chunks + 1  # one short passage
    # the upload's build (and the one that puts back what the refused file replaced, here nothing) went well
    builds = value(uploaded, "qa_index_builds_total", outcome="ok")
    assert builds > value(before, "qa_index_builds_total", outcome="ok")
    assert value(uploaded, "qa_index_builds_total", outcome="failed") == 0
    assert value(uploaded, "qa_index_failed_documents_total") == value(before, "qa_index_failed_documents_total") + 1
    # the new file's passage and sentence went through the model, and that took time
    assert value(uploaded, "qa_encoder_texts_total") > value(before, "qa_encoder_texts_total")
    assert value(uploaded, "qa_encoder_characters_total") >= value(before, "qa_encoder_characters_total") + len(FERRY)
    assert value(uploaded, "qa_encoder_seconds_total") > value(before, "qa_encoder_seconds_total")

    # into another collection: its own series, the default one unchanged
    upload = http.post("/documents", files=[("file", ("leave.txt", LEAVE.encode()))], data={"collection": "hr"})
    assert upload.json()["documents"][0]["id"] == "hr/leave.txt"
    after = scrape(http)
    assert value(after, "qa_documents", collection="hr") == 1 and value(after, "qa_chunks", collection="hr") == 1
    assert value(after, "qa_documents", collection="default") == 3
    assert value(after, "qa_chunks", collection="default") == chunks + 1
    # the same counts as the API's own listing of collections
    listed = {c["name"]: c["documents"] for c in http.get("/collections").json()["collections"]}
    assert listed == {"default": 3, "hr": 1}
    # a folder written by hand is a collection too, once re-indexed (qa.collections.of)
    (settings.seeds_dir / "eng").mkdir()
    (settings.seeds_dir / "eng" / "ferry-notes.txt").write_text(FERRY + " Tickets are sold on board.", encoding="utf-8")
    assert http.post("/admin/reindex").status_code == 202
    _until(lambda: value(scrape(http), "qa_documents", collection="eng") == 1, "eng in /metrics")
    assert value(scrape(http), "qa_chunks", collection="eng") == 1


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


def test_readyz_is_503_while_the_first_index_builds_and_200_once_it_serves(tmp_path: Path, e5: Embedder) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in TINY.items():
        (seeds / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5")
    embedder = GatedEmbedder(e5)
    app = create_app(settings, answerer=Answerer(embedder, None), index_on_start=True)
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            assert embedder.entered.wait(WAIT)  # the start-up build is embedding, and cannot finish
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
            body = ready.json()
            assert body["detail"].startswith("no index serves yet: the first is being built (")
            assert body["request_id"] == ready.headers["x-request-id"]
            assert http.get("/healthz").status_code == 200  # alive all along: nothing should restart it
            building = scrape(http)
            assert value(building, "qa_indexing_in_progress") == 1
            assert value(building, "qa_indexing_files_total") == 2
            assert value(building, "qa_documents", collection="default") == 0

            embedder.gate.set()
            _until(lambda: http.get("/readyz").status_code == 200, "readiness")
            assert http.get("/readyz").json() == {"status": "ready"}
            assert http.get("/healthz").json()["documents"] == 2
            built = scrape(http)
            assert value(built, "qa_indexing_in_progress") == 0
            assert value(built, "qa_index_builds_total", outcome="ok") == 1
            assert value(built, "qa_documents", collection="default") == 2
    finally:
        embedder.gate.set()  # never leave the build thread waiting


def test_a_request_id_is_echoed_when_sane_made_up_otherwise_and_named_in_error_bodies(client: httpx.Client) -> None:
    sent = client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.retry_2"})
    assert sent.headers["x-request-id"] == "edge-7f3a.retry_2"
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["x-request-id"] != made  # one per request
    # anything a log line could be forged with, or too long, is replaced rather than repeated
    for bad in ("two words", "a" * 129, 'quote"d', ""):
        assert re.fullmatch(
            r"[0-9a-f]{32}", client.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
        )
    invalid = client.post("/ask", json={"question": "", "top_k": 99}, headers={"X-Request-ID": "bad-input-1"})
    assert invalid.status_code == 422 and invalid.headers["x-request-id"] == "bad-input-1"
    assert invalid.json()["request_id"] == "bad-input-1" and invalid.json()["errors"]
    missing = client.get("/documents/nothing-here.txt")
    assert missing.status_code == 404 and missing.json()["request_id"] == missing.headers["x-request-id"]
    # refused before any route runs (a Host this service does not serve): still named
    refused = client.get("/healthz", headers={"Host": "evil.example", "X-Request-ID": "rebind-1"})
    assert refused.status_code == 400 and refused.json()["request_id"] == "rebind-1"
    assert refused.headers["x-request-id"] == "rebind-1"


def test_metrics_need_the_key_once_one_is_set_unless_public(seed_settings: Settings, seed_answerer: Answerer) -> None:
    locked = seed_settings.model_copy(update={"api_key": "s3cret-key"})
    with LiveServer(create_app(locked, answerer=seed_answerer)) as server:
        refused = httpx.get(f"{server.url}/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["request_id"] == refused.headers["x-request-id"]
        assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        with httpx.Client(base_url=server.url) as http:
            samples = scrape(http, Authorization="Bearer s3cret-key")
        # each app counts its own requests: the two 401s above, nothing another app in this process served
        assert value(samples, "qa_http_requests_total", method="GET", route="/metrics", status="401") == 2
        assert value(samples, "qa_answers_total", source="api", reason="answered") == 0
        assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}  # probes send no key
    public = locked.model_copy(update={"metrics_public": True})
    with LiveServer(create_app(public, answerer=seed_answerer)) as server, httpx.Client(base_url=server.url) as http:
        assert value(scrape(http), "qa_documents", collection="default") == 1
        assert http.post("/ask", json={"question": JAPAN_QUESTION}).status_code == 401  # only /metrics opened


def test_qa_serve_logs_json_lines_that_carry_the_request_id(tmp_path: Path) -> None:
    """A real `qa serve` with QA_LOG_FORMAT=json: every line it writes parses, the access line names the request."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in TINY.items():
        (seeds / name).write_text(text, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "QA_EMBEDDER": "e5", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1",
        "QA_LOG_FORMAT": "json",
    }  # fmt: skip
    command = [sys.executable, "-m", "qa", "serve", "--port", str(port), "--no-watch"]
    command += ["--seeds-dir", str(seeds), "--index-dir", str(tmp_path / "index")]
    log = tmp_path / "serve.log"  # a file, not a pipe: a full pipe would stall the server's logging
    server = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        _until(ready, "qa serve to be ready")
        missing = httpx.get(f"{url}/documents/nowhere.txt", headers={"X-Request-ID": "find-me-in-the-log"})
        assert missing.status_code == 404 and missing.json()["request_id"] == "find-me-in-the-log"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line: a JSON object, nothing else
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["message"].startswith("qa is answering on http://") for entry in entries)
    access = [entry for entry in entries if entry.get("request_id") == "find-me-in-the-log"]
    assert [(a["logger"], a["method"], a["path"], a["status"]) for a in access] == [
        ("uvicorn.access", "GET", "/documents/nowhere.txt", 404)
    ]
    assert not any("request_id" in entry for entry in entries if entry["logger"] == "qa.serve")  # outside requests


class FailingEmbedder(GatedEmbedder):
    """The real e5 model until ``broken`` is set; then every question crashes it (a bug, not a QAError)."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self.gate.set()
        self.broken = False

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self.broken:
            raise RuntimeError("the model crashed")
        return self.inner.encode_queries(texts)


def test_an_unexpected_crash_is_a_500_in_the_error_shape_with_its_request_id(tiny_settings: Settings, e5) -> None:
    embedder = FailingEmbedder(e5)
    app = create_app(tiny_settings, answerer=Answerer(embedder, store.load(tiny_settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        embedder.broken = True
        crashed = http.post("/ask", json={"question": "Who is the harbour master?"}, headers={"X-Request-ID": "boom-1"})
        assert crashed.status_code == 500 and crashed.headers["x-request-id"] == "boom-1"
        assert crashed.json() == {"detail": "internal server error", "errors": [], "request_id": "boom-1"}
        embedder.broken = False
        samples = scrape(http)
    assert value(samples, "qa_http_requests_total", method="POST", route="/ask", status="500") == 1
    assert value(samples, "qa_answers_total", source="api", reason="answered") == 0


def test_answers_in_slack_are_counted_beside_those_of_the_api(
    seed_settings: Settings, seed_answerer: Answerer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack's side is the local stand-in (tests/slack_standin.py) speaking Slack's wire format."""
    fake = FakeSlack()
    with LiveServer(fake.app) as slack_server:
        fake.url = slack_server.url
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", f"{fake.url}/api/")
        app = create_app(seed_settings, answerer=seed_answerer)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            for event in (mention(JAPAN_QUESTION), direct("hello, who are you?"), direct(OFF_TOPIC)):
                body = callback(event)
                headers = {"Content-Type": "application/json", **sign(body)}
                assert http.post("/slack/events", content=body, headers=headers).status_code == 200
                fake.wait_for(replies_to(event["ts"]))
            forged = http.post("/slack/events", content=b"{}", headers={"X-Request-ID": "forged-1"})
            assert forged.status_code == 401 and forged.json()["request_id"] == "forged-1"
            samples = scrape(http)
    for reason in ("answered", "small_talk", "not_found"):
        assert value(samples, "qa_answers_total", source="slack", reason=reason) == 1, reason
        assert value(samples, "qa_answers_total", source="api", reason=reason) == 0, reason
    assert value(samples, "qa_http_requests_total", method="POST", route="/slack/events", status="401") == 1
