"""Collections over real HTTP with the real e5 model: uploads land in a collection's folder, every citation and
listing names its collection, and ``/ask``, ``GET /documents`` and the document routes see only the
collections asked for and the caller may read."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import synthetic_corpus
from conftest import LiveServer

from qa import ranking, store
from qa.access import Caller
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.keys import KeyFile
from qa.library import Library

HOLIDAYS = "Every employee of Valdoria Shipping has twenty-eight days of paid holiday a year."
HOLIDAYS_QUESTION = "How many days of paid holiday does an employee get?"
DEPLOY = "Valdoria Shipping deploys its booking service every Tuesday at noon, after the tests pass."
DEPLOY_QUESTION = "When is the booking service deployed?"


def _serve(tiny_settings: Settings, base: Path, e5: Embedder, caller: Caller | None = None) -> LiveServer:
    """The corpus served; with ``caller``, a key of its scopes exists (``base/key``) and requests need one."""
    shutil.copytree(tiny_settings.seeds_dir, base / "seeds")
    shutil.copytree(tiny_settings.index_dir, base / "index")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    if caller is not None:
        key = KeyFile(settings.key_file_path()).add(caller.name, caller.read, caller.write, caller.admin)
        (base / "key").write_text(key)
    return LiveServer(create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir))))


def _upload(http: httpx.Client, collection: str | None, name: str, text: str) -> httpx.Response:
    data = {} if collection is None else {"collection": collection}
    return http.post("/documents", files=[("file", (name, text.encode()))], data=data)


@pytest.fixture()
def service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[httpx.Client, Path]]:
    """The tiny corpus (harbour.txt, bakery.txt in ``default``) plus one document each in ``hr`` and ``eng``."""
    with _serve(tiny_settings, tmp_path, e5) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        assert _upload(http, "hr", "holidays.txt", HOLIDAYS).status_code == 201
        assert _upload(http, "eng", "deploy.txt", DEPLOY).status_code == 201
        yield http, tmp_path / "seeds"


def _cited(http: httpx.Client, question: str, **body: Any) -> list[dict]:
    response = http.post("/ask", json={"question": question, "top_k": 10, **body})
    assert response.status_code == 200, response.text
    return response.json()["citations"]


def test_uploads_land_in_their_collection_and_every_listing_and_citation_names_it(service) -> None:
    http, seeds = service
    assert (seeds / "hr" / "holidays.txt").read_text() == HOLIDAYS
    assert (seeds / "eng" / "deploy.txt").is_file()
    listing = http.get("/documents").json()
    assert {(d["id"], d["collection"]) for d in listing["documents"]} == {
        ("bakery.txt", "default"),
        ("eng/deploy.txt", "eng"),
        ("harbour.txt", "default"),
        ("hr/holidays.txt", "hr"),
    }
    document = http.get("/documents/hr/holidays.txt").json()
    assert document["collection"] == "hr" and document["text"] == HOLIDAYS
    citations = _cited(http, HOLIDAYS_QUESTION)
    assert citations[0]["document"] == "hr/holidays.txt" and citations[0]["collection"] == "hr"
    assert {c["collection"] for c in citations} == {"hr", "eng", "default"}  # no scope asked: every collection
    assert http.get("/collections").json() == {
        "collections": [
            {"name": "default", "documents": 2, "writable": True},
            {"name": "eng", "documents": 1, "writable": True},
            {"name": "hr", "documents": 1, "writable": True},
        ]
    }


def test_ask_with_collections_cites_only_those(service) -> None:
    http, _ = service
    only_eng = _cited(http, HOLIDAYS_QUESTION, collections=["eng"])
    assert only_eng and {c["document"] for c in only_eng} == {"eng/deploy.txt"}
    two = _cited(http, DEPLOY_QUESTION, collections=["hr", "default"])
    assert {c["collection"] for c in two} == {"hr", "default"}
    assert _cited(http, DEPLOY_QUESTION, collections=["eng"])[0]["document"] == "eng/deploy.txt"
    nothing = http.post("/ask", json={"question": DEPLOY_QUESTION, "collections": ["sales"]}).json()
    assert nothing["citations"] == [] and nothing["no_answer"]


def test_listing_filters_by_collection_repeated_or_comma_separated(service) -> None:
    http, _ = service

    def ids(params: list[tuple[str, str]]) -> list[str]:
        page = http.get("/documents", params=params).json()
        assert page["total"] == len(page["documents"])
        return [d["id"] for d in page["documents"]]

    assert ids([("collection", "hr")]) == ["hr/holidays.txt"]
    assert ids([("collection", "hr"), ("collection", "eng")]) == ["eng/deploy.txt", "hr/holidays.txt"]
    assert ids([("collection", "eng,default")]) == ["bakery.txt", "eng/deploy.txt", "harbour.txt"]
    assert ids([("collection", "sales")]) == []
    page = http.get("/documents", params={"collection": "default", "limit": 1, "offset": 1}).json()
    assert [d["id"] for d in page["documents"]] == ["harbour.txt"] and page["total"] == 2


def test_bad_collection_names_are_422_naming_the_rule_and_store_nothing(service) -> None:
    http, seeds = service
    before = sorted(p.relative_to(seeds).as_posix() for p in seeds.rglob("*"))
    for bad in ("HR", "../etc", "", "a" * 65, "hr eng"):
        upload = _upload(http, bad, "x.txt", "Some text about nothing in particular.")
        assert upload.status_code == 422 and "lowercase letters, digits" in upload.json()["detail"], bad
    assert sorted(p.relative_to(seeds).as_posix() for p in seeds.rglob("*")) == before
    ask = http.post("/ask", json={"question": DEPLOY_QUESTION, "collections": ["eng", "Eng!"]})
    assert ask.status_code == 422 and "collections" in ask.json()["detail"] and "Eng!" in ask.json()["detail"]
    listing = http.get("/documents", params={"collection": "hr,BAD"})
    assert listing.status_code == 422 and "'BAD'" in listing.json()["detail"]


def test_uploading_without_a_collection_goes_to_default(service) -> None:
    http, seeds = service
    response = _upload(http, None, "notes.txt", "The canteen closes at three on Fridays.")
    assert response.status_code == 201 and response.json()["documents"][0]["id"] == "notes.txt"
    assert (seeds / "notes.txt").is_file()
    assert _upload(http, "default", "more.txt", "Parking is free after six.").json()["documents"][0]["id"] == "more.txt"


def test_a_collection_whose_name_a_file_holds_is_a_409(service) -> None:
    http, seeds = service
    (seeds / "sales").write_text("a file named like a collection")
    response = _upload(http, "sales", "plan.txt", "The sales plan for the spring.")
    assert response.status_code == 409 and "sales" in response.json()["detail"]
    assert (seeds / "sales").read_text() == "a file named like a collection"


def test_a_reader_of_one_collection_never_sees_another(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> None:
    admin_base, reader_base = tmp_path / "admin", tmp_path / "reader"
    admin_base.mkdir()
    with _serve(tiny_settings, admin_base, e5) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        assert _upload(http, "hr", "holidays.txt", HOLIDAYS).status_code == 201
        assert _upload(http, "eng", "deploy.txt", DEPLOY).status_code == 201
    reader_base.mkdir()  # the same corpus, served to a key that reads hr alone
    reader = Caller("hr-reader", read=frozenset({"hr"}), write=frozenset())
    served = _serve(Settings(seeds_dir=admin_base / "seeds", index_dir=admin_base / "index"), reader_base, e5, reader)
    auth = {"Authorization": f"Bearer {(reader_base / 'key').read_text()}"}
    with served as server, httpx.Client(base_url=server.url, timeout=120, headers=auth) as http:
        assert [d["id"] for d in http.get("/documents").json()["documents"]] == ["hr/holidays.txt"]
        assert http.get("/documents", params={"collection": "eng"}).json()["documents"] == []
        for question in (DEPLOY_QUESTION, HOLIDAYS_QUESTION):
            assert {c["collection"] for c in _cited(http, question)} == {"hr"}
            assert {c["collection"] for c in _cited(http, question, collections=["eng", "hr"])} == {"hr"}
        hidden, missing = http.get("/documents/eng/deploy.txt"), http.get("/documents/eng/nothing.txt")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace("deploy", "nothing") == missing.json()["detail"]
        assert http.delete("/documents/eng/deploy.txt").status_code == 404
        assert http.get("/documents/hr/holidays.txt").status_code == 200
        refused = http.delete("/documents/hr/holidays.txt")
        assert refused.status_code == 403 and "'hr'" in refused.json()["detail"]
        upload = _upload(http, "hr", "more.txt", "More about holidays.")
        assert upload.status_code == 403 and "'hr'" in upload.json()["detail"]
        assert http.get("/collections").json() == {
            "collections": [
                {"name": "hr", "documents": 1, "writable": False},  # default (it holds documents) is not named
            ]
        }
    assert (reader_base / "seeds" / "eng" / "deploy.txt").is_file()
    assert (reader_base / "seeds" / "hr" / "holidays.txt").is_file()


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "hnsw"])
def test_a_small_collection_in_a_large_corpus_gets_the_top_k_it_gets_alone(tmp_path: Path, kind: str) -> None:
    """20 documents in ``small`` among 3,000 others (12,080 rows): each search inside ``small`` ranks exactly as
    a store holding ``small`` alone, where the corpus's own top 30 holds too few of its rows to post-filter."""
    small = synthetic_corpus.documents("small/", 20, 4, seed=1)
    others = [
        *synthetic_corpus.documents("", 1000, 4, seed=2),
        *synthetic_corpus.documents("big/", 1000, 4, seed=3),
        *synthetic_corpus.documents("zoo/", 1000, 4, seed=4, languages=("fr", "en")),
    ]
    everything = sorted([*small, *others], key=lambda rows: rows.doc.id)
    store.save(tmp_path / "all", *store.assemble(synthetic_corpus.HEADER, everything, kind))
    store.save(tmp_path / "alone", *store.assemble(synthetic_corpus.HEADER, small))
    corpus, alone = store.load(tmp_path / "all"), store.load(tmp_path / "alone")
    assert corpus.manifest["search_index"]["kind"] == kind and corpus.num_chunks == 12_080
    scope = frozenset({"small"})
    drowned = 0
    for query in synthetic_corpus.queries(20, seed=5):
        inside = ranking.search(corpus, query, 10, scope)
        expected = ranking.search(alone, query, 10)
        assert [(h.chunk.doc_id, h.chunk.start) for h in inside] == [(h.chunk.doc_id, h.chunk.start) for h in expected]
        assert [h.score for h in inside] == pytest.approx([h.score for h in expected], abs=2e-3)
        everywhere = ranking.search(corpus, query, 30)
        drowned += sum(h.chunk.doc_id.startswith("small/") for h in everywhere) < 10
    assert drowned == 20  # post-filtering the corpus's top 30 would have left fewer than 10 every time
    assert ranking.search(corpus, synthetic_corpus.queries(1, seed=6)[0], 10, frozenset({"nothing"})) == []


XQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xquad"
PARAGRAPHS = 30


def _xquad(language: str) -> list[tuple[str, list[str]]]:
    """XQuAD's paragraphs of one language in order, each with its questions."""
    data = json.loads((XQUAD / f"xquad.{language}.json").read_text(encoding="utf-8"))["data"]
    return [(p["context"], [qa["question"] for qa in p["qas"]]) for article in data for p in article["paragraphs"]]


def test_recall_at_1_inside_a_collection_equals_recall_of_that_collection_alone(tmp_path: Path, e5: Embedder) -> None:
    """30 German XQuAD paragraphs as the collection ``de``, among the same paragraphs in English, Greek and
    Chinese: asked inside ``de``, every question's top document (and so recall@1) is what an index holding
    ``de`` alone gives, though the corpus's other languages would shift German rows if their statistics
    counted (qa.ranking corrects a scope by its own)."""
    german = _xquad("de")[:PARAGRAPHS]
    seeds = tmp_path / "seeds"
    (seeds / "de").mkdir(parents=True)
    for i, (text, _) in enumerate(german):
        (seeds / "de" / f"p{i:03d}.txt").write_text(text, encoding="utf-8")
    for language in ("en", "el", "zh"):
        for i, (text, _) in enumerate(_xquad(language)[:PARAGRAPHS]):
            (seeds / f"{language}-p{i:03d}.txt").write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5")
    report, corpus = build_index(settings, embedder=e5)
    assert not report.failed and corpus is not None and corpus.num_documents == 4 * PARAGRAPHS
    mine = corpus.document_ids(frozenset({"de"}))
    store.save(tmp_path / "alone", *store.assemble(corpus.manifest, [corpus.document_rows(d) for d in mine]))
    alone = store.load(tmp_path / "alone")
    assert corpus.language_stats().offsets() and not alone.language_stats().offsets()
    answerer, scope = Answerer(e5, corpus), frozenset({"de"})
    questions = [(f"de/p{i:03d}.txt", question) for i, (_, asked) in enumerate(german) for question in asked]
    inside = [answerer.ask(q, 1, collections=scope).citations[0].document == doc for doc, q in questions]
    everywhere = [answerer.ask(q, 1).citations[0].document == doc for doc, q in questions]
    answerer.swap(alone)  # the same answerer: its cache of question vectors spares the encoder a second pass
    by_itself = [answerer.ask(q, 1).citations[0].document == doc for doc, q in questions]
    assert len(questions) > 100
    assert inside == by_itself  # the same questions right and wrong: recall@1 equal, question by question
    assert sum(everywhere) < sum(inside)  # unscoped, the other languages' translations compete


def test_listing_reads_only_the_page_never_a_documents_text(tmp_path: Path) -> None:
    """3,020 documents: a page of one collection is listed from the manifest alone; the texts file could be gone."""
    documents = [*synthetic_corpus.documents("", 3000, 2, seed=1), *synthetic_corpus.documents("hr/", 20, 2, seed=2)]
    store.save(tmp_path / "index", *store.assemble(synthetic_corpus.HEADER, sorted(documents, key=lambda r: r.doc.id)))
    data = store.load(tmp_path / "index")
    texts = store.current_generation(tmp_path / "index") / "texts.npy"
    with texts.open("r+b") as handle:
        handle.truncate(128)  # every text unreadable from here on: a listing that decoded one would fail
    library = Library(tmp_path / "seeds", reindexer=None, answerer=lambda: SimpleNamespace(index=data))  # type: ignore[arg-type]
    page, total = library.page(10, 3, frozenset({"hr"}))
    assert total == 20 and [(s.id, s.title, s.collection) for s in page] == [
        (f"hr/doc-{i:04d}.txt", f"hr/{i}", "hr") for i in (10, 11, 12)
    ]
    page, total = library.page(2999, 2)
    assert total == 3020 and [s.id for s in page] == ["doc-2999.txt", "hr/doc-0000.txt"]
    assert library.collections() == {"default": 3000, "hr": 20}
    with pytest.raises(OSError):
        data.document("hr/doc-0010.txt")
