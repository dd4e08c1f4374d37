"""Collections over real HTTP with the real e5 model: uploads land in a collection's folder, every citation and
listing names its collection, and ``/ask``, ``GET /documents`` and the document routes see only the
collections asked for and the caller may read."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
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

HOLIDAYS = "Every employee of Valdoria Shipping has twenty-eight days of paid holiday a year."
HOLIDAYS_QUESTION = "How many days of paid holiday does an employee get?"
DEPLOY = "Valdoria Shipping deploys its booking service every Tuesday at noon, after the tests pass."
DEPLOY_QUESTION = "When is the booking service deployed?"


class AsCaller:
    """Test-only ASGI middleware: records a caller on every request, where the auth dependency will
    (``request.state.caller``, read by qa.access.caller_of)."""

    def __init__(self, app: Any, caller: Caller) -> None:
        self.app, self.caller = app, caller

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["caller"] = self.caller
        await self.app(scope, receive, send)


def _serve(tiny_settings: Settings, base: Path, e5: Embedder, caller: Caller | None = None) -> LiveServer:
    shutil.copytree(tiny_settings.seeds_dir, base / "seeds")
    shutil.copytree(tiny_settings.index_dir, base / "index")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    if caller is not None:
        app.add_middleware(AsCaller, caller=caller)
    return LiveServer(app)


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
    with served as server, httpx.Client(base_url=server.url, timeout=120) as http:
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
                {"name": "default", "documents": 0, "writable": False},  # listed always, its count not told
                {"name": "hr", "documents": 1, "writable": False},
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
