"""Slack over Socket Mode: an outbound WebSocket that ``qa serve`` opens itself, so no public Request URL.

The connection lives as long as the app: opened after the app's own start-up (the answerer is loaded by then)
and closed before its shutdown. slack_sdk's aiohttp client acknowledges each envelope once Bolt has acked it,
and reconnects on its own: at once when Slack closes the socket or sends ``disconnect``, and within its ping
interval when the socket dies silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)


def add_socket_mode(app: FastAPI, bolt: AsyncApp, app_token: str, ping_interval: float) -> None:
    """Run ``bolt`` over Socket Mode for the lifetime of ``app``, around whatever lifespan it already has.

    ``ping_interval``: seconds between the client's pings; a socket found closed is replaced at the next one.
    """
    app.router.lifespan_context = _with_socket(app.router.lifespan_context, bolt, app_token, ping_interval)


def _with_socket(
    inner: Callable[[Any], AbstractAsyncContextManager[Any]], bolt: AsyncApp, app_token: str, ping_interval: float
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            # built here: the client opens its aiohttp session and message loop on the running event loop
            handler = AsyncSocketModeHandler(bolt, app_token, logger=log, ping_interval=ping_interval)
            # in the background: an unreachable Slack must not hold up the HTTP service (the client retries)
            connecting = asyncio.create_task(_connect(handler))
            try:
                yield state
            finally:
                connecting.cancel()
                try:
                    await handler.close_async()
                except Exception:  # a socket already broken: closing is all that was left to do
                    log.warning("slack: closing the Socket Mode connection failed", exc_info=True)
                log.info("slack: Socket Mode connection closed")

    return lifespan


async def _connect(handler: AsyncSocketModeHandler) -> None:
    log.info("slack: connecting to Slack over Socket Mode")
    await handler.connect_async()  # returns once the first socket is open; retries until then
    log.info("slack: connected over Socket Mode")
