"""The leak matrix: what a key of each scope, a caller with no key and a revoked key can see and change, over
real HTTP on a corpus of three collections (hr, eng, default).

A key reads only its collections: /ask never cites, and GET /documents never lists, a document outside them;
GET or DELETE of such a document is 404, as for one that does not exist; an upload into a collection the key may
not write is 403, and /admin is 403 for all but an admin. The same question asked first by an admin and then by a
reader shows that no answer computed for one caller reaches another.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import LiveServer

from qa import collections, store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.keys import KeyFile

CORPUS = {
    "hr/salaries.txt": "The salary review for 2027 takes place in March. The HR contact is Maria Lund.",
    "eng/on-call.txt": "Deployments freeze on Fridays. The engineer on call this week is Tomas Berg.",
    "harbour.txt": "The harbour master of Valdoria is Ingrid Olsen. She has run the port since 2011.",
}
QUESTIONS = ["Who is the HR contact?", "Who is the engineer on call?", "Who is the harbour master?"]
HR = frozenset({"hr"})
SECRET_OF_ENG = "eng/on-call.txt"


@pytest.fixture(scope="module")
def served(e5: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("leaks")
    for name, text in CORPUS.items():
        (base / "seeds" / name).parent.mkdir(parents=True, exist_ok=True)
        (base / "seeds" / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    report, _ = build_index(settings, embedder=e5)
    assert not report.failed
    keys = KeyFile(settings.key_file_path())
    found = {
        "hr reader": keys.add("hr-reader", HR, frozenset(), False),
        "hr writer": keys.add("hr-writer", HR, HR, False),
        "admin": keys.add("ops", None, None, True),
        "revoked": keys.add("leaver", None, None, True),
    }
    keys.revoke("leaver")
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app, owner=False) as server:
        yield {"url": server.url, "keys": found, "seeds": settings.seeds_dir}


def _headers(served: dict, who: str) -> dict[str, str]:
    key = served["keys"].get(who)
    return {"Authorization": f"Bearer {key}"} if key else {}


READS: dict[str, frozenset[str] | None] = {"hr reader": HR, "hr writer": HR, "admin": None}


@pytest.mark.parametrize("who", ["admin", "hr reader", "hr writer"])
def test_ask_never_cites_outside_the_keys_collections(served: dict, who: str) -> None:
    for question in QUESTIONS:
        reply = httpx.post(
            f"{served['url']}/ask", json={"question": question}, headers=_headers(served, who), timeout=60
        )
        assert reply.status_code == 200, reply.text
        cited = [citation["document"] for citation in reply.json()["citations"]]
        assert all(collections.contains(READS[who], doc) for doc in cited), (who, question, cited)
        assert reply.headers["cache-control"] == "private, no-store"
    if who == "admin":  # the admin does see the others' documents: the filter above can fail
        reply = httpx.post(f"{served['url']}/ask", json={"question": QUESTIONS[1]}, headers=_headers(served, who))
        assert reply.json()["citations"][0]["document"] == SECRET_OF_ENG


def test_an_admins_answer_never_reaches_a_reader(served: dict) -> None:
    ask = {"question": QUESTIONS[1]}
    admin = httpx.post(f"{served['url']}/ask", json=ask, headers=_headers(served, "admin"), timeout=60).json()
    reader = httpx.post(f"{served['url']}/ask", json=ask, headers=_headers(served, "hr reader"), timeout=60).json()
    assert admin["citations"][0]["document"] == SECRET_OF_ENG
    assert SECRET_OF_ENG not in {citation["document"] for citation in reader["citations"]}
    assert "Tomas Berg" not in (reader["answer"] or "")


@pytest.mark.parametrize("who", ["admin", "hr reader", "hr writer"])
def test_documents_lists_only_the_keys_collections(served: dict, who: str) -> None:
    listed = httpx.get(f"{served['url']}/documents", headers=_headers(served, who)).json()
    ids = {document["id"] for document in listed["documents"]}
    expected = {doc for doc in CORPUS if collections.contains(READS[who], doc)}
    assert ids == expected and listed["total"] == len(expected)


@pytest.mark.parametrize("who", ["admin", "hr reader", "hr writer"])
def test_collections_and_filters_show_only_the_keys_collections(served: dict, who: str) -> None:
    url, headers = served["url"], _headers(served, who)
    shown = {c["name"]: c for c in httpx.get(f"{url}/collections", headers=headers).json()["collections"]}
    expected = {collections.of(doc) for doc in CORPUS if collections.contains(READS[who], doc)}
    assert {name for name, c in shown.items() if c["documents"]} == expected
    assert {name: c["writable"] for name, c in shown.items() if name in expected} == {
        name: who != "hr reader" for name in expected
    }
    # a collection the key can neither read nor write is not named at all (default held a document)
    assert set(shown) == expected
    # asking for a collection outside the scope narrows to nothing: no citation, no name from it
    asked = httpx.get(f"{url}/documents", params={"collection": "eng"}, headers=headers).json()
    assert [d["id"] for d in asked["documents"]] == ([SECRET_OF_ENG] if who == "admin" else [])
    reply = httpx.post(f"{url}/ask", json={"question": QUESTIONS[1], "collections": ["eng"]}, headers=headers)
    cited = {citation["document"] for citation in reply.json().get("citations", [])}
    assert (SECRET_OF_ENG in cited) is (who == "admin"), reply.text
    assert who == "admin" or "Tomas Berg" not in reply.text


@pytest.mark.parametrize("who", ["hr reader", "hr writer"])
def test_a_document_outside_the_scope_is_not_found_for_reading_or_deleting(served: dict, who: str) -> None:
    url, headers = served["url"], _headers(served, who)
    hidden = httpx.get(f"{url}/documents/{SECRET_OF_ENG}", headers=headers)
    missing = httpx.get(f"{url}/documents/eng/no-such-file.txt", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    # a deletion answers for a hidden document exactly as for a missing one, even for a key that may write nowhere
    gone = httpx.delete(f"{url}/documents/{SECRET_OF_ENG}", headers=headers)
    never = httpx.delete(f"{url}/documents/eng/no-such-file.txt", headers=headers)
    assert gone.status_code == never.status_code == 404
    assert gone.json()["detail"].replace(SECRET_OF_ENG, "X") == never.json()["detail"].replace(
        "eng/no-such-file.txt", "X"
    )
    assert (served["seeds"] / SECRET_OF_ENG).exists()
    assert httpx.get(f"{url}/documents/hr/salaries.txt", headers=headers).status_code == 200
    assert httpx.get(f"{url}/documents/{SECRET_OF_ENG}", headers=_headers(served, "admin")).status_code == 200


def test_uploads_and_deletions_need_write_scope_in_that_collection(served: dict) -> None:
    url = served["url"]
    memo = [("file", ("memo.txt", b"The new HR memo: the office closes early on Fridays."))]
    reader, writer = _headers(served, "hr reader"), _headers(served, "hr writer")
    assert httpx.post(f"{url}/documents", files=memo, data={"collection": "hr"}, headers=reader).status_code == 403
    assert httpx.post(f"{url}/documents", files=memo, data={"collection": "eng"}, headers=writer).status_code == 403
    assert httpx.delete(f"{url}/documents/hr/salaries.txt", headers=reader).status_code == 403
    assert not (served["seeds"] / "eng" / "memo.txt").exists() and (served["seeds"] / "hr/salaries.txt").exists()
    placed = httpx.post(f"{url}/documents", files=memo, data={"collection": "hr"}, headers=writer, timeout=120)
    assert placed.status_code == 201, placed.text
    assert httpx.delete(f"{url}/documents/hr/memo.txt", headers=writer, timeout=120).status_code == 204


@pytest.mark.parametrize("who", ["hr reader", "hr writer"])
def test_admin_is_refused_to_other_keys(served: dict, who: str) -> None:
    for method in ("GET", "POST"):
        response = httpx.request(method, f"{served['url']}/admin/reindex", headers=_headers(served, who))
        assert response.status_code == 403, (who, method)


@pytest.mark.parametrize("who", ["no key", "revoked"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ask"),
        ("GET", "/documents"),
        ("GET", "/collections"),
        ("GET", "/documents/hr/salaries.txt"),
        ("GET", f"/documents/{SECRET_OF_ENG}"),
        ("DELETE", "/documents/hr/salaries.txt"),
        ("POST", "/documents"),
        ("GET", "/admin/reindex"),
        ("POST", "/admin/reindex"),
    ],
)
def test_no_key_or_a_revoked_key_sees_nothing(served: dict, who: str, method: str, path: str) -> None:
    kwargs: dict = {"headers": _headers(served, who), "timeout": 60}
    if path == "/ask":
        kwargs["json"] = {"question": QUESTIONS[0]}
    if method == "POST" and path == "/documents":
        kwargs["files"] = [("file", ("x.txt", b"x"))]
    response = httpx.request(method, served["url"] + path, **kwargs)
    assert response.status_code == 401, response.text
    assert "Maria Lund" not in response.text and "Tomas Berg" not in response.text
    assert (served["seeds"] / "hr/salaries.txt").exists()
