"""One bot, many channels: each channel answers from the collections SLACK_CHANNEL_COLLECTIONS gives it, DMs
from SLACK_DM_COLLECTIONS, and any other channel says it has no documents. Real model, real index of three
collections, signed requests to the live app; Slack's Web API and response_url a stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conftest import JAPAN_ANSWERS, JAPAN_QUESTION, SEEDS, TINY, TINY_ANSWER, LiveServer, free_port
from slack_standin import (
    PUBLIC_URL,
    SECRET,
    TOKEN,
    FakeSlack,
    RecordingAnswerer,
    callback,
    command,
    direct,
    mention,
    next_id,
    replies_to,
    responses_to,
    section_texts,
    sign,
)

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index

HARBOUR_QUESTION = "who is the harbour master of Valdoria?"
JAPAN_DOC = "us-japan-security-talks.txt"
MAPPING = "C0HR=hr;C0ENG=eng,default"


@pytest.fixture(scope="module")
def team_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """hr/harbour.txt, eng/bakery.txt and the seed article at the top (collection ``default``)."""
    base = tmp_path_factory.mktemp("team")
    seeds = base / "seeds"
    for folder, name in (("hr", "harbour.txt"), ("eng", "bakery.txt")):
        (seeds / folder).mkdir(parents=True)
        (seeds / folder / name).write_text(TINY[name], encoding="utf-8")
    shutil.copy(SEEDS / JAPAN_DOC, seeds / JAPAN_DOC)
    return Settings(seeds_dir=seeds, index_dir=base / "index", public_url=PUBLIC_URL)


@pytest.fixture(scope="module")
def answerer(team_settings: Settings, default_embedder: Embedder) -> RecordingAnswerer:
    report, data = build_index(team_settings, embedder=default_embedder)
    assert not report.failed and data is not None
    return RecordingAnswerer(Answerer.from_settings(team_settings, data))


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    with LiveServer(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="module")
def team_app(team_settings: Settings, answerer: RecordingAnswerer, fake_slack: FakeSlack) -> Iterator[httpx.Client]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SLACK_APP_TOKEN", raising=False)
        env.setenv("SLACK_SIGNING_SECRET", SECRET)
        env.setenv("SLACK_BOT_TOKEN", TOKEN)
        env.setenv("SLACK_API_URL", f"{fake_slack.url}/api/")
        env.setenv("SLACK_COMMAND_VISIBILITY", "in_channel")
        env.setenv("SLACK_CHANNEL_COLLECTIONS", MAPPING)
        env.setenv("SLACK_DM_COLLECTIONS", "hr")
        app = create_app(team_settings, answerer=answerer)  # type: ignore[arg-type]
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def ask_in(http: httpx.Client, fake: FakeSlack, event: dict[str, Any]) -> dict[str, Any]:
    """Post a signed event and wait for the bot's reply in its thread."""
    body = callback(event)
    response = http.post("/slack/events", content=body, headers={"Content-Type": "application/json", **sign(body)})
    assert response.status_code == 200, response.text
    return fake.wait_for(replies_to(event.get("thread_ts") or event["ts"]))


def slash(http: httpx.Client, fake: FakeSlack, text: str, channel: str) -> tuple[httpx.Response, str]:
    key = f"team{next_id()}"
    body = urlencode(command(text, channel, f"{fake.url}/response/{key}")).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    return http.post("/slack/commands", content=body, headers=headers), key


def cited(posted: dict[str, Any]) -> list[str]:
    """The document ids a reply cites (each citation's context line starts with the id)."""
    contexts = [block["elements"][0]["text"] for block in posted.get("blocks") or [] if block["type"] == "context"]
    return [text.split(" · ")[0] for text in contexts if " · characters " in text]


def everything(posted: dict[str, Any]) -> str:
    """All a reader of the reply sees: its text and every block."""
    return posted["text"] + json.dumps(posted.get("blocks") or [], ensure_ascii=False)


def test_a_mapped_channel_answers_from_its_collections_only(
    team_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    hr = ask_in(team_app, fake_slack, mention(HARBOUR_QUESTION, channel="C0HR"))
    assert section_texts(hr["blocks"])[0] == TINY_ANSWER
    assert cited(hr) and all(doc.startswith("hr/") for doc in cited(hr))
    # the same question where hr is not readable: never HR's answer, nor a passage of it
    eng = ask_in(team_app, fake_slack, mention(HARBOUR_QUESTION, channel="C0ENG"))
    assert "Ingrid Olsen" not in everything(eng) and "harbour.txt" not in everything(eng)
    assert all(doc == JAPAN_DOC or doc.startswith("eng/") for doc in cited(eng))
    # the seed article is in `default`: the engineering channel reads it, HR's does not
    japan = ask_in(team_app, fake_slack, mention(JAPAN_QUESTION, channel="C0ENG"))
    assert section_texts(japan["blocks"])[0] in JAPAN_ANSWERS
    not_hr = ask_in(team_app, fake_slack, mention(JAPAN_QUESTION, channel="C0HR"))
    assert JAPAN_DOC not in everything(not_hr) and "Гавайях" not in everything(not_hr)
    scopes = [scope for _, scope in answerer.scopes[-4:]]
    assert scopes == [
        frozenset({"hr"}),
        frozenset({"eng", "default"}),
        frozenset({"eng", "default"}),
        frozenset({"hr"}),
    ]


def test_the_deep_link_carries_the_passage_and_no_key(team_app: httpx.Client, fake_slack: FakeSlack) -> None:
    """The link opens the web viewer, which reads the document with the reader's own key (GET /documents/{id}
    refuses one outside its collections): nothing in the URL lets anyone past that."""
    posted = ask_in(team_app, fake_slack, mention(HARBOUR_QUESTION, channel="C0HR"))
    (link,) = re.findall(r"<([^|>]+)\|", section_texts(posted["blocks"])[1])
    assert re.fullmatch(re.escape(PUBLIC_URL) + r"/#doc=hr/harbour\.txt&amp;start=\d+&amp;end=\d+", link)


def test_an_unmapped_channel_says_it_has_no_documents_and_answers_nothing(
    team_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    asked = len(answerer.asked)
    posted = ask_in(team_app, fake_slack, mention(HARBOUR_QUESTION, channel="C0OTHER"))
    assert posted["text"] == (
        "This channel has no documents. An admin can open some to it with SLACK_CHANNEL_COLLECTIONS, e.g. `C0OTHER=hr`."
    )
    assert "blocks" not in posted and len(answerer.asked) == asked  # the question never reached the answerer


def test_direct_messages_read_the_dm_collections(team_app: httpx.Client, fake_slack: FakeSlack) -> None:
    harbour = ask_in(team_app, fake_slack, direct(HARBOUR_QUESTION))
    assert section_texts(harbour["blocks"])[0] == TINY_ANSWER
    japan = ask_in(team_app, fake_slack, direct(JAPAN_QUESTION))  # `default` is not among the DM collections
    assert JAPAN_DOC not in everything(japan) and "Гавайях" not in everything(japan)


def test_slash_commands_follow_the_channel_they_are_typed_in(
    team_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    asked = len(answerer.asked)
    response, key = slash(team_app, fake_slack, HARBOUR_QUESTION, "C0OTHER")
    assert response.status_code == 200 and response.json() == {
        "text": "This channel has no documents. An admin can open some to it with SLACK_CHANNEL_COLLECTIONS, "
        "e.g. `C0OTHER=hr`.",
        "response_type": "ephemeral",  # only the asker sees it
    }
    assert len(answerer.asked) == asked
    for channel, answered in (("C0HR", True), ("C0ENG", False), ("D0001", True)):
        response, key = slash(team_app, fake_slack, HARBOUR_QUESTION, channel)
        assert response.status_code == 200 and response.text == ""
        posted = fake_slack.wait_for(responses_to(key))
        assert (section_texts(posted["blocks"])[0] == TINY_ANSWER) is answered, channel
        assert ("Ingrid Olsen" in everything(posted)) is answered, channel


def test_small_talk_names_only_the_channels_documents(
    team_app: httpx.Client, fake_slack: FakeSlack, answerer: RecordingAnswerer
) -> None:
    harbour, bakery, japan = (answerer.document(doc).title for doc in ("hr/harbour.txt", "eng/bakery.txt", JAPAN_DOC))
    hr = ask_in(team_app, fake_slack, mention("hello, who are you?", channel="C0HR"))
    assert section_texts(hr["blocks"]) == [f"Ask me about the document: {harbour}"]
    eng = ask_in(team_app, fake_slack, mention("hello, who are you?", channel="C0ENG"))
    assert section_texts(eng["blocks"]) == [f"Ask me about the 2 documents: {bakery}, {japan}"]


def test_a_bad_mapping_stops_qa_serve_naming_the_variable(tmp_path: Any) -> None:
    env = {
        **os.environ, "QA_SEEDS_DIR": str(tmp_path / "seeds"), "QA_INDEX_DIR": str(tmp_path / "index"),
        "SLACK_CHANNEL_COLLECTIONS": "general=hr", "COLUMNS": "200",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "error: SLACK_CHANNEL_COLLECTIONS: 'general' is not a channel id" in result.stderr
    assert "Traceback" not in result.stderr
