"""The Slack adapter: Bolt (async) listeners for mentions, DMs and ``/ask``, mounted only when Slack is configured.

Slack reaches them over HTTP (the Events API, ``POST /slack/events``) or over Socket Mode (qa.slack_socket), the
same listeners either way. They ask the same ``Answerer`` as ``POST /ask`` (taken from ``app.state`` on every
question, so an index swap reaches Slack too), within the collections the conversation may read
(qa.slack_scopes), and reply with ``qa.slack_render``'s Block Kit layout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import aiohttp
from cachetools import TTLCache
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt import BoltResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.signature import SignatureVerifier

from qa import request_context, slack_scopes
from qa.answer import Answerer
from qa.collections import Scope
from qa.config import Settings
from qa.errors import QAError
from qa.http_errors import error_response
from qa.library import Summary
from qa.models import Answer, Turn
from qa.schemas import ErrorOut
from qa.slack_history import ASKING_SUBTYPES, thread_history, without_mentions
from qa.slack_render import SMALL_TALK_TITLES, Corpus, escape, render_blocks, render_text
from qa.slack_scopes import ChannelScopes, Unmapped
from qa.slack_settings import SlackSettings
from qa.slack_socket import add_socket_mode

log = logging.getLogger(__name__)
USAGE = "Ask me about the documents, for example `/ask who commands US troops in Japan?`"
MENTION_USAGE = "Ask me a question about the documents after the mention, for example: who commands US troops in Japan?"


class Pages(Protocol):
    """What the listeners need of the document library (qa.library, qa.shared_library): its pages."""

    def page(self, offset: int, limit: int, collections: Scope = None) -> tuple[list[Summary], int]: ...


def mount_slack(app: FastAPI, settings: Settings, slack: SlackSettings | None = None) -> bool:
    """Connect Slack when configured: ``POST /slack/events`` and ``/slack/commands`` with the signing secret and
    bot token, Socket Mode (opened in the app's lifespan) with the app token; nothing otherwise.

    Bad Slack variables raise BadSlackSetting, whether Slack is on or not. Call this before any catch-all mount
    (the static web UI at ``/``), which would otherwise shadow the routes.
    """
    slack = slack or SlackSettings()
    slack.check()
    scopes = slack_scopes.read(slack.channel_collections, slack.dm_collections)
    if not slack.http and not slack.socket:
        return False
    bolt = build_bolt_app(
        settings,
        slack,
        scopes,
        answerer=lambda: app.state.answerer,
        library=lambda: getattr(app.state, "library", None),
        on_answer=lambda answer: _count(app, answer),
    )
    if slack.http:
        _add_routes(app, bolt, slack)
    if slack.socket:
        assert slack.app_token is not None
        add_socket_mode(app, bolt, slack.app_token.get_secret_value(), slack.socket_ping_interval)
    return True


def _count(app: FastAPI, answer: Answer) -> None:
    """An answer given in Slack, counted in the app's /metrics beside those of POST /ask (qa.metrics)."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is not None:
        metrics.answered(answer.no_answer_reason, "slack")


def _add_routes(app: FastAPI, bolt: AsyncApp, slack: SlackSettings) -> None:
    assert slack.signing_secret is not None
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
        return await handler.handle(request)

    for path, summary in (("/slack/events", "Slack Events API"), ("/slack/commands", "Slack slash commands")):
        app.add_api_route(path, slack_endpoint, methods=["POST"], summary=summary, include_in_schema=True)


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """The service's one error shape, naming the request (qa.http_errors)."""
    return error_response(status, detail, errors)


def _signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    try:
        return verifier.is_valid(body, timestamp, signature)  # also refuses timestamps older than 5 minutes
    except ValueError:  # a body that is not UTF-8
        return False


def build_bolt_app(
    settings: Settings,
    slack: SlackSettings,
    scopes: ChannelScopes,
    *,
    answerer: Callable[[], Answerer],
    library: Callable[[], Pages | None],
    on_answer: Callable[[Answer], None] = lambda _: None,
) -> AsyncApp:
    """The Bolt app and its listeners; state (the seen-event set) lives here, not in module globals.

    ``answerer`` and ``library`` are read on every question: an index swap reaches Slack, over HTTP and Socket
    Mode alike (Socket Mode requests carry no per-request context to hand them over in). ``on_answer`` sees
    every answer given (the app's /metrics counts them).
    """
    assert slack.bot_token is not None
    secret = slack.signing_secret.get_secret_value() if slack.signing_secret else ""  # none over Socket Mode
    bolt = AsyncApp(token=slack.bot_token.get_secret_value(), signing_secret=secret, logger=log)
    # Bolt builds its client from the token; passing our own client instead makes Bolt warn whenever the
    # SLACK_BOT_TOKEN variable is also set (it reads it itself), so point Bolt's client at the configured API
    # (Socket Mode's apps.connections.open goes through it too)
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

    async def ask(question: str, history: list[Turn], scope: Scope) -> Answer | str:
        answer = await _ask(answerer(), question, slack.max_citations, history, scope)
        if not isinstance(answer, str):
            on_answer(answer)
        return answer

    async def answer_event(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        if _from_bot(event, context) or event.get("subtype") not in ASKING_SUBTYPES:
            return
        channel, ts = event["channel"], event["ts"]
        if not first_time(str(body.get("event_id", "")), f"{channel}:{ts}"):
            log.info("slack: skipping event %s already answered", body.get("event_id"))
            return
        thread_ts = event.get("thread_ts") or ts
        scope = scopes.scope(channel, direct=slack_scopes.is_direct(channel, event.get("channel_type")))
        if isinstance(scope, Unmapped):  # never an answer from elsewhere: say what an admin can do
            await context.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=escape(scope.message))
            return
        question = without_mentions(event.get("text"))
        if not question:
            await context.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=MENTION_USAGE)
            return
        history: list[Turn] = []
        if event.get("thread_ts") and slack.history_messages:
            history = await thread_history(context, channel, event["thread_ts"], ts, slack.history_messages)
        answer = await ask(question, history, scope)
        if isinstance(answer, str):
            await context.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=escape(answer))
            return
        corpus = await corpus_of(library(), answer, scope)
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
            detail = f"cannot reach Slack's Web API at {slack.api_url}; Slack will retry"
            body = ErrorOut(detail=detail, request_id=request_context.current())
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
    async def on_ask(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        channel = command.get("channel_id") or ""
        scope = scopes.scope(channel, direct=slack_scopes.is_direct(channel))  # the channel it is typed in
        if isinstance(scope, Unmapped):
            await ack(text=escape(scope.message), response_type="ephemeral")
            return
        question = (command.get("text") or "").strip()
        if not question:
            await ack(text=USAGE, response_type="ephemeral")  # only the asker sees it
            return
        await ack()  # within Slack's 3 seconds; the answer follows on response_url
        answer = await ask(question, [], scope)
        if isinstance(answer, str):
            await respond(text=escape(answer), response_type="ephemeral")
            return
        corpus = await corpus_of(library(), answer, scope)
        await respond(
            text=render_text(answer, settings.public_url, max_citations=slack.max_citations, corpus=corpus),
            blocks=render_blocks(
                answer, settings.public_url, max_citations=slack.max_citations, echo_question=True, corpus=corpus
            ),
            response_type=slack.command_visibility,
        )

    return bolt


async def _ask(answerer: Answerer, question: str, top_k: int, history: list[Turn], scope: Scope) -> Answer | str:
    """The answer from ``scope``'s collections, or the reason there is none (an empty index) for the asker."""
    try:
        # CPU-bound: off the event loop
        return await asyncio.to_thread(answerer.ask, question, top_k, history, collections=scope)
    except QAError as exc:
        log.warning("slack: cannot answer: %s", exc)
        return f"Sorry, I cannot answer right now: {exc}"


async def corpus_of(library: Pages | None, answer: Answer, scope: Scope = None) -> Corpus | None:
    """For small talk only: how many documents ``scope`` holds and the first titles, as GET /documents lists
    them; a channel mapped to some collections never hears of the others' documents."""
    if answer.no_answer_reason != "small_talk" or library is None:
        return None
    try:
        return await asyncio.to_thread(_corpus, library, scope)  # Milvus: network calls
    except QAError as exc:
        log.warning("slack: cannot list the documents: %s", exc)
        return None


def _corpus(library: Pages, scope: Scope) -> Corpus:
    summaries, total = library.page(0, SMALL_TALK_TITLES, scope)
    return Corpus(total, [summary.title for summary in summaries])


def _from_bot(event: dict[str, Any], context: AsyncBoltContext) -> bool:
    """Bots, this one included, never trigger an answer: two bots could otherwise talk forever."""
    return bool(
        event.get("bot_id")
        or event.get("subtype") == "bot_message"
        or (context.bot_user_id and event.get("user") == context.bot_user_id)
    )
