"""Collections: which team a document belongs to, read from where it lies.

A document's collection is its first folder under ``seeds/`` (``seeds/hr/policy.pdf`` is in ``hr``); files
directly in ``seeds/`` are in ``default``. Read from the document id (its path under ``seeds/``), so every
store, the answerer and the HTTP layer agree on it without storing it twice.

A *scope* is the set of collections a search or a listing may see: ``None`` means every collection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT = "default"
NAME = re.compile(r"[a-z0-9_-]{1,64}")

Scope = frozenset[str] | None  # None: every collection


class BadCollection(ValueError):
    """A collection name outside 1-64 of ``[a-z0-9_-]``."""


def of(doc_id: str) -> str:
    """The collection of a document id: its first folder, or ``default`` for a file at the top."""
    head, sep, _ = doc_id.partition("/")
    return head if sep else DEFAULT


def check(name: str) -> str:
    """``name`` when it is a valid collection name, else BadCollection naming the rule."""
    if not NAME.fullmatch(name):
        raise BadCollection(f"collection {name!r} must be 1-64 of lowercase letters, digits, '_' and '-'")
    return name


def narrow(allowed: Scope, asked: Iterable[str] | None) -> Scope:
    """What a caller allowed ``allowed`` sees when asking for ``asked`` (None: all it may read)."""
    if asked is None:
        return allowed
    wanted = frozenset(asked)
    return wanted if allowed is None else wanted & allowed


def contains(scope: Scope, doc_id: str) -> bool:
    """Whether a document is inside a scope."""
    return scope is None or of(doc_id) in scope
