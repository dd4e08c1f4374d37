"""Upload, list and delete documents over real HTTP, with the real e5 model: what a user of the API sees."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import TINY_ANSWER, LiveServer
from docfactory import make_pdf
from rawhttp import raw_request

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder

FERRY = "The night ferry to Kirkwall leaves at 23:45 from pier four."
FERRY_QUESTION = "When does the night ferry leave?"
LIGHTHOUSE = "The lighthouse on Skerry Point was automated in 1998 and is painted red."
HTML_NAME = "<img src=x onerror=alert(1)>lighthouse.txt"


@pytest.fixture()
def service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[httpx.Client, Settings]]:
    """The tiny corpus (harbour.txt, bakery.txt) copied into a private folder, served with the real model."""
    shutil.copytree(tiny_settings.seeds_dir, tmp_path / "seeds")
    shutil.copytree(tiny_settings.index_dir, tmp_path / "index")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", max_upload_mb=1)
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        yield http, settings


def _files(*items: tuple[str, bytes | str]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("file", (name, data.encode() if isinstance(data, str) else data)) for name, data in items]


def _seeds(settings: Settings) -> set[str]:
    return {p.relative_to(settings.seeds_dir).as_posix() for p in settings.seeds_dir.rglob("*")}


def _listing(http: httpx.Client, limit: int) -> list[dict]:
    """Every document, following next_offset page by page."""
    documents: list[dict] = []
    offset: int | None = 0
    while offset is not None:
        page = http.get("/documents", params={"offset": offset, "limit": limit}).json()
        assert page["offset"] == offset and page["limit"] == limit
        documents += page["documents"]
        offset = page["next_offset"]
    assert len(documents) == page["total"]
    return documents


def test_upload_is_searchable_when_it_answers_then_listed_then_deleted(service, tiny_settings: Settings) -> None:
    http, settings = service
    response = http.post("/documents", files=_files(("../../ferry.txt", FERRY), (HTML_NAME, LIGHTHOUSE)))
    assert response.status_code == 201, response.text
    ferry, lighthouse = response.json()["documents"]
    # no path part survives: the file lands in the seeds folder itself, never above it
    assert ferry == {"id": "ferry.txt", "title": "Ferry", "status": "indexed", "error": None}
    assert not (settings.seeds_dir.parent / "ferry.txt").exists()
    # markup in a name is left as harmless text: no "<" or ">" that a page could take for a tag
    assert lighthouse["status"] == "indexed" and lighthouse["id"] == "_img src=x onerror=alert(1)_lighthouse.txt"
    assert _seeds(settings) == {"bakery.txt", "harbour.txt", "ferry.txt", lighthouse["id"]}

    # searchable as soon as the upload answered: no waiting, no polling
    top = http.post("/ask", json={"question": FERRY_QUESTION}).json()["citations"][0]
    assert top["document"] == "ferry.txt" and FERRY in top["text"] and top["page"] is None
    assert http.get(f"/documents/{lighthouse['id']}").json()["text"] == LIGHTHOUSE

    listed = _listing(http, limit=3)
    assert [d["id"] for d in listed] == sorted(["bakery.txt", "harbour.txt", "ferry.txt", lighthouse["id"]])
    entry = next(d for d in listed if d["id"] == "ferry.txt")
    assert entry["size"] == len(FERRY.encode()) and entry["pages"] is None and entry["title"] == "Ferry"
    # indexed now, in the generation the upload built; the unchanged harbour.txt keeps its earlier time
    assert entry["indexed_at"] == store.read_manifest(settings.index_dir)["built_at"]
    harbour = next(d for d in listed if d["id"] == "harbour.txt")
    assert (
        harbour["indexed_at"] == store.read_manifest(tiny_settings.index_dir)["documents"]["harbour.txt"]["indexed_at"]
    )

    assert http.delete("/documents/ferry.txt").status_code == 204
    assert "ferry.txt" not in _seeds(settings)
    gone = http.get("/documents/ferry.txt")
    assert gone.status_code == 404 and "ferry.txt" in gone.json()["detail"]
    cited = {
        c["document"] for c in http.post("/ask", json={"question": FERRY_QUESTION, "top_k": 20}).json()["citations"]
    }
    assert "ferry.txt" not in cited and cited
    assert [d["id"] for d in _listing(http, limit=100)] == sorted(["bakery.txt", "harbour.txt", lighthouse["id"]])
    assert http.delete("/documents/ferry.txt").status_code == 404


def test_a_failed_file_is_reported_with_its_reason_while_the_others_index(service) -> None:
    http, settings = service
    files = _files(
        ("ferry.txt", FERRY),
        ("scan.pdf", b"%PDF-1.4 this is not really a PDF"),
        ("binary.txt", b"MZ\x00\x00\x90\x00 not text"),
        ("setup.exe", b"MZ\x90\x00"),
        ("empty.md", b""),
    )
    response = http.post("/documents", files=files)
    assert response.status_code == 201
    results = {d["id"]: d for d in response.json()["documents"]}
    assert results["ferry.txt"]["status"] == "indexed"
    reasons = {name: d["error"] for name, d in results.items() if d["status"] == "failed"}
    assert set(reasons) == {"scan.pdf", "binary.txt", "setup.exe", "empty.md"}
    assert "PDF" in reasons["scan.pdf"]
    assert "binary" in reasons["binary.txt"]
    assert "unsupported file type '.exe'" in reasons["setup.exe"]
    assert "empty" in reasons["empty.md"]
    # refused files never stay in the seeds folder (nor does the staging area)
    assert _seeds(settings) == {"bakery.txt", "harbour.txt", "ferry.txt"}
    assert http.post("/ask", json={"question": FERRY_QUESTION}).json()["citations"][0]["document"] == "ferry.txt"


def test_when_no_file_can_be_indexed_it_is_422_naming_each_reason(service) -> None:
    http, settings = service
    response = http.post("/documents", files=_files(("setup.exe", b"MZ"), ("notes.txt", b"\x00\x01\x02")))
    assert response.status_code == 422
    body = response.json()
    assert {item["field"] for item in body["errors"]} == {"setup.exe", "notes.txt"}
    assert "unsupported file type '.exe'" in body["detail"] and "notes.txt" in body["detail"]
    assert _seeds(settings) == {"bakery.txt", "harbour.txt"}
    assert http.post("/ask", json={"question": "Who is the harbour master?"}).json()["answer"] == TINY_ANSWER


def test_same_name_replaces_and_a_refused_replacement_keeps_the_earlier_version(service) -> None:
    http, settings = service
    newer = "The harbour master of Valdoria is now Per Hansen, since March."
    response = http.post("/documents", files=_files(("harbour.txt", newer)))
    assert response.status_code == 201 and response.json()["documents"][0]["status"] == "indexed"
    assert http.get("/documents/harbour.txt").json()["text"] == newer

    refused = http.post("/documents", files=_files(("harbour.txt", b"MZ\x00\x00 binary, not text")))
    assert refused.status_code == 422
    assert (settings.seeds_dir / "harbour.txt").read_text(encoding="utf-8") == newer
    assert http.get("/documents/harbour.txt").json()["text"] == newer
    answer = http.post("/ask", json={"question": "Who is the harbour master of Valdoria?"}).json()
    assert answer["citations"][0]["document"] == "harbour.txt" and "Per Hansen" in answer["answer"]


def test_a_pdf_upload_reports_its_pages(service) -> None:
    http, _ = service
    pdf = make_pdf("The museum of tides opens at nine and closes at five.", title="Museum of tides")
    response = http.post("/documents", files=_files(("museum.pdf", pdf)))
    assert response.json()["documents"][0] == {
        "id": "museum.pdf",
        "title": "Museum of tides",
        "status": "indexed",
        "error": None,
    }
    document = http.get("/documents/museum.pdf").json()
    assert isinstance(document["pages"], list) and all(isinstance(p, int) for p in document["pages"])


def test_upload_over_the_limit_is_413_naming_it(service) -> None:
    http, settings = service
    big = b"The tide tables. " * (70 * 1024)  # 1.1 MB, over the 1 MB configured for this service
    response = http.post("/documents", files=_files(("tides.txt", big)))
    assert response.status_code == 413
    assert response.json()["detail"] == "upload is over the 1 MB limit (QA_MAX_UPLOAD_MB)"

    def stream() -> Iterator[bytes]:  # no Content-Length: the bytes are counted as they arrive
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="tides.txt"\r\n\r\n'
        for _ in range(1200):
            yield b"x" * 1024
        yield b"\r\n--b--\r\n"

    chunked = http.post("/documents", content=stream(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and "QA_MAX_UPLOAD_MB" in chunked.json()["detail"]
    assert _seeds(settings) == {"bakery.txt", "harbour.txt"}
    # an upload under the limit is not held to the 64 KiB limit of /ask bodies
    response = http.post("/documents", files=_files(("tides.txt", b"The tide tables list high water. " * 3000)))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("content", "content_type"), [(b'{"file": "x"}', "application/json"), (b"file=x", "text/plain")]
)
def test_upload_that_is_not_multipart_is_415(service, content: bytes, content_type: str) -> None:
    http, _ = service
    response = http.post("/documents", content=content, headers={"content-type": content_type})
    assert response.status_code == 415 and "multipart/form-data" in response.json()["detail"]


def test_upload_without_a_file_part_is_422(service) -> None:
    http, _ = service
    response = http.post("/documents", files=[("document", ("a.txt", b"hello"))])
    assert response.status_code == 422 and "'file'" in response.json()["detail"]


@pytest.mark.parametrize("trick", ["../README.md", "..%2Fharbour.txt", "%2E%2E/%2E%2E/README.md", "/etc/passwd"])
def test_delete_path_tricks_are_404_and_touch_nothing(service, trick: str) -> None:
    http, settings = service
    outside = settings.seeds_dir.parent / "README.md"
    outside.write_text("not a document")
    status, body = raw_request(str(http.base_url), "DELETE", f"/documents/{trick}")  # sent as is, not normalized
    assert status == 404 and "no document" in body["detail"]
    assert outside.exists() and _seeds(settings) == {"bakery.txt", "harbour.txt"}


def test_listing_pages_are_validated(service) -> None:
    http, _ = service
    for params, field in [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset")]:
        response = http.get("/documents", params=params)
        assert response.status_code == 422 and field in response.json()["detail"]
    page = http.get("/documents", params={"offset": 5}).json()
    assert page == {"documents": [], "total": 2, "offset": 5, "limit": 100, "next_offset": None}


def test_wrong_methods_on_documents_are_405_listing_the_allowed_ones(service) -> None:
    http, _ = service
    collection = http.put("/documents", content=b"x")
    assert collection.status_code == 405 and collection.headers["allow"] == "GET, POST"
    item = http.post("/documents/harbour.txt", json={})
    assert item.status_code == 405 and item.headers["allow"] == "DELETE, GET"


def test_listing_refuses_a_query_parameter_it_does_not_take(service) -> None:
    http, _ = service
    response = http.get("/documents", params={"ofset": 10})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.ofset" and "offset" in response.json()["detail"]
