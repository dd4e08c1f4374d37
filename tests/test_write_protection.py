"""Who may change the corpus: a key (or the session token), never an address, never cross-site, never a rebound
Host.

A page on another site can make the user's browser send a simple POST (a form, multipart or text/plain: no
preflight) to a qa on 127.0.0.1, or rebind its own name to 127.0.0.1 and read from it as same-origin. These
tests play both over real HTTP, and check that the service's own page, curl and Slack still get through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, LiveServer
from rawhttp import raw_request

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.security import host_name, is_loopback

KEY = "write-key-for-tests"
SESSION = "session-token-for-tests"
# How every client looks behind nginx on the same host with its default configuration: connecting from
# 127.0.0.1, naming the upstream as Host, no X-Forwarded-For.
PROXIED = {"Host": "127.0.0.1:8000"}
FERRY = ("ferry.txt", b"The night ferry to Kirkwall leaves at 23:45 from pier four.")


def _serve(
    tiny_settings: Settings, tmp_path: Path, e5: Embedder, *, owner: bool = True, **overrides: object
) -> LiveServer:
    shutil.copytree(tiny_settings.seeds_dir, tmp_path / "seeds")
    shutil.copytree(tiny_settings.index_dir, tmp_path / "index")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", **overrides)
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)), session_token=SESSION)
    return LiveServer(app, owner=owner)


@pytest.fixture()
def open_service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[str, Path]]:
    with _serve(tiny_settings, tmp_path, e5, cors_origins="https://chat.example.org") as server:
        yield server.url, tmp_path / "seeds"


@pytest.fixture()
def keyed_service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[str, Path]]:
    with _serve(tiny_settings, tmp_path, e5, api_key=KEY, allowed_hosts="qa.internal.example") as server:
        yield server.url, tmp_path / "seeds"


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example", "http://localhost:1"]
)
def test_cross_site_upload_delete_and_reindex_are_refused(open_service: tuple[str, Path], origin: str) -> None:
    url, seeds = open_service
    cross = {"Origin": origin}
    upload = httpx.post(f"{url}/documents", files=[("file", FERRY)], headers=cross)
    assert upload.status_code == 403 and "cross-site" in upload.json()["detail"]
    assert not (seeds / "ferry.txt").exists()
    deletion = httpx.delete(f"{url}/documents/harbour.txt", headers=cross)
    assert deletion.status_code == 403 and (seeds / "harbour.txt").exists()
    # the simple request of issue 13: text/plain, no preflight, from another site
    reindex = httpx.post(f"{url}/admin/reindex", content=b"x", headers={**cross, "Content-Type": "text/plain"})
    assert reindex.status_code == 403
    assert httpx.get(f"{url}/admin/reindex").json()["runs"] == 0


def test_same_site_and_allowed_origins_and_no_origin_may_write(open_service: tuple[str, Path]) -> None:
    url, seeds = open_service
    own_page = httpx.post(f"{url}/documents", files=[("file", FERRY)], headers={"Origin": url})
    assert own_page.status_code == 201 and (seeds / "ferry.txt").exists()
    cors = httpx.post(
        f"{url}/documents",
        files=[("file", ("pier.txt", b"Pier four has a crane."))],
        headers={"Origin": "https://chat.example.org"},
    )
    assert cors.status_code == 201
    assert httpx.delete(f"{url}/documents/pier.txt").status_code == 204  # curl: no Origin at all


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "[::2]"])
def test_a_rebound_host_is_refused_for_reads_and_writes(open_service: tuple[str, Path], host: str) -> None:
    url, seeds = open_service
    for method, path in [
        ("GET", "/documents/harbour.txt"),
        ("GET", "/documents"),
        ("DELETE", "/documents/harbour.txt"),
    ]:
        status, body = raw_request(url, method, path, {"Host": host})
        assert status == 400, (method, path)
        assert "QA_ALLOWED_HOSTS" in body["detail"] and body["errors"][0]["field"] == "Host"
    assert (seeds / "harbour.txt").exists()
    for good in ["localhost", f"127.0.0.1:{url.rsplit(':', 1)[1]}", "[::1]:8000", "qa.localhost"]:
        assert raw_request(url, "GET", "/documents/harbour.txt", {"Host": good})[0] == 200, good


def test_configured_hosts_are_served(keyed_service: tuple[str, Path]) -> None:
    url, _ = keyed_service
    auth = {"Authorization": f"Bearer {KEY}"}
    assert raw_request(url, "GET", "/documents/harbour.txt", {**auth, "Host": "qa.internal.example:8000"})[0] == 200
    assert raw_request(url, "GET", "/documents/harbour.txt", {**auth, "Host": "other.example"})[0] == 400


@pytest.fixture()
def stranger_service(tiny_settings: Settings, tmp_path: Path, e5: Embedder) -> Iterator[tuple[str, Path]]:
    """No key configured, called without the session token: what a client behind a local proxy can do."""
    with _serve(tiny_settings, tmp_path, e5, owner=False) as server:
        yield server.url, tmp_path / "seeds"


def _proxied_writes_refused(url: str, seeds: Path) -> None:
    upload = httpx.post(f"{url}/documents", files=[("file", FERRY)], headers=PROXIED)
    assert upload.status_code == 401 and upload.headers["www-authenticate"] == "Bearer", upload.text
    assert "Authorization: Bearer <key>" in upload.json()["detail"]
    assert httpx.delete(f"{url}/documents/harbour.txt", headers=PROXIED).status_code == 401
    assert httpx.post(f"{url}/admin/reindex", headers=PROXIED).status_code == 401
    assert not (seeds / "ferry.txt").exists() and (seeds / "harbour.txt").exists()
    assert httpx.get(f"{url}/admin/reindex", headers={**PROXIED, "Authorization": f"Bearer {SESSION}"}).json()[
        "runs"
    ] == 0  # fmt: skip


def test_without_a_key_a_proxied_request_from_loopback_may_not_write(stranger_service: tuple[str, Path]) -> None:
    url, seeds = stranger_service
    _proxied_writes_refused(url, seeds)
    # reads stay open on this machine without a key, as before
    assert httpx.get(f"{url}/documents/harbour.txt", headers=PROXIED).status_code == 200


def test_without_a_key_only_the_session_token_writes(stranger_service: tuple[str, Path]) -> None:
    url, seeds = stranger_service
    session = {**PROXIED, "Authorization": f"Bearer {SESSION}"}
    assert httpx.post(f"{url}/documents", files=[("file", FERRY)], headers=session).status_code == 201
    assert httpx.delete(f"{url}/documents/harbour.txt", headers=session).status_code == 204
    assert (seeds / "ferry.txt").exists() and not (seeds / "harbour.txt").exists()
    other = {**PROXIED, "Authorization": "Bearer session-token-of-another-process"}
    assert httpx.post(f"{url}/documents", files=[("file", ("x.txt", b"x"))], headers=other).status_code == 401


def test_with_a_key_a_proxied_request_from_loopback_may_not_write(keyed_service: tuple[str, Path]) -> None:
    url, seeds = keyed_service
    _proxied_writes_refused(url, seeds)


def test_with_a_key_writes_need_it_from_anywhere(keyed_service: tuple[str, Path]) -> None:
    url, seeds = keyed_service
    missing = httpx.post(f"{url}/documents", files=[("file", FERRY)])
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.delete(f"{url}/documents/harbour.txt", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and (seeds / "harbour.txt").exists()
    auth = {"Authorization": f"Bearer {KEY}", "X-Forwarded-For": "203.0.113.7"}
    assert httpx.post(f"{url}/documents", files=[("file", FERRY)], headers=auth).status_code == 201
    assert httpx.get(f"{url}/documents", headers=auth).json()["total"] == 3
    # the key does not make a cross-site write acceptable
    cross = httpx.delete(f"{url}/documents/ferry.txt", headers={**auth, "Origin": "http://evil.example"})
    assert cross.status_code == 403 and (seeds / "ferry.txt").exists()


def test_an_empty_api_key_refuses_to_start_naming_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QA_API_KEY": "", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--seeds-dir", str(tmp_path), "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "QA_API_KEY" in result.stderr and "empty" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="QA_API_KEY"):
        Settings(api_key="  ")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("192.168.1.20", False),
        ("::ffff:10.0.0.1", False),
        ("0.0.0.0", False),
        ("203.0.113.7", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("127.0.0.1:8000", "127.0.0.1"), ("[::1]:8000", "::1"), ("Example.ORG", "example.org"), ("::1", "::1")],
)
def test_host_name_drops_the_port(header: str, expected: str) -> None:
    assert host_name(header) == expected
