"""The id of the request being served, readable anywhere below it (log records, error bodies).

A ``ContextVar``: each ASGI request runs in a task of its own, and Starlette's ``run_in_threadpool`` copies
the context into the worker thread, so a log line written from a route's thread still names its request.
Kept apart from the middleware that sets it (qa.request_ids) so the error body (qa.http_errors) can read it
without an import cycle.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")  # what a client may choose: no spaces, quotes or newlines to log

_current: ContextVar[str | None] = ContextVar("qa_request_id", default=None)


def current() -> str | None:
    """The id of the request this code runs for, or None outside a request."""
    return _current.get()


def choose(sent: str | None) -> str:
    """The client's own id when it is a sane token (a proxy's or a caller's, so logs join up), else a new one."""
    if sent is not None and SANE.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def bind(request_id: str) -> object:
    """Make ``request_id`` current; returns the token :func:`unbind` takes."""
    return _current.set(request_id)


def unbind(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
