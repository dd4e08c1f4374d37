"""A Slack thread as chat history: the earlier messages of a question's thread, as the answerer's turns.

Apart from the listeners (qa.slack) because it is the one part that pages through Slack's Web API.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError

from qa.models import Turn

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
# message subtypes that are a person writing something new; edits, deletions, joins and bots are not questions
ASKING_SUBTYPES = {None, "thread_broadcast", "file_share"}
REPLIES_PAGE = 200  # conversations.replies' largest page; a long thread takes several
MAX_REPLY_PAGES = 50  # 10,000 messages: beyond that a thread is read no further (rate limits)


def without_mentions(text: str | None) -> str:
    """A message's words with ``<@U…>`` mentions taken out: what was asked."""
    return MENTION.sub(" ", text or "").strip()


async def thread_history(
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
    text = without_mentions(message.get("text"))
    return Turn("assistant" if ours else "user", text) if text else None


def _ts_key(ts: str) -> tuple[int, int]:
    """Slack timestamps compared exactly ("1700000000.000100"); floats would lose the last digits."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int(fraction.ljust(6, "0")[:6] or 0)
