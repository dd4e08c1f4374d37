"""Request limits over real HTTP: body size (413, declared or streamed), content type (415), history, path tricks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from conftest import JAPAN_QUESTION

from qa.limits import MAX_BODY_BYTES


def _assert_error(response: httpx.Response, status: int, words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "errors", "request_id"} and words in body["detail"]
    return body


def test_body_over_64_kib_is_413_before_parsing(client: httpx.Client) -> None:
    payload = json.dumps({"question": "x" * (MAX_BODY_BYTES + 10)}).encode()
    response = client.post("/ask", content=payload, headers={"content-type": "application/json"})
    _assert_error(response, 413, "64 KiB")


def test_chunked_body_over_64_kib_is_counted_as_it_streams(client: httpx.Client) -> None:
    def stream() -> Iterator[bytes]:  # no Content-Length: httpx sends Transfer-Encoding: chunked
        yield b'{"question": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    response = client.post("/ask", content=stream(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    _assert_error(response, 413, "64 KiB")


def test_chunked_body_under_the_limit_is_answered(client: httpx.Client) -> None:
    def stream() -> Iterator[bytes]:
        yield b'{"question": '
        yield json.dumps(JAPAN_QUESTION).encode() + b"}"

    response = client.post("/ask", content=stream(), headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["citations"]


def test_body_under_the_limit_but_question_too_long_is_422(client: httpx.Client) -> None:
    response = client.post("/ask", json={"question": "x" * 2001})
    body = _assert_error(response, 422, "question")
    assert "2000" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", None],
)
def test_wrong_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/ask", content=json.dumps({"question": JAPAN_QUESTION}).encode(), headers=headers)
    _assert_error(response, 415, "application/json")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.qa+json"])
def test_json_content_types_are_accepted(client: httpx.Client, content_type: str) -> None:
    response = client.post(
        "/ask", content=json.dumps({"question": JAPAN_QUESTION}).encode(), headers={"content-type": content_type}
    )
    assert response.status_code == 200


def test_history_over_20_turns_is_422(client: httpx.Client) -> None:
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi"} for i in range(21)]
    body = _assert_error(client.post("/ask", json={"question": "ok?", "history": history}), 422, "history")
    assert any(item["field"] == "history" for item in body["errors"])


def test_history_over_20000_characters_is_422(client: httpx.Client) -> None:
    history = [{"role": "user", "content": "a" * 10_000}, {"role": "assistant", "content": "b" * 10_001}]
    body = _assert_error(client.post("/ask", json={"question": "ok?", "history": history}), 422, "history")
    assert "20001 characters" in body["detail"]


def test_history_within_limits_is_answered(client: httpx.Client) -> None:
    history = [{"role": "user", "content": "Tell me about Japan."}, {"role": "assistant", "content": "Sure."}]
    response = client.post("/ask", json={"question": JAPAN_QUESTION, "history": history})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "trick",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%252e%252e%252fREADME.md",  # double-encoded
        "..%5C..%5Cetc%5Cpasswd",  # backslashes
        "%2F%2Fetc%2Fpasswd",
        "us-japan-security-talks.txt%00.md",  # NUL byte
        "US-JAPAN-SECURITY-TALKS.TXT",
        "us-japan-security-talks.txt/",
        "%C0%AE%C0%AE/README.md",  # overlong UTF-8 dots
    ],
)
def test_document_path_tricks_are_404(client: httpx.Client, trick: str) -> None:
    # build the URL by hand so the client does not normalize the trick away
    request = client.build_request("GET", "/documents/x")
    request.url = request.url.copy_with(raw_path=f"/documents/{trick}".encode())
    response = client.send(request)
    _assert_error(response, 404, "no document")


@pytest.mark.parametrize(
    ("method", "path", "allow"), [("GET", "/ask", "POST"), ("DELETE", "/admin/reindex", "GET, POST")]
)
def test_wrong_method_is_405_listing_every_allowed_method(client: httpx.Client, method: str, path: str, allow: str):
    # the web page is mounted at "/", so without care a GET /ask would fall through to it as a 404
    response = client.request(method, path)
    _assert_error(response, 405, "Method Not Allowed")
    assert response.headers["allow"] == allow
