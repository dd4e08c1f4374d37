"""Request limits enforced before any parsing: body size (413) and content type (415), in the one error shape.

Bodies are small JSON (64 KiB) everywhere but on ``POST /documents``, whose uploads have their own limit
(QA_MAX_UPLOAD_MB): the two never mix, so a big question body is still refused at 64 KiB.
"""

from __future__ import annotations

import email.message

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.http_errors import error_response

MAX_BODY_BYTES = 64 * 1024
UPLOAD_PATH = "/documents"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` so the route's body read fails with a 413 the error handlers render."""

    def __init__(self, limit: int, what: str = "") -> None:
        super().__init__(413, what or f"request body is over the {limit // 1024} KiB limit")


def upload_limit_message(megabytes: int) -> str:
    return f"upload is over the {megabytes} MB limit (QA_MAX_UPLOAD_MB)"


class BodyLimitMiddleware:
    """Pure ASGI: refuses by Content-Length up front, and counts streamed (chunked) bytes as they arrive.

    Nothing is buffered here, so a client that lies about Content-Length or sends an endless chunked
    body is cut off at ``limit`` bytes either way.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, upload_mb: int | None = None) -> None:
        self.app = app
        self.limit = limit
        self.upload_mb = upload_mb

    def _limit(self, scope: Scope) -> tuple[int, BodyTooLarge]:
        """The byte limit for this request, and the error that names it."""
        if self.upload_mb is not None and scope["method"] == "POST" and scope["path"] == UPLOAD_PATH:
            limit = self.upload_mb * 1024 * 1024
            return limit, BodyTooLarge(limit, upload_limit_message(self.upload_mb))
        return self.limit, BodyTooLarge(self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, too_large = self._limit(scope)
        if _content_length(scope) > limit:
            await error_response(413, str(too_large.detail))(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await error_response(413, str(too_large.detail))(scope, receive, send)


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server rejects a malformed header itself
    return 0


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON: a form post or text/plain never reaches the JSON parser.

    This also closes the CSRF trick of a cross-site form or ``fetch`` without preflight posting to /ask.
    """
    header = request.headers.get("content-type", "")
    message = email.message.Message()
    message["content-type"] = header
    subtype = message.get_content_subtype()
    if (
        not header
        or message.get_content_maintype() != "application"
        or not (subtype == "json" or subtype.endswith("+json"))
    ):
        shown = header or "none"
        raise HTTPException(415, f"Content-Type must be application/json (got {shown})")
