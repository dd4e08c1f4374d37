"""Slack's Socket Mode server on 127.0.0.1: a WebSocket speaking Slack's envelopes (``hello``, ``events_api``,
``slash_commands``, ``disconnect``) and recording the client's acks, served by aiohttp in a thread of its own.

``apps.connections.open`` (tests/slack_standin.FakeSlack) hands out ``url()``; the tests then push envelopes,
wait for their acks, and drop the socket the ways Slack's can end: a close frame, a ``disconnect`` envelope, or
a connection that dies without either.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import WSMsgType, web
from conftest import free_port

_tickets = itertools.count(1)


class SocketStandIn:
    """One Slack app's Socket Mode endpoint; every method may be called from the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.lock = threading.Lock()
        self.opened = 0  # sockets the client has opened, reconnections included
        self.open: list[web.WebSocketResponse] = []  # those still open, the newest last
        self.close_codes: list[int | None] = []  # how each closed socket ended (1000: the client closed it)
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the client's ack
        self.sent_at: dict[str, float] = {}  # envelope_id -> when it was sent (time.monotonic)
        self.acked_at: dict[str, float] = {}
        self._transports: dict[int, Any] = {}
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @contextmanager
    def serving(self) -> Iterator[SocketStandIn]:
        thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        thread.start()
        self._call(self._start())
        try:
            yield self
        finally:
            self._call(self._stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            thread.join(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for ws in list(self.open):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self) -> str:
        """A fresh socket address, as apps.connections.open returns one per call."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={next(_tickets)}-{uuid.uuid4().hex[:8]}&app_id=A0001"

    # -- the socket --------------------------------------------------------------------------------------------
    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)  # answers the client's pings with pongs, as Slack does
        await ws.prepare(request)
        with self.lock:
            self.opened += 1
            self.open.append(ws)
            self._transports[id(ws)] = request.transport
        hello = {
            "type": "hello", "num_connections": len(self.open),
            "debug_info": {"host": "applink-standin", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0001"},
        }  # fmt: skip
        await ws.send_str(json.dumps(hello))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    ack = json.loads(message.data)
                    with self.lock:
                        self.acks[ack["envelope_id"]] = ack
                        self.acked_at[ack["envelope_id"]] = time.monotonic()
        finally:
            with self.lock:
                if ws in self.open:
                    self.open.remove(ws)
                self.close_codes.append(ws.close_code)
                self._transports.pop(id(ws), None)
        return ws

    def _call(self, coroutine: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _newest(self) -> web.WebSocketResponse:
        with self.lock:
            if not self.open:
                raise AssertionError("no Socket Mode connection is open")
            return self.open[-1]

    def send(self, envelope: dict[str, Any]) -> None:
        ws = self._newest()
        if "envelope_id" in envelope:
            with self.lock:
                self.sent_at[envelope["envelope_id"]] = time.monotonic()
        self._call(ws.send_str(json.dumps(envelope)))

    def events_api(self, body: dict[str, Any]) -> str:
        """An Events API callback over the socket; returns its envelope id (to wait for the ack)."""
        envelope_id = str(uuid.uuid4())
        self.send({
            "envelope_id": envelope_id, "payload": body, "type": "events_api",
            "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": "",
        })  # fmt: skip
        return envelope_id

    def slash_command(self, payload: dict[str, str]) -> str:
        envelope_id = str(uuid.uuid4())
        self.send({"envelope_id": envelope_id, "payload": payload, "type": "slash_commands",
                   "accepts_response_payload": True})  # fmt: skip
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's warning that it will close this socket: the client is to open a new one."""
        self.send({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}})

    def close(self) -> None:
        """Slack closes the socket with a close frame."""
        ws = self._newest()
        self._call(ws.close(code=1001, message=b"going away"))

    def cut(self) -> None:
        """The connection dies with no close frame (a network drop): only the client's pings can notice."""
        ws = self._newest()
        with self.lock:
            transport = self._transports[id(ws)]
        self.loop.call_soon_threadsafe(transport.abort)

    # -- waiting -----------------------------------------------------------------------------------------------
    def wait_until(self, condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if condition():
                    return
            time.sleep(0.02)
        raise AssertionError(f"{what} not met within {timeout}s (opened {self.opened}, open {len(self.open)})")

    def wait_ack(self, envelope_id: str, timeout: float = 60) -> dict[str, Any]:
        self.wait_until(lambda: envelope_id in self.acks, timeout, f"ack of {envelope_id}")
        return self.acks[envelope_id]

    def ack_seconds(self, envelope_id: str) -> float:
        return self.acked_at[envelope_id] - self.sent_at[envelope_id]
