"""Incremental re-indexing and deletion, the same assertions for the FAISS store and for a real Milvus server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.indexer import build_index

LIGHTHOUSE = "The lighthouse on Kelp Island was built in 1874 and is still lit every night by a keeper."
BAKERY = "The bakery on Mill Street sells rye bread baked in a wood-fired oven since 1921."
FERRY = "A new ferry now links Kelp Island to the mainland twice a day, taking forty minutes."


@pytest.fixture(params=["faiss", "milvus"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "island.txt").write_text(f"Kelp Island\n\n{LIGHTHOUSE}\n", encoding="utf-8")
    (seeds / "town.md").write_text(f"# Town\n\n{BAKERY}\n", encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5", store=request.param)
    if request.param == "milvus":
        uri = request.getfixturevalue("milvus_uri")
        settings = settings.model_copy(update={"milvus_uri": uri, "milvus_collection": f"inc_{uuid.uuid4().hex[:8]}"})
    return settings


@pytest.fixture()
def served(store_settings: Settings, e5) -> Iterator[tuple[Answerer, httpx.Client]]:
    answerer = Answerer(e5, None)
    with (
        LiveServer(create_app(store_settings, answerer=answerer)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield answerer, http


def _ask(http: httpx.Client, question: str) -> dict:
    response = http.post("/ask", json={"question": question, "top_k": 3})
    assert response.status_code == 200, response.text
    return response.json()


def test_add_change_delete_readd(store_settings: Settings, served, e5) -> None:
    answerer, http = served
    report, index = build_index(store_settings, embedder=e5)
    answerer.swap(index)
    assert sorted(report.added) == ["island.txt", "town.md"] and report.embedded > 0
    assert "1874" in _ask(http, "When was the lighthouse built?")["answer"]
    assert http.get("/healthz").json()["documents"] == 2

    again, _ = build_index(store_settings, embedder=e5)
    assert sorted(again.unchanged) == ["island.txt", "town.md"] and again.embedded == 0 and not again.changed

    island = store_settings.seeds_dir / "island.txt"
    island.write_text(f"Kelp Island\n\n{LIGHTHOUSE} {FERRY}\n", encoding="utf-8")
    changed, index = build_index(store_settings, embedder=e5)
    answerer.swap(index)
    assert changed.updated == ["island.txt"] and changed.unchanged == ["town.md"]
    assert 0 < changed.embedded <= 4  # only the changed file's new texts: its chunk, the new sentence, contexts
    body = _ask(http, "How long does the ferry to the mainland take?")
    assert "forty minutes" in body["answer"] and body["citations"][0]["document"] == "island.txt"

    (store_settings.seeds_dir / "town.md").unlink()
    removed, index = build_index(store_settings, embedder=e5)
    answerer.swap(index)
    assert removed.removed == ["town.md"] and removed.embedded == 0
    body = _ask(http, "Where can I buy rye bread?")
    assert all(c["document"] == "island.txt" for c in body["citations"])
    assert http.get("/documents/town.md").status_code == 404
    assert http.get("/healthz").json()["documents"] == 1

    # the persistent embedding cache remembers the deleted file's texts: putting it back embeds nothing
    (store_settings.seeds_dir / "town.md").write_text(f"# Town\n\n{BAKERY}\n", encoding="utf-8")
    readded, index = build_index(store_settings, embedder=e5)
    answerer.swap(index)
    assert readded.added == ["town.md"] and readded.embedded == 0
    assert _ask(http, "Where can I buy rye bread?")["citations"][0]["document"] == "town.md"
