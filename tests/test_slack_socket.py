"""Slack over Socket Mode, end to end: the real app and model, Slack's side a local stand-in (Web API on
127.0.0.1 through SLACK_API_URL, and the WebSocket that apps.connections.open hands out)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml
from conftest import JAPAN_ANSWERS, JAPAN_QUESTION, ROOT, LiveServer, free_port
from slack_socket_standin import SocketStandIn
from slack_standin import (
    APP_TOKEN,
    PUBLIC_URL,
    TOKEN,
    FakeSlack,
    RecordingAnswerer,
    command,
    direct,
    event_body,
    mention,
    next_id,
    replies_to,
    responses_to,
    section_texts,
)

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.slack import USAGE
from qa.slack_scopes import BadSlackSetting

ARMS_QUESTION = "Что Япония сделала с ограничениями на экспорт оружия?"
SLACK_ACK_SECONDS = 3  # Slack retries an envelope not acked within 3 seconds


@pytest.fixture(scope="module")
def standin() -> Iterator[SocketStandIn]:
    with SocketStandIn().serving() as socket:
        yield socket


@pytest.fixture(scope="module")
def fake_slack(standin: SocketStandIn) -> Iterator[FakeSlack]:
    fake = FakeSlack(socket_url=standin.url)
    with LiveServer(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="module")
def answerer(seed_answerer: Answerer) -> RecordingAnswerer:
    return RecordingAnswerer(seed_answerer)


def socket_env(env: pytest.MonkeyPatch, fake: FakeSlack) -> None:
    """Socket Mode alone: an app-level token and the bot token, no signing secret, no Request URL."""
    env.delenv("SLACK_SIGNING_SECRET", raising=False)
    env.delenv("SLACK_CHANNEL_COLLECTIONS", raising=False)
    env.delenv("SLACK_DM_COLLECTIONS", raising=False)
    env.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    env.setenv("SLACK_BOT_TOKEN", TOKEN)
    env.setenv("SLACK_API_URL", f"{fake.url}/api/")
    env.setenv("SLACK_COMMAND_VISIBILITY", "in_channel")
    env.setenv("SLACK_SOCKET_PING_INTERVAL", "3")  # a silent drop is noticed at the next ping


@pytest.fixture(scope="module")
def socket_app(
    seed_settings: Settings, answerer: RecordingAnswerer, fake_slack: FakeSlack, standin: SocketStandIn
) -> Iterator[httpx.Client]:
    with pytest.MonkeyPatch.context() as env:
        socket_env(env, fake_slack)
        app = create_app(seed_settings.model_copy(update={"public_url": PUBLIC_URL}), answerer=answerer)  # type: ignore[arg-type]
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        standin.wait_until(lambda: len(standin.open) == 1, what="the app's socket")  # opened by the lifespan
        yield http


def connections_opened(fake: FakeSlack) -> int:
    return len(fake.matching(lambda method, params: method == "apps.connections.open"))


def test_socket_mode_needs_no_request_url(socket_app: httpx.Client, fake_slack: FakeSlack) -> None:
    (opened, *_) = fake_slack.matching(lambda method, params: method == "apps.connections.open")
    assert opened["authorization"] == f"Bearer {APP_TOKEN}"  # the socket is asked for with the app-level token
    assert not [path for path in socket_app.get("/openapi.json").json()["paths"] if path.startswith("/slack")]


def test_mention_is_acked_at_once_and_answered_in_its_thread(
    socket_app: httpx.Client, standin: SocketStandIn, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    event = mention(JAPAN_QUESTION)
    release = answerer.hold(JAPAN_QUESTION)  # the answer waits: the ack must not
    try:
        envelope = standin.events_api(event_body(event))
        assert standin.wait_ack(envelope, timeout=SLACK_ACK_SECONDS) == {"envelope_id": envelope}
        assert fake_slack.matching(replies_to(event["ts"])) == []
    finally:
        release.set()
    posted = fake_slack.wait_for(replies_to(event["ts"]))
    assert posted["channel"] == "C0001" and posted["authorization"] == f"Bearer {TOKEN}"
    sections = section_texts(posted["blocks"])
    assert sections[0] in JAPAN_ANSWERS and posted["text"].startswith(sections[0])
    assert sections[1].startswith(f"*<{PUBLIC_URL}/#doc=us-japan-security-talks.txt&amp;start=")


def test_direct_message_is_answered(socket_app: httpx.Client, standin: SocketStandIn, fake_slack: FakeSlack) -> None:
    event = direct(ARMS_QUESTION)
    standin.wait_ack(standin.events_api(event_body(event)), timeout=SLACK_ACK_SECONDS)
    posted = fake_slack.wait_for(replies_to(event["ts"]))
    assert posted["channel"] == "D0001"
    assert "ослабила ограничения на экспорт оружия" in section_texts(posted["blocks"])[0]


def test_slash_command_is_acked_then_answered_on_response_url(
    socket_app: httpx.Client, standin: SocketStandIn, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    key = f"socket{next_id()}"
    release = answerer.hold(JAPAN_QUESTION)
    try:
        envelope = standin.slash_command(command(JAPAN_QUESTION, "C0001", f"{fake_slack.url}/response/{key}"))
        assert standin.wait_ack(envelope, timeout=SLACK_ACK_SECONDS) == {"envelope_id": envelope}  # a bare ack
        assert fake_slack.matching(responses_to(key)) == []
    finally:
        release.set()
    posted = fake_slack.wait_for(responses_to(key))
    assert posted["response_type"] == "in_channel"
    assert JAPAN_QUESTION in posted["blocks"][0]["elements"][0]["text"]
    assert section_texts(posted["blocks"])[0] in JAPAN_ANSWERS


def test_empty_slash_command_gets_usage_in_its_ack(
    socket_app: httpx.Client, standin: SocketStandIn, fake_slack: FakeSlack
) -> None:
    envelope = standin.slash_command(command("  ", "C0001", f"{fake_slack.url}/response/empty{next_id()}"))
    ack = standin.wait_ack(envelope, timeout=SLACK_ACK_SECONDS)
    assert ack["payload"] == {"text": USAGE, "response_type": "ephemeral"}  # Slack shows it to the asker


@pytest.mark.parametrize("how", ["close", "disconnect", "cut"])
def test_reconnects_after_the_socket_drops_and_answers_the_next_question(
    how: str, socket_app: httpx.Client, standin: SocketStandIn, fake_slack: FakeSlack
) -> None:
    """``close``: Slack's close frame; ``disconnect``: Slack's warning envelope; ``cut``: a silent network drop,
    which only the client's pings notice (within its ping interval)."""
    sockets, urls = standin.opened, connections_opened(fake_slack)
    getattr(standin, how)()
    standin.wait_until(lambda: standin.opened > sockets and len(standin.open) == 1, what=f"a new socket after {how}")
    assert connections_opened(fake_slack) > urls  # a fresh URL from apps.connections.open, as Slack requires
    event = mention(JAPAN_QUESTION)
    standin.wait_ack(standin.events_api(event_body(event)), timeout=SLACK_ACK_SECONDS)
    assert section_texts(fake_slack.wait_for(replies_to(event["ts"]))["blocks"])[0] in JAPAN_ANSWERS


def test_shutdown_closes_the_socket(
    socket_app: httpx.Client,
    seed_settings: Settings,
    seed_answerer: Answerer,
    standin: SocketStandIn,
    fake_slack: FakeSlack,
) -> None:
    before = standin.opened
    with pytest.MonkeyPatch.context() as env:
        socket_env(env, fake_slack)
        app = create_app(seed_settings, answerer=seed_answerer)
    with LiveServer(app):
        standin.wait_until(lambda: standin.opened == before + 1 and len(standin.open) == 2, what="a second app")
        closed = len(standin.close_codes)
    standin.wait_until(lambda: len(standin.open) == 1, what="the stopped app's socket closed")
    assert standin.close_codes[closed:] == [1000]  # closed by the app (a normal close), not dropped with it


@pytest.mark.parametrize(
    ("token", "bot", "message"),
    [
        ("xoxb-not-an-app-token", TOKEN, "SLACK_APP_TOKEN must be an app-level token starting with xapp-"),
        (APP_TOKEN, "", "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not"),
    ],
)
def test_a_socket_mode_that_cannot_work_stops_start_up(
    token: str, bot: str, message: str, seed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", token)
    monkeypatch.setenv("SLACK_BOT_TOKEN", bot)
    with pytest.raises(BadSlackSetting, match=message) as raised:
        create_app(seed_settings)
    assert "not-an-app-token" not in str(raised.value)  # a token is never echoed


def test_the_socket_mode_manifest_is_the_http_one_without_urls() -> None:
    http = yaml.safe_load((ROOT / "slack" / "manifest.yml").read_text())
    socket = yaml.safe_load((ROOT / "slack" / "manifest-socket.yml").read_text())
    assert socket["settings"]["socket_mode_enabled"] is True and http["settings"]["socket_mode_enabled"] is False
    assert "http" not in json.dumps(socket)  # no request URL anywhere: Slack reaches qa over the socket
    (command,) = socket["features"]["slash_commands"]
    assert command == {key: value for key, value in http["features"]["slash_commands"][0].items() if key != "url"}
    assert socket["settings"]["event_subscriptions"] == {
        key: value for key, value in http["settings"]["event_subscriptions"].items() if key != "request_url"
    }
    assert socket["oauth_config"] == http["oauth_config"]


def test_an_unreachable_slack_holds_up_neither_start_nor_stop(
    seed_settings: Settings, seed_answerer: Answerer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{free_port()}/api/")  # nothing listens there
    monkeypatch.setenv("SLACK_SOCKET_PING_INTERVAL", "1")
    app = create_app(seed_settings, answerer=seed_answerer)
    server = LiveServer(app)
    with server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/ask", json={"question": JAPAN_QUESTION}).json()["answer"] in JAPAN_ANSWERS
        deadline = time.monotonic() + 30
        while "Failed to connect" not in caplog.text and time.monotonic() < deadline:  # the client says why
            time.sleep(0.05)
        assert "Failed to connect" in caplog.text and "Retrying" in caplog.text
    assert not server.thread.is_alive()  # stopped within LiveServer's 10 s, the retrying client closed
