"""QA_API_KEY on and off, admin access, CORS, and the security headers, over real HTTP (scoped keys and the
session token: test_keys.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, LiveServer

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.security import CSP, DOCS_CSP

KEY = "s3cret-key-for-tests"
DOC = "/documents/us-japan-security-talks.txt"


@pytest.fixture(scope="module")
def keyed(seed_settings: Settings, seed_answerer: Answerer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seed service with QA_API_KEY set, CORS opened for one origin, and a web page to serve."""
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><title>qa</title><script src='app.js'></script>")
    settings = seed_settings.model_copy(
        update={"api_key": KEY, "cors_origins": "https://chat.example.org, https://other.example.org", "web_dir": web}
    )
    with LiveServer(create_app(settings, answerer=seed_answerer)) as server:
        yield server.url


def _unauthorized(response: httpx.Response, words: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"detail", "errors", "request_id"} and words in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "missing API key"),
        ({"Authorization": f"Bearer {KEY}x"}, "wrong or revoked API key"),
        ({"Authorization": f"Bearer {KEY[:-1]}"}, "wrong or revoked API key"),
        ({"Authorization": f"Basic {KEY}"}, "missing API key"),
        ({"Authorization": KEY}, "missing API key"),
    ],
)
def test_with_a_key_ask_and_documents_refuse_without_it(keyed: str, headers: dict, words: str) -> None:
    _unauthorized(httpx.post(f"{keyed}/ask", json={"question": JAPAN_QUESTION}, headers=headers), words)
    _unauthorized(httpx.get(f"{keyed}{DOC}", headers=headers), words)
    _unauthorized(httpx.get(f"{keyed}/documents/nope.txt", headers=headers), words)  # existence not leaked


def test_with_the_right_key_everything_answers(keyed: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(f"{keyed}/ask", json={"question": JAPAN_QUESTION}, headers=auth).json()["answer"] in JAPAN_ANSWERS
    assert JAPAN_ANSWER in httpx.get(f"{keyed}{DOC}", headers=auth).json()["text"]
    assert httpx.get(f"{keyed}/admin/reindex", headers=auth).json()["in_progress"] is False


def test_with_a_key_health_docs_and_web_page_stay_public(keyed: str) -> None:
    assert httpx.get(f"{keyed}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{keyed}/docs").status_code == 200
    assert httpx.get(f"{keyed}/").text.startswith("<!doctype html>")
    schema = httpx.get(f"{keyed}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # a read needs a key once one exists (optional in the schema); a change always needs one
    assert schema["paths"]["/ask"]["post"]["security"] == [{"HTTPBearer": []}, {}]
    assert schema["paths"]["/documents"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_admin_reindex_needs_the_key_when_one_is_set(keyed: str) -> None:
    _unauthorized(httpx.post(f"{keyed}/admin/reindex"), "missing API key")
    _unauthorized(httpx.get(f"{keyed}/admin/reindex"), "missing API key")


@pytest.fixture(scope="module")
def open_url(seed_settings: Settings, seed_answerer: Answerer) -> Iterator[str]:
    """The seed service with no key configured, called as a stranger would: no session token."""
    with LiveServer(create_app(seed_settings, answerer=seed_answerer), owner=False) as server:
        yield server.url


def test_without_a_key_reads_are_open(open_url: str) -> None:
    assert httpx.post(f"{open_url}/ask", json={"question": JAPAN_QUESTION}).json()["answer"] in JAPAN_ANSWERS
    assert httpx.get(f"{open_url}{DOC}").status_code == 200
    assert httpx.get(f"{open_url}/admin/reindex").status_code == 200  # as open as the documents themselves


@pytest.mark.parametrize("forwarded", [{}, {"X-Forwarded-For": "203.0.113.7"}])
def test_without_a_key_admin_changes_need_the_session_token_from_any_address(open_url: str, forwarded: dict) -> None:
    # from 127.0.0.1 itself too: a reverse proxy on this host makes every client look like that
    _unauthorized(httpx.post(f"{open_url}/admin/reindex", headers=forwarded), "needs an admin key")
    assert httpx.get(f"{open_url}/admin/reindex").json()["runs"] == 0


def test_cors_is_closed_by_default(client: httpx.Client) -> None:
    origin = {"Origin": "https://evil.example.com"}
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    preflight = client.options("/ask", headers={**origin, **asks})
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code in (404, 405)
    response = client.post("/ask", json={"question": JAPAN_QUESTION}, headers=origin)
    assert "access-control-allow-origin" not in response.headers


def test_cors_opens_for_the_listed_origins_only(keyed: str) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{keyed}/ask",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )

    allowed = preflight("https://chat.example.org")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://chat.example.org"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = preflight("https://evil.example.com")
    assert "access-control-allow-origin" not in refused.headers
    # a refused request still carries CORS headers for the allowed origin, so a browser can show the 401
    response = httpx.post(f"{keyed}/ask", json={"question": "x"}, headers={"Origin": "https://other.example.org"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "https://other.example.org"
    # and the page may read the request's id, to quote it when it reports the error
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/", "/healthz", "/openapi.json", "/documents/nope", "/ask"])
def test_security_headers_on_every_response(keyed: str, path: str) -> None:
    response = httpx.get(f"{keyed}{path}")
    assert response.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_security_headers_on_a_413(client: httpx.Client) -> None:
    response = client.post("/ask", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-security-policy"] == CSP and response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_get_a_policy_that_allows_what_they_load(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert policy == DOCS_CSP and "frame-ancestors 'none'" in policy
    script_sources = _directive(policy, "script-src")
    style_sources = _directive(policy, "style-src")
    for url in re.findall(r"<script[^>]+src=['\"]([^'\"]+)", response.text):
        assert _origin(url) in script_sources, url
    for url in re.findall(r"<link[^>]+href=['\"]([^'\"]+)", response.text):
        if url.startswith("http"):  # stylesheets, and the favicon
            assert _origin(url) in style_sources or _origin(url) in _directive(policy, "img-src"), url
    if re.search(r"<script>(?!\s*</script>)", response.text):  # Swagger UI boots with an inline script
        assert "'unsafe-inline'" in script_sources


def _directive(policy: str, name: str) -> list[str]:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"
