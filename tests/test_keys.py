"""Scoped keys: `qa keys` on the command line, keys added and revoked under a running `qa serve`, the 401/403
matrix on every guarded route, the session token `qa serve` prints, and a server that will not listen beyond
loopback with nothing guarding it. Start-up behaviour is tested on real `qa serve` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, LiveServer, free_port, session_token_in

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.keys import KeyFile, digest

WAIT = 120  # seconds: only a broken service gets near it
FERRY = ("ferry.txt", b"The night ferry to Kirkwall leaves at 23:45 from pier four.")
PROXIED = {"Host": "127.0.0.1:8000"}  # nginx's default upstream request: from 127.0.0.1, no X-Forwarded-For
GUARDED = [
    ("POST", "/ask"),
    ("GET", "/documents"),
    ("GET", "/collections"),
    ("GET", "/documents/harbour.txt"),
    ("POST", "/documents"),
    ("DELETE", "/documents/harbour.txt"),
    ("GET", "/admin/reindex"),
    ("POST", "/admin/reindex"),
]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "QA_EMBEDDER": "e5", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1", **extra}


def _qa(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa", *args], env=_env(**env), capture_output=True, text=True, timeout=WAIT
    )


def _call(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = headers or {}
    if method == "POST" and path == "/ask":
        return httpx.post(url + path, json={"question": "Who is the harbour master?"}, headers=headers, timeout=WAIT)
    if method == "POST" and path == "/documents":
        return httpx.post(url + path, files=[("file", FERRY)], headers=headers, timeout=WAIT)
    return httpx.request(method, url + path, headers=headers, timeout=WAIT)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> float:
    """Seconds until ``check`` held (polled every 20 ms); fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def _copy(tiny_settings: Settings, base: Path) -> Settings:
    shutil.copytree(tiny_settings.seeds_dir, base / "seeds")
    shutil.copytree(tiny_settings.index_dir, base / "index")
    return Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")


def test_keys_add_list_revoke_on_the_command_line(tmp_path: Path) -> None:
    where = ["--index-dir", str(tmp_path)]
    added = _qa("keys", "add", "alice", "--read", "hr,eng", "--write", "hr", *where)
    assert added.returncode == 0, added.stderr
    key = added.stdout.splitlines()[-1]
    assert key.startswith("qa_") and len(key) > 40 and " " not in key
    stored = (tmp_path / "keys.json").read_text(encoding="utf-8")
    assert key not in stored and digest(key) in stored  # only the hash is kept
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0  # and only its owner may read even that

    again = _qa("keys", "add", "alice", "--read", "hr", *where)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().startswith("error:") and "alice" in again.stderr and "exists" in again.stderr
    bad = _qa("keys", "add", "bob", "--read", "HR!", *where)
    assert bad.returncode == 1 and "'HR!'" in bad.stderr and "lowercase" in bad.stderr
    assert _qa("keys", "add", "carol", *where).returncode == 1  # no --read: nothing is guessed
    everything = _qa("keys", "add", "bot", "--read", "*", *where)
    ops = _qa("keys", "add", "ops", "--admin", *where)
    assert everything.returncode == 0 and ops.returncode == 0

    listed = _qa("keys", "list", *where)
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split()[1:4] for line in listed.stdout.splitlines()[1:]}
    assert rows == {"alice": ["eng,hr", "hr", "no"], "bot": ["*", "-", "no"], "ops": ["*", "*", "yes"]}
    for secret in (key, digest(key), everything.stdout.splitlines()[-1], ops.stdout.splitlines()[-1]):
        assert secret not in listed.stdout

    assert _qa("keys", "revoke", "alice", *where).returncode == 0
    assert "alice" not in _qa("keys", "list", *where).stdout
    unknown = _qa("keys", "revoke", "alice", *where)
    assert unknown.returncode == 1 and "no key named 'alice'" in unknown.stderr


@pytest.fixture(scope="module")
def keyed(tiny_settings: Settings, e5: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The tiny corpus served with scoped keys in its key file: an admin, a reader, a writer, and a revoked key."""
    settings = _copy(tiny_settings, tmp_path_factory.mktemp("keyed"))
    keys = KeyFile(settings.key_file_path())
    found = {
        "admin": keys.add("ops", None, None, True),
        "reader": keys.add("reader", None, frozenset(), False),
        "writer": keys.add("writer", None, None, False),
        "revoked": keys.add("leaver", None, None, False),
    }
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app, owner=False) as server:
        keys.revoke("leaver")
        _until(lambda: httpx.get(f"{server.url}/documents", headers=_bearer(found["revoked"])).status_code == 401,
               "the server to see the revoked key")  # fmt: skip
        yield {"url": server.url, "seeds": settings.seeds_dir, **found}


@pytest.mark.parametrize(("method", "path"), GUARDED)
@pytest.mark.parametrize("who", ["no key", "wrong key", "revoked key"])
def test_every_guarded_route_refuses_without_a_valid_key(keyed: dict, method: str, path: str, who: str) -> None:
    headers = {"no key": PROXIED, "wrong key": {**PROXIED, **_bearer("qa_" + "x" * 43)}}.get(who)
    response = _call(keyed["url"], method, path, headers or {**PROXIED, **_bearer(keyed["revoked"])})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    expected = "missing API key" if who == "no key" else "wrong or revoked API key"
    assert expected in response.json()["detail"]
    assert (keyed["seeds"] / "harbour.txt").exists() and not (keyed["seeds"] / "ferry.txt").exists()


def test_with_keys_health_and_the_page_stay_public(keyed: dict) -> None:
    assert httpx.get(f"{keyed['url']}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{keyed['url']}/").status_code == 200
    assert httpx.get(f"{keyed['url']}/app.js").status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_admin_needs_an_admin_key(keyed: dict, method: str) -> None:
    for who in ("reader", "writer"):
        refused = _call(keyed["url"], method, "/admin/reindex", _bearer(keyed[who]))
        assert refused.status_code == 403 and "not an admin key" in refused.json()["detail"], who
    assert _call(keyed["url"], "GET", "/admin/reindex", _bearer(keyed["admin"])).status_code == 200


def test_a_key_without_write_scope_may_read_but_not_write(keyed: dict) -> None:
    reader = _bearer(keyed["reader"])
    assert _call(keyed["url"], "GET", "/documents/harbour.txt", reader).status_code == 200
    for method, path in [("POST", "/documents"), ("DELETE", "/documents/harbour.txt")]:
        refused = _call(keyed["url"], method, path, reader)
        assert refused.status_code == 403 and "may not change the collection 'default'" in refused.json()["detail"]
    assert (keyed["seeds"] / "harbour.txt").exists() and not (keyed["seeds"] / "ferry.txt").exists()


def test_replies_that_depend_on_the_key_are_never_cached_for_another(keyed: dict) -> None:
    for method, path in [("POST", "/ask"), ("GET", "/documents"), ("GET", "/documents/harbour.txt")]:
        response = _call(keyed["url"], method, path, _bearer(keyed["reader"]))
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, no-store", path
        assert "Authorization" in response.headers["vary"], path


class Serve:
    """A real `qa serve` on a copy of the tiny corpus, its output in a file (a full pipe would stall it)."""

    def __init__(self, settings: Settings, log: Path, *args: str, **env: str) -> None:
        self.port, self.log, self.settings = free_port(), log, settings
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "qa", "serve", "--port", str(self.port), "--no-watch", *args]
        command += ["--seeds-dir", str(settings.seeds_dir), "--index-dir", str(settings.index_dir)]
        self.proc = subprocess.Popen(command, env=_env(**env), stdout=log.open("w"), stderr=subprocess.STDOUT)

    def __enter__(self) -> Serve:
        _until(self._answering, "qa serve to answer")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(30)

    def _answering(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).json()["status"] == "ok"
        except httpx.TransportError:
            return False

    def token(self) -> str:
        token = session_token_in(self.log.read_text())
        assert token, self.log.read_text()
        return token


def test_qa_serve_prints_a_session_token_that_alone_writes_and_sees_keys_come_and_go(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    settings = _copy(tiny_settings, tmp_path)
    with Serve(settings, tmp_path / "serve.log") as server:
        output = server.log.read_text()
        token = server.token()
        assert f"http://127.0.0.1:{server.port}/#token={token}" in output
        # no key configured: reads are open on this machine, writes need the token, whatever the address
        assert _call(server.url, "GET", "/documents", PROXIED).status_code == 200
        for method, path in [("POST", "/documents"), ("DELETE", "/documents/bakery.txt"), ("POST", "/admin/reindex")]:
            assert _call(server.url, method, path, PROXIED).status_code == 401, (method, path)
        assert not (settings.seeds_dir / "ferry.txt").exists() and (settings.seeds_dir / "bakery.txt").exists()
        assert _call(server.url, "POST", "/documents", {**PROXIED, **_bearer(token)}).status_code == 201

        where = ["--index-dir", str(settings.index_dir)]
        added = _qa("keys", "add", "team", "--read", "*", *where)
        key = added.stdout.splitlines()[-1]
        took = _until(lambda: _call(server.url, "GET", "/documents", PROXIED).status_code == 401, "keys to apply")
        assert took < 1.0, f"a new key took {took:.2f}s to lock the service"
        assert _call(server.url, "GET", "/documents", _bearer(key)).json()["total"] == 3
        assert _call(server.url, "DELETE", "/documents/ferry.txt", _bearer(token)).status_code == 204

        assert _qa("keys", "revoke", "team", *where).returncode == 0
        took = _until(lambda: _call(server.url, "GET", "/documents", _bearer(key)).status_code == 401, "revoke")
        assert took < 1.0, f"a revoked key still answered after {took:.2f}s"


def test_qa_serve_beyond_loopback_with_no_key_refuses_to_start(tmp_path: Path) -> None:
    refused = _qa("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--index-dir", str(tmp_path))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    said = " ".join(refused.stderr.split())  # rich wraps long lines
    assert "refusing to serve on 0.0.0.0 with no key configured" in said
    assert "qa keys add NAME --read '*'" in said and "QA_ANONYMOUS_READ=1" in said


def test_qa_serve_beyond_loopback_with_anonymous_read_serves_reads_only(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    settings = _copy(tiny_settings, tmp_path)
    with Serve(settings, tmp_path / "serve.log", "--host", "0.0.0.0", QA_ANONYMOUS_READ="1") as server:
        assert _call(server.url, "POST", "/ask").json()["answer"].startswith("The harbour master")
        assert _call(server.url, "GET", "/documents").json()["total"] == 2
        for method, path in [("POST", "/documents"), ("DELETE", "/documents/bakery.txt"), ("POST", "/admin/reindex")]:
            refused = _call(server.url, method, path, PROXIED)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer", (method, path)
        assert sorted(p.name for p in settings.seeds_dir.iterdir()) == ["bakery.txt", "harbour.txt"]


def test_allowed_hosts_star_is_refused_with_the_reason(tmp_path: Path) -> None:
    refused = _qa("serve", "--port", str(free_port()), "--index-dir", str(tmp_path), QA_ALLOWED_HOSTS="*")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    said = " ".join(refused.stderr.split())
    assert "QA_ALLOWED_HOSTS='*' is refused" in said and "DNS rebinding" in said
    with pytest.raises(ValueError, match="DNS rebinding"):
        Settings(allowed_hosts="qa.example.org, *")


def test_a_damaged_key_file_locks_the_service_instead_of_opening_it(
    tiny_settings: Settings, e5: Embedder, tmp_path: Path
) -> None:
    settings = _copy(tiny_settings, tmp_path)
    settings.key_file_path().write_text(json.dumps({"version": 1, "keys": [{"name": "x"}]}), encoding="utf-8")
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app, owner=False) as server:
        response = _call(server.url, "GET", "/documents")
        assert response.status_code == 503 and "keys.json is malformed" in response.json()["detail"]


def test_qa_serve_with_a_damaged_key_file_refuses_to_start_naming_it(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("{not json", encoding="utf-8")
    refused = _qa("serve", "--port", str(free_port()), "--index-dir", str(tmp_path))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "keys.json" in " ".join(refused.stderr.split())
