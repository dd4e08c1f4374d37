"""The Slack adapter over real HTTP: signed requests in, Slack's Web API and response_url as a fake on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import yaml
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, ROOT, LiveServer, free_port
from slack_standin import (
    BOT_ID,
    BOT_USER,
    PUBLIC_URL,
    SECRET,
    TOKEN,
    FakeSlack,
    RecordingAnswerer,
    callback,
    direct,
    mention,
    new_ts,
    next_id,
    replies_to,
    section_texts,
    sign,
)

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.models import Turn
from qa.slack import USAGE

ARMS_QUESTION = "Что Япония сделала с ограничениями на экспорт оружия?"


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    with LiveServer(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="module")
def answerer(seed_answerer: Answerer) -> RecordingAnswerer:
    return RecordingAnswerer(seed_answerer)


@pytest.fixture(scope="module")
def slack_app(
    seed_settings: Settings,
    answerer: RecordingAnswerer,
    fake_slack: FakeSlack,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    settings = seed_settings.model_copy(update={"public_url": PUBLIC_URL})  # the web page is mounted at "/" too
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SLACK_SIGNING_SECRET", SECRET)
        env.setenv("SLACK_BOT_TOKEN", TOKEN)
        env.setenv("SLACK_API_URL", f"{fake_slack.url}/api/")
        env.setenv("SLACK_COMMAND_VISIBILITY", "in_channel")
        app = create_app(settings, answerer=answerer)  # type: ignore[arg-type]
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def post_event(http: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    response = http.post(
        "/slack/events", content=body, headers={"Content-Type": "application/json", **sign(body)} | headers
    )
    assert response.status_code == 200, response.text
    return response


def answered_after(http: httpx.Client, fake: FakeSlack) -> None:
    """A barrier: ask one more question and wait for its answer, so anything sent earlier has been handled."""
    event = direct(JAPAN_QUESTION)
    post_event(http, callback(event))
    fake.wait_for(replies_to(event["ts"]))


def test_url_verification_challenge(slack_app: httpx.Client) -> None:
    body = json.dumps(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
    )
    response = post_event(slack_app, body.encode())
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_mention_is_answered_in_its_thread(
    slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    event = mention(JAPAN_QUESTION)
    post_event(slack_app, callback(event))
    posted = fake_slack.wait_for(replies_to(event["ts"]))
    assert posted["channel"] == "C0001" and posted["authorization"] == f"Bearer {TOKEN}"
    sections = section_texts(posted["blocks"])
    assert sections[0] in JAPAN_ANSWERS
    title = answerer.document("us-japan-security-talks.txt").title
    assert sections[1].startswith(f"*<{PUBLIC_URL}/#doc=us-japan-security-talks.txt&amp;start=")
    assert sections[1].endswith(f"|{title}>*\n>{sections[0]}")  # the citation quotes the highlight
    assert posted["text"].startswith(sections[0])
    assert answerer.scopes[-1] == (JAPAN_QUESTION, None)  # no SLACK_CHANNEL_COLLECTIONS: every collection


def test_direct_message_in_russian_is_answered(slack_app: httpx.Client, fake_slack: FakeSlack) -> None:
    event = direct(ARMS_QUESTION)
    post_event(slack_app, callback(event))
    posted = fake_slack.wait_for(replies_to(event["ts"]))
    assert posted["channel"] == "D0001"
    assert "ослабила ограничения на экспорт оружия" in section_texts(posted["blocks"])[0]


def test_small_talk_names_the_documents_and_cites_nothing(slack_app: httpx.Client, fake_slack: FakeSlack) -> None:
    titles = [doc["title"] for doc in slack_app.get("/documents", params={"limit": 3}).json()["documents"]]
    replies = {
        "hello, who are you?": f"Ask me about the document: {titles[0]}",
        "Какая погода завтра?": f"Спросите меня о документах (1): {titles[0]}",  # the question's language
    }
    for question, expected in replies.items():
        event = direct(question)
        post_event(slack_app, callback(event))
        posted = fake_slack.wait_for(replies_to(event["ts"]))
        assert section_texts(posted["blocks"]) == [expected]  # no citations under it
        assert posted["text"] == expected


def test_slash_command_acks_then_answers_on_response_url(
    slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    key = f"cmd{next_id()}"
    form = {
        "token": "legacy", "team_id": "T0001", "channel_id": "C0001", "user_id": "U0ASKER", "command": "/ask",
        "text": JAPAN_QUESTION, "response_url": f"{fake_slack.url}/response/{key}", "trigger_id": "1.2.3",
    }  # fmt: skip
    body = urlencode(form).encode()
    # Slack gives the ack 3 seconds, however long the answer takes: hold the answer back until the ack is in.
    # Were the ack sent after the answer, this request would wait for a release that never comes (and time out).
    release = answerer.hold(JAPAN_QUESTION)
    try:
        response = slack_app.post(
            "/slack/commands",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
            timeout=20,
        )
        assert response.status_code == 200 and response.text == ""  # the bare ack
        assert fake_slack.matching(lambda method, params: method == "response_url" and params["key"] == key) == []
    finally:
        release.set()
    posted = fake_slack.wait_for(lambda method, params: method == "response_url" and params["key"] == key)
    assert posted["response_type"] == "in_channel"
    assert JAPAN_QUESTION in posted["blocks"][0]["elements"][0]["text"]
    assert section_texts(posted["blocks"])[0] in JAPAN_ANSWERS


def test_empty_slash_command_explains_usage(slack_app: httpx.Client) -> None:
    body = urlencode({"command": "/ask", "text": "  ", "user_id": "U0ASKER", "team_id": "T0001"}).encode()
    response = slack_app.post(
        "/slack/commands", content=body, headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    )
    assert response.status_code == 200 and response.json() == {"text": USAGE, "response_type": "ephemeral"}


def test_retries_and_duplicates_are_answered_once(slack_app: httpx.Client, fake_slack: FakeSlack) -> None:
    event = mention(JAPAN_QUESTION)
    body = callback(event)
    post_event(slack_app, body)
    post_event(slack_app, body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    post_event(slack_app, body)  # the same event_id again, without retry headers
    fake_slack.wait_for(replies_to(event["ts"]))
    post_event(slack_app, body, **{"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_error"})
    dm = direct(JAPAN_QUESTION)  # one message delivered twice under different event ids (e.g. mention and DM)
    post_event(slack_app, callback(dm))
    post_event(slack_app, callback(dm | {"type": "app_mention"}))
    fake_slack.wait_for(replies_to(dm["ts"]))  # answered once; the barrier then shows no second answer follows
    answered_after(slack_app, fake_slack)
    assert len(fake_slack.matching(replies_to(event["ts"]))) == 1
    assert len(fake_slack.matching(replies_to(dm["ts"]))) == 1


def test_unsigned_forged_or_stale_requests_get_401_and_nothing_happens(
    slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    asked_before = len(answerer.asked)
    event = mention(JAPAN_QUESTION)
    body = callback(event)
    good = sign(body)
    variants = {
        "missing headers": {},
        "missing signature": {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]},
        "wrong secret": sign(body, secret="not-the-secret"),
        "tampered body": sign(body.replace(b"Japan", b"Korea")),
        "stale timestamp": sign(body, timestamp=int(time.time()) - 6 * 60),
        "timestamp from the future": sign(body, timestamp=int(time.time()) + 6 * 60),
        "non-numeric timestamp": {**good, "X-Slack-Request-Timestamp": "yesterday"},
    }
    for path in ("/slack/events", "/slack/commands"):
        for name, headers in variants.items():
            response = slack_app.post(path, content=body, headers={"Content-Type": "application/json", **headers})
            assert response.status_code == 401, name
            assert "Slack signature" in response.json()["detail"], name
    answered_after(slack_app, fake_slack)
    assert fake_slack.matching(replies_to(event["ts"])) == []
    assert len(answerer.asked) == asked_before + 1  # only the barrier's question


def test_bot_messages_are_ignored(slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer) -> None:
    asked_before = len(answerer.asked)
    ignored = [
        direct(JAPAN_QUESTION, bot_id="B0OTHER", subtype="bot_message"),
        direct(JAPAN_QUESTION, bot_id="B0OTHER"),
        direct(JAPAN_QUESTION, user=BOT_USER),
        direct(JAPAN_QUESTION, subtype="message_changed"),
        mention(JAPAN_QUESTION) | {"user": BOT_USER, "bot_id": BOT_ID},
    ]
    for event in ignored:
        post_event(slack_app, callback(event))
    answered_after(slack_app, fake_slack)
    for event in ignored:
        assert fake_slack.matching(replies_to(event["ts"])) == []
    assert len(answerer.asked) == asked_before + 1


def test_thread_follow_up_gets_the_thread_as_history(
    slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    root = mention(JAPAN_QUESTION, channel="C0002")
    reply_ts, other_ts = new_ts(), new_ts()
    follow = mention("and where is that command based?", channel="C0002", thread_ts=root["ts"])
    fake_slack.threads[("C0002", root["ts"])] = [
        {"type": "message", "user": "U0ASKER", "text": root["text"], "ts": root["ts"], "thread_ts": root["ts"]},
        {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": JAPAN_ANSWER, "ts": reply_ts},
        {"type": "message", "subtype": "bot_message", "bot_id": "B0OTHER", "text": "deploy finished", "ts": other_ts},
        {"type": "message", "user": "U0ASKER", "text": follow["text"], "ts": follow["ts"], "thread_ts": root["ts"]},
    ]  # fmt: skip
    post_event(slack_app, callback(follow))
    posted = fake_slack.wait_for(replies_to(root["ts"]))
    assert posted["channel"] == "C0002" and section_texts(posted["blocks"])
    (lookup,) = fake_slack.matching(
        lambda method, params: method == "conversations.replies" and params["channel"] == "C0002"
    )
    assert lookup["ts"] == root["ts"]
    question, history = next(item for item in answerer.asked if item[0] == "and where is that command based?")
    assert history == [Turn("user", JAPAN_QUESTION), Turn("assistant", JAPAN_ANSWER)]


def test_long_thread_gives_its_latest_turns_as_history(
    slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    root = mention("question 0 about the harbour", channel="C0004")
    thread = [{"type": "message", "user": "U0ASKER", "text": root["text"], "ts": root["ts"], "thread_ts": root["ts"]}]
    for n in range(1, 230):  # 459 earlier messages: three pages of 200, the latest on the last page
        thread.append({"type": "message", "user": "U0ASKER", "text": f"question {n}", "ts": new_ts()})
        thread.append({"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": f"answer {n}", "ts": new_ts()})
    follow = mention("and the next one?", channel="C0004", thread_ts=root["ts"])
    fake_slack.threads[("C0004", root["ts"])] = [*thread, {**follow, "type": "message", "thread_ts": root["ts"]}]
    post_event(slack_app, callback(follow))
    fake_slack.wait_for(replies_to(root["ts"]))
    lookups = fake_slack.matching(
        lambda method, params: method == "conversations.replies" and params["ts"] == root["ts"]
    )
    assert len(lookups) == 3 and lookups[-1]["cursor"] == "400"  # every page read, not only the first
    _, history = next(item for item in answerer.asked if item[0] == "and the next one?")
    assert [turn.content for turn in history] == [
        f"{kind} {n}" for n in range(225, 230) for kind in ("question", "answer")
    ]
    assert [turn.role for turn in history] == ["user", "assistant"] * 5


def test_thread_without_history_access_is_still_answered(
    slack_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    follow = mention(JAPAN_QUESTION, channel="C0003", thread_ts=new_ts())  # the fake answers missing_scope
    post_event(slack_app, callback(follow))
    posted = fake_slack.wait_for(replies_to(follow["thread_ts"]))
    assert section_texts(posted["blocks"])[0] in JAPAN_ANSWERS


def test_routes_are_off_without_configuration(
    seed_settings: Settings, seed_answerer: Answerer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)  # one secret alone is not enough
    app = create_app(seed_settings, answerer=seed_answerer)  # the web page mounted at "/", as `qa serve` runs it
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/").status_code == 200  # the page is there: /slack/* falls through to its mount
        assert not [path for path in http.get("/openapi.json").json()["paths"] if path.startswith("/slack")]
        verification = json.dumps({"type": "url_verification", "challenge": "off"}).encode()
        for path in ("/slack/events", "/slack/commands"):
            response = http.post(path, content=verification, headers=sign(verification))
            # the static page answers a POST with 405; Slack's handler, had it been mounted, would echo "off"
            assert response.status_code == 405 and response.json()["detail"] == "Method Not Allowed", path
        assert http.post("/ask", json={"question": JAPAN_QUESTION}).json()["answer"] in JAPAN_ANSWERS


def test_manifest_points_slack_at_the_served_routes(slack_app: httpx.Client) -> None:
    manifest = yaml.safe_load((ROOT / "slack" / "manifest.yml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    events = manifest["settings"]["event_subscriptions"]
    assert command["command"] == "/ask" and sorted(events["bot_events"]) == ["app_mention", "message.im"]
    assert {"app_mentions:read", "chat:write", "commands", "im:history", "channels:history"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )
    for url in (command["url"], events["request_url"]):
        body = json.dumps({"type": "url_verification", "challenge": "manifest"}).encode()
        response = slack_app.post(urlsplit(url).path, content=body, headers=sign(body))
        assert response.json() == {"challenge": "manifest"}


def test_unreachable_slack_api_gets_503_so_slack_retries(
    seed_settings: Settings, seed_answerer: Answerer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{free_port()}/api/")  # nothing listens there
    app = create_app(seed_settings.model_copy(update={"web_dir": tmp_path}), answerer=seed_answerer)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        body = callback(mention(JAPAN_QUESTION))
        response = http.post("/slack/events", content=body, headers=sign(body))
        assert response.status_code == 503 and "Slack's Web API" in response.json()["detail"]
