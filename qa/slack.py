"""The Slack adapter: Bolt (async) listeners for mentions, DMs and ``/ask``, mounted only when Slack is configured.

The listeners ask the same ``Answerer`` as ``POST /ask`` (taken from ``app.state`` on every request, so an index
swap reaches Slack too) and reply with ``qa.slack_render``'s Block Kit layout.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from cachetools import TTLCache
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from slack_bolt import BoltResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from qa.answer import Answerer
from qa.config import Settings
from qa.errors import QAError
from qa.library import Library
from qa.models import Answer, Turn
from qa.schemas import ErrorOut
from qa.slack_render import SMALL_TALK_TITLES, Corpus, escape, render_blocks, render_text

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
USAGE = "Ask me about the documents, for example `/ask who commands US troops in Japan?`"
MENTION_USAGE = "Ask me a question about the documents after the mention, for example: who commands US troops in Japan?"
# message subtypes that are a person writing something new; edits, deletions, joins and bots are not questions
ASKING_SUBTYPES = {None, "thread_broadcast", "file_share"}
REPLIES_PAGE = 200  # conversations.replies' largest page; a long thread takes several
MAX_REPLY_PAGES = 50  # 10,000 messages: beyond that a thread is read no further (rate limits)


class SlackSettings(BaseSettings):
    """Slack's own variable names (no ``QA_`` prefix), as Slack's docs and tools spell them."""

    model_config = SettingsConfigDict(env_prefix="SLACK_", extra="ignore")

    signing_secret: SecretStr | None = Field(None, description="Verifies that requests come from Slack.")
    bot_token: SecretStr | None = Field(None, description="The bot's xoxb- token for Slack's Web API.")
    api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests point it elsewhere).")
    command_visibility: Literal["in_channel", "ephemeral"] = Field(
        "ephemeral", description="Who sees /ask answers: the whole channel or only the asker."
    )
    max_citations: int = Field(3, ge=1, le=10, description="Citations shown under each answer.")
    history_messages: int = Field(10, ge=0, le=100, description="Earlier thread messages passed as chat history.")

    @property
    def enabled(self) -> bool:
        return bool(self.signing_secret and self.signing_secret.get_secret_value()) and bool(
            self.bot_token and self.bot_token.get_secret_value()
        )


def mount_slack(app: FastAPI, settings: Settings, slack: SlackSettings | None = None) -> bool:
    """Add ``POST /slack/events`` and ``POST /slack/commands`` when both secrets are set; otherwise add nothing.

    Call it before any catch-all mount (the static web UI at ``/``), which would otherwise shadow the routes.
    """
    slack = slack or SlackSettings()
    if not slack.enabled:
        return False
    assert slack.signing_secret is not None
    bolt = build_bolt_app(settings, slack)
    handler = AsyncSlackRequestHandler(bolt)
    verifier = SignatureVerifier(slack.signing_secret.get_secret_value())

    async def slack_endpoint(request: Request) -> Response:
        # Bolt verifies too; checking first also turns malformed headers or bodies into a clean 401
        if not _signed(verifier, await request.body(), request.headers):
            return _error(
                401,
                "invalid or missing Slack signature (X-Slack-Signature, X-Slack-Request-Timestamp)",
                [{"field": "X-Slack-Signature", "message": "does not match the signing secret, or is too old"}],
            )
        state = request.app.state
        return await handler.handle(request, {"answerer": state.answerer, "library": getattr(state, "library", None)})

    for path, summary in (("/slack/events", "Slack Events API"), ("/slack/commands", "Slack slash commands")):
        app.add_api_route(path, slack_endpoint, methods=["POST"], summary=summary, include_in_schema=True)
    return True


def _error(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    """The service's one error shape (qa.api imports this module, so it cannot lend its helper)."""
    return JSONResponse(ErrorOut(detail=detail, errors=errors or []).model_dump(), status_code=status)


def _signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    try:
        return verifier.is_valid(body, timestamp, signature)  # also refuses timestamps older than 5 minutes
    except ValueError:  # a body that is not UTF-8
        return False


def build_bolt_app(settings: Settings, slack: SlackSettings) -> AsyncApp:
    """The Bolt app and its listeners; state (the seen-event set) lives here, not in module globals."""
    assert slack.bot_token is not None and slack.signing_secret is not None
    bolt = AsyncApp(
        token=slack.bot_token.get_secret_value(), signing_secret=slack.signing_secret.get_secret_value(), logger=log
    )
    # Bolt builds its client from the token; passing our own client instead makes Bolt warn whenever the
    # SLACK_BOT_TOKEN variable is also set (it reads it itself), so point Bolt's client at the configured API
    bolt.client.base_url = slack.api_url
    # Slack redelivers an event it thinks failed (X-Slack-Retry-Num), and may deliver one message both as a
    # mention and as a DM: remember event ids and message ids for an hour so each question is answered once
    seen: TTLCache[str, bool] = TTLCache(maxsize=20_000, ttl=3600)

    def first_time(*keys: str) -> bool:
        """Check-and-mark without an await in between, so concurrent deliveries cannot both pass."""
        if any(key in seen for key in keys if key):
            return False
        for key in keys:
            if key:
                seen[key] = True
        return True

    async def answer_event(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        if _from_bot(event, context) or event.get("subtype") not in ASKING_SUBTYPES:
            return
        channel, ts = event["channel"], event["ts"]
        if not first_time(str(body.get("event_id", "")), f"{channel}:{ts}"):
            log.info("slack: skipping event %s already answered", body.get("event_id"))
            return
        thread_ts = event.get("thread_ts") or ts
        question = MENTION.sub(" ", event.get("text") or "").strip()
        if not question:
            await context.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=MENTION_USAGE)
            return
        history: list[Turn] = []
        if event.get("thread_ts") and slack.history_messages:
            history = await _thread_history(context, channel, event["thread_ts"], ts, slack.history_messages)
        answer = await _ask(context["answerer"], question, slack.max_citations, history)
        if isinstance(answer, str):
            await context.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=escape(answer))
            return
        corpus = await corpus_of(context.get("library"), answer)
        await context.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=render_text(answer, settings.public_url, max_citations=slack.max_citations, corpus=corpus),
            blocks=render_blocks(answer, settings.public_url, max_citations=slack.max_citations, corpus=corpus),
            unfurl_links=False,
            unfurl_media=False,
        )

    @bolt.error
    async def on_error(error: Exception) -> BoltResponse | None:
        """Bolt answers 500 to any failure; an unreachable Slack API (its first auth.test) is a 503 instead."""
        if isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError)):
            log.error("slack: cannot reach Slack's Web API at %s: %s", slack.api_url, error)
            body = ErrorOut(detail=f"cannot reach Slack's Web API at {slack.api_url}; Slack will retry")
            return BoltResponse(status=503, body=body.model_dump_json(), headers={"content-type": "application/json"})
        log.error("slack: request failed", exc_info=error)
        return None

    @bolt.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        await answer_event(event, body, context)

    @bolt.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("channel_type") == "im":  # channel messages are answered only when they mention the bot
            await answer_event(event, body, context)

    @bolt.command("/ask")
    async def on_ask(ack: Any, respond: Any, command: dict[str, Any], context: AsyncBoltContext) -> None:
        question = (command.get("text") or "").strip()
        if not question:
            await ack(text=USAGE, response_type="ephemeral")  # only the asker sees it
            return
        await ack()  # within Slack's 3 seconds; the answer follows on response_url
        answer = await _ask(context["answerer"], question, slack.max_citations, [])
        if isinstance(answer, str):
            await respond(text=escape(answer), response_type="ephemeral")
            return
        corpus = await corpus_of(context.get("library"), answer)
        await respond(
            text=render_text(answer, settings.public_url, max_citations=slack.max_citations, corpus=corpus),
            blocks=render_blocks(
                answer, settings.public_url, max_citations=slack.max_citations, echo_question=True, corpus=corpus
            ),
            response_type=slack.command_visibility,
        )

    return bolt


async def _ask(answerer: Answerer, question: str, top_k: int, history: list[Turn]) -> Answer | str:
    """The answer, or the reason there is none (an empty index) as a message for the asker."""
    try:
        return await asyncio.to_thread(answerer.ask, question, top_k, history)  # CPU-bound: off the event loop
    except QAError as exc:
        log.warning("slack: cannot answer: %s", exc)
        return f"Sorry, I cannot answer right now: {exc}"


async def corpus_of(library: Library | None, answer: Answer) -> Corpus | None:
    """For small talk only: how many documents there are and the first titles, as GET /documents lists them."""
    if answer.no_answer_reason != "small_talk" or library is None:
        return None
    try:
        summaries, total = await asyncio.to_thread(library.page, 0, SMALL_TALK_TITLES)  # Milvus: a network call
    except QAError as exc:
        log.warning("slack: cannot list the documents: %s", exc)
        return None
    return Corpus(total, [summary.title for summary in summaries])


def _from_bot(event: dict[str, Any], context: AsyncBoltContext) -> bool:
    """Bots, this one included, never trigger an answer: two bots could otherwise talk forever."""
    return bool(
        event.get("bot_id")
        or event.get("subtype") == "bot_message"
        or (context.bot_user_id and event.get("user") == context.bot_user_id)
    )


async def _thread_history(
    context: AsyncBoltContext, channel: str, thread_ts: str, before_ts: str, limit: int
) -> list[Turn]:
    """Earlier messages of the thread as chat turns: this bot's replies are the assistant, people the user."""
    # Replies come oldest first, a page at a time: read every page up to the question and keep the latest turns
    turns: deque[Turn] = deque(maxlen=limit)
    before = _ts_key(before_ts)
    try:
        pages = await context.client.conversations_replies(channel=channel, ts=thread_ts, limit=REPLIES_PAGE)
        read = 0
        async for page in pages:  # slack_sdk follows response_metadata.next_cursor
            read += 1
            reached = False
            for message in page.get("messages", []):
                if _ts_key(message.get("ts", "0")) >= before:
                    reached = True
                    continue
                turn = _turn(message, context)
                if turn is not None:
                    turns.append(turn)
            if reached or read >= MAX_REPLY_PAGES:
                break
    except SlackApiError as exc:  # e.g. a missing history scope: answer without history rather than not at all
        log.warning("slack: no thread history for %s/%s: %s", channel, thread_ts, exc.response.get("error"))
        return []
    return list(turns)


def _turn(message: dict[str, Any], context: AsyncBoltContext) -> Turn | None:
    """One thread message as a chat turn: this bot's replies are the assistant, people the user."""
    ours = message.get("user") == context.bot_user_id or (
        context.bot_id is not None and message.get("bot_id") == context.bot_id
    )
    if not ours and (message.get("bot_id") or message.get("subtype") not in ASKING_SUBTYPES):
        return None  # other bots and system messages are not part of the conversation
    text = MENTION.sub(" ", message.get("text") or "").strip()
    return Turn("assistant" if ours else "user", text) if text else None


def _ts_key(ts: str) -> tuple[int, int]:
    """Slack timestamps compared exactly ("1700000000.000100"); floats would lose the last digits."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int(fraction.ljust(6, "0")[:6] or 0)
