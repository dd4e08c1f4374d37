"""Who is asking: the scopes a request carries once its key (or session token) is read.

Kept apart from qa.security (which reads headers) so the answerer, the library and Slack can take a
``Caller`` without importing the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qa import collections
from qa.collections import Scope


@dataclass(frozen=True)
class Caller:
    """A key's name and scopes. ``read``/``write``: the collections it may read or change (None: all)."""

    name: str
    read: Scope = frozenset()
    write: Scope = frozenset()
    admin: bool = False

    def can_read(self, doc_id: str) -> bool:
        return collections.contains(self.read, doc_id)

    def can_write(self, collection: str) -> bool:
        return self.write is None or collection in self.write


ADMIN = Caller("admin", read=None, write=None, admin=True)  # QA_API_KEY, the session token, the CLI
ANONYMOUS_READER = Caller("anonymous", read=None)  # QA_ANONYMOUS_READ=1, or no key configured on loopback


def caller_of(request: Any) -> Caller:
    """The caller an auth dependency recorded on ``request.state.caller`` (qa.security); ADMIN when none did
    (no keys configured: the single user on their own machine)."""
    return getattr(request.state, "caller", None) or ADMIN
