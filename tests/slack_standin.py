"""Slack's side of the wire for tests: its Web API and response_url on 127.0.0.1 (real JSON shapes), signed
Events API bodies, and the real answerer wrapped to note what each question was asked with."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request

from qa.answer import Answerer
from qa.collections import Scope
from qa.models import Answer, Turn

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-A0001-test-app-token"
BOT_USER, BOT_ID = "UQABOT", "BQABOT"
PUBLIC_URL = "https://qa.example.test"
_ids = itertools.count(1)


class FakeSlack:
    """Speaks just enough of Slack's Web API (real JSON shapes) and response_url, recording every call.

    ``socket_url``, when set, is what ``apps.connections.open`` hands out (a Socket Mode stand-in's address).
    """

    def __init__(self, socket_url: Callable[[], str] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.socket_url = socket_url
        self.lock = threading.Lock()
        self.url = ""  # set once served
        self.app = FastAPI()
        self.app.add_api_route("/api/{method}", self.web_api, methods=["GET", "POST"])
        self.app.add_api_route("/response/{key}", self.response_url, methods=["POST"])

    def record(self, method: str, params: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append((method, params))

    async def web_api(self, method: str, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        if "json" in request.headers.get("content-type", ""):
            params.update(json.loads(body))
        elif body:
            params.update(parse_qsl(body.decode()))
        params["authorization"] = request.headers.get("authorization")
        self.record(method, params)
        if method == "apps.connections.open":  # the one method called with the app-level token
            if params["authorization"] != f"Bearer {APP_TOKEN}" or self.socket_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url()}
        if params["authorization"] != f"Bearer {TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {
                "ok": True, "url": "https://qa-test.slack.com/", "team": "QA", "user": "qa", "team_id": "T0001",
                "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False,
            }  # fmt: skip
        if method == "chat.postMessage":
            ts = f"{time.time():.6f}"
            message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": params.get("text"), "ts": ts}
            return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}
        if method == "conversations.replies":
            messages = self.threads.get((params["channel"], params["ts"]))
            if messages is None:
                return {"ok": False, "error": "missing_scope", "needed": "channels:history", "provided": "chat:write"}
            # Slack's paging: oldest first, at most `limit` per page, then the cursor of the next page
            first, size = int(params.get("cursor") or 0), int(params.get("limit") or 1000)
            more = first + size < len(messages)
            return {
                "ok": True, "messages": messages[first : first + size], "has_more": more,
                "response_metadata": {"next_cursor": str(first + size) if more else ""},
            }  # fmt: skip
        return {"ok": False, "error": "unknown_method"}

    async def response_url(self, key: str, request: Request) -> dict[str, Any]:
        self.record("response_url", {"key": key, **json.loads(await request.body())})
        return {"ok": True}

    def wait_for(self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        """Poll (bounded) until a matching call arrives; the answer is computed after Slack's ack."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(predicate)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no matching Slack call within {timeout}s; calls: {self.calls}")

    def matching(self, predicate: Callable[[str, dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self.lock:
            return [params for method, params in self.calls if predicate(method, params)]


class RecordingAnswerer:
    """The real answerer, noting the history and the collections each question came with."""

    def __init__(self, inner: Answerer) -> None:
        self.inner = inner
        self.asked: list[tuple[str, list[Turn]]] = []
        self.scopes: list[tuple[str, Scope]] = []
        self.gates: dict[str, threading.Event] = {}

    def hold(self, question: str) -> threading.Event:
        """The next ask of ``question`` waits until the returned event is set (the answer is held back)."""
        self.gates[question] = threading.Event()
        return self.gates[question]

    def ask(self, question: str, top_k: int = 5, history: Sequence[Turn] = (), *, collections: Scope = None) -> Answer:
        self.asked.append((question, list(history)))
        self.scopes.append((question, collections))
        gate = self.gates.pop(question, None)
        if gate is not None:
            gate.wait(timeout=120)
        return self.inner.ask(question, top_k, history, collections=collections)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def sign(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    """Exactly what Slack sends: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def new_ts() -> str:
    return f"{1_700_000_000 + next(_ids)}.{next(_ids):06d}"


def next_id() -> int:
    return next(_ids)


def event_body(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API ``event_callback``, as Slack posts it (HTTP) or wraps it in an envelope (Socket Mode)."""
    return {
        "token": "legacy-verification-token", "team_id": "T0001", "api_app_id": "A0001", "event": event,
        "type": "event_callback", "event_id": event_id or f"Ev{next(_ids):08d}", "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": "T0001", "user_id": BOT_USER, "is_bot": True}],
    }  # fmt: skip


def callback(event: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(event_body(event, event_id)).encode()


def mention(text: str, channel: str = "C0001", thread_ts: str | None = None) -> dict[str, Any]:
    ts = new_ts()
    event = {"type": "app_mention", "user": "U0ASKER", "text": f"<@{BOT_USER}> {text}", "ts": ts, "channel": channel}
    return event | ({"thread_ts": thread_ts} if thread_ts else {}) | {"event_ts": ts}


def direct(text: str, **extra: Any) -> dict[str, Any]:
    ts = new_ts()
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D0001",
        "user": "U0ASKER",
        "text": text,
        "ts": ts,
    } | extra


def command(text: str, channel: str, response_url: str) -> dict[str, str]:
    """A ``/ask`` slash command's payload (form fields over HTTP, a JSON object over Socket Mode)."""
    return {
        "token": "legacy", "team_id": "T0001", "team_domain": "qa-test", "channel_id": channel,
        "channel_name": "directmessage" if channel.startswith("D") else "general", "user_id": "U0ASKER",
        "user_name": "asker", "command": "/ask", "text": text, "api_app_id": "A0001", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": f"{next(_ids)}.1.abc",
    }  # fmt: skip


def replies_to(ts: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda method, params: method == "chat.postMessage" and params.get("thread_ts") == ts


def responses_to(key: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda method, params: method == "response_url" and params["key"] == key


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]
