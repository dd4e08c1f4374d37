"""Every response carries ``X-Request-ID``; log records and error bodies written meanwhile carry the same id.

Pure ASGI (not BaseHTTPMiddleware, which runs the app in another task and so loses the context), installed
outermost, so even a refusal by the host guard or the body limit names its request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa import request_context
from qa.http_errors import error_response

_HEADER = request_context.HEADER.lower().encode()


class RequestIdMiddleware:
    """Takes the id from the request's ``X-Request-ID`` when it is a sane token, else makes one up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((value.decode("latin-1") for name, value in scope["headers"] if name == _HEADER), None)
        request_id = request_context.choose(sent)
        token = request_context.bind(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message["headers"] = [*headers, (_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette's last resort answers in plain text without the id; answer in the one error shape
            # first (it then only re-raises, for the server's log). The server closes the connection after an
            # exception: say so, or a keep-alive client sends its next request into a closed socket
            if not started:
                response = error_response(500, "internal server error", headers={"Connection": "close"})
                await response(scope, receive, send_with_id)
            raise
        finally:
            request_context.unbind(token)
