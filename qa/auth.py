"""Who is calling: the key in ``Authorization: Bearer …`` read into a ``qa.access.Caller``, and what a route needs.

Never the client's address: behind a reverse proxy on the same host every client is 127.0.0.1, so an
address proves nothing. A caller is one of

- a key of `qa keys add` (its scopes) or QA_API_KEY (an admin);
- this process's session token, which `qa serve` prints at start (an admin, for the person at the machine);
- anonymous, with no key at all: it may read every collection while no key is configured (the single user on
  their own machine, a server that refuses to listen beyond loopback) or with QA_ANONYMOUS_READ=1, and never
  write. Once any key exists and QA_ANONYMOUS_READ is off, no key is a 401.

``read_guard`` resolves the caller and leaves it on ``request.state.caller`` (routes read it with
``qa.access.caller_of``); ``change_guard`` adds "may write somewhere"; ``admin_guard`` "is an admin".
The collection a request touches is the route's to check against the caller's scopes.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from qa.access import ADMIN, ANONYMOUS_READER, Caller
from qa.config import Settings
from qa.keys import KeyProblem, Keyring, digest
from qa.security import unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD"})
KEY_SOURCES = "a key from `qa keys add`, QA_API_KEY, or the session token `qa serve` printed at start"
bearer = HTTPBearer(auto_error=False, description=f"The API key: {KEY_SOURCES}.")


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class Auth:
    """A server's keys: the key file and QA_API_KEY (the keyring), this process's session token, and whether
    callers with no key may read. Kept on ``app.state.auth``."""

    def __init__(self, settings: Settings, session_token: str | None = None) -> None:
        self.keyring = Keyring(settings.key_file_path(), settings.api_key)
        self.session_token = session_token or new_session_token()  # in memory only: valid for this process
        self._session_digest = digest(self.session_token)
        self.anonymous_read = settings.anonymous_read

    def keys_configured(self) -> bool:
        try:
            return self.keyring.configured()
        except KeyProblem as exc:  # a damaged key file locks the service rather than opening it
            raise HTTPException(503, str(exc)) from None

    def identify(self, token: str | None) -> Caller:
        """The caller for a presented key (None: no key), or a 401 saying what was wrong."""
        if token is None:
            if self.anonymous_read or not self.keys_configured():
                return ANONYMOUS_READER
            raise unauthorized(f"missing API key: send 'Authorization: Bearer <key>' ({KEY_SOURCES})")
        session = hmac.compare_digest(digest(token), self._session_digest)
        try:
            found = self.keyring.resolve(token)
        except KeyProblem as exc:
            raise HTTPException(503, str(exc)) from None
        if session:
            return ADMIN
        if found is None:
            raise unauthorized("wrong or revoked API key")
        return found


def _auth(request: Request) -> Auth:
    return request.app.state.auth


async def read_guard(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Caller:
    """Every route but /healthz, /readyz and the page: who is asking, on ``request.state.caller``."""
    caller = _auth(request).identify(credentials.credentials if credentials else None)
    request.state.caller = caller
    return caller


async def change_guard(caller: Caller = Depends(read_guard)) -> Caller:
    """Uploads and deletions: never without a key (401, whatever the address). Which collection a key may
    change is the route's to check, after whether it may read the document: a deletion of a document outside
    the key's read scope is a 404, as for one that does not exist, even for a key that may write nowhere."""
    if caller is ANONYMOUS_READER:
        raise unauthorized(f"changing documents needs a key with write scope: send 'Authorization: Bearer <key>' "
                           f"({KEY_SOURCES})")  # fmt: skip
    return caller


async def admin_guard(request: Request, caller: Caller = Depends(read_guard)) -> Caller:
    """/admin/* and /metrics: an admin key, once keys exist. Before that, reading them is as open as reading
    documents; changing anything (POST /admin/reindex) still needs the session token or an admin key."""
    if caller.admin:
        return caller
    if caller is ANONYMOUS_READER:
        if request.method in SAFE_METHODS and not _auth(request).keys_configured():
            return caller
        raise unauthorized(f"this needs an admin key: send 'Authorization: Bearer <key>' ({KEY_SOURCES})")
    raise HTTPException(403, f"key {caller.name!r} is not an admin key (`qa keys add NAME --admin`)")


def document_optional_keys(app: FastAPI) -> None:
    """Say in the OpenAPI schema which routes a caller without a key may use (``security: [{HTTPBearer}, {}]``).

    Reads need a key only once one exists (or never, with QA_ANONYMOUS_READ), so for them the key is optional
    in the schema; changes (uploads, deletions, re-index) need one always, so for them it stays required.
    """
    for route in app.routes:
        if not isinstance(route, APIRoute) or not _uses(route.dependant, read_guard):
            continue
        changes = _uses(route.dependant, change_guard) or (
            _uses(route.dependant, admin_guard) and not route.methods <= SAFE_METHODS
        )
        if not changes:
            route.openapi_extra = {**(route.openapi_extra or {}), "security": [{}]}  # FastAPI appends it


def _uses(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(sub.call is call or _uses(sub, call) for sub in dependant.dependencies)
