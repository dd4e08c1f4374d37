"""API keys with scopes, kept hashed in one JSON file that a running server re-reads when it changes.

A key is 32 random bytes, so a plain SHA-256 of it is as good as a slow password hash (there is nothing to
guess) and lets a request be checked in microseconds. The file holds only the digests: whoever reads it
cannot call the service. It is replaced atomically (a temporary file renamed over it), so a server reading
it mid-write sees the old list or the new one, never half of either; ``Keyring`` notices the new file by its
inode, size and modification time, looked at no more than twice a second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from qa import collections
from qa.access import ADMIN, Caller
from qa.collections import Scope

PREFIX = "qa_"  # says what a leaked string is, for secret scanners and for the person who finds it
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
RECHECK_S = 0.5  # how stale a running server's view of the file may be
VERSION = 1


class KeyProblem(ValueError):
    """A key that cannot be added or revoked, with the reason for the person who asked."""


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored: never the key itself, only its SHA-256."""

    name: str
    digest: str
    read: Scope
    write: Scope
    admin: bool
    created: str

    def caller(self) -> Caller:
        return Caller(self.name, read=self.read, write=self.write, admin=self.admin)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scope(text: str | None) -> Scope:
    """``hr,eng`` -> {"hr", "eng"}; ``*`` -> None (every collection); None or empty -> no collection."""
    if text is None or not text.strip():
        return frozenset()
    names = [part.strip() for part in text.split(",") if part.strip()]
    if "*" in names:
        return None
    return frozenset(collections.check(name) for name in names)


def show_scope(scope: Scope) -> str:
    return "*" if scope is None else ",".join(sorted(scope)) or "-"


def _scope_out(scope: Scope) -> str | list[str]:
    return "*" if scope is None else sorted(scope)


def _scope_in(value: object) -> Scope:
    if value == "*":
        return None
    if not isinstance(value, list):
        raise ValueError(f"a scope must be '*' or a list of collections, not {value!r}")
    return frozenset(str(name) for name in value)


def _record(raw: dict) -> KeyRecord:
    return KeyRecord(
        name=str(raw["name"]),
        digest=str(raw["sha256"]),
        read=_scope_in(raw["read"]),
        write=_scope_in(raw["write"]),
        admin=bool(raw["admin"]),
        created=str(raw["created"]),
    )


class KeyFile:
    """The key file: read, add, revoke. Changes take a lock beside the file, so two `qa keys add` never race."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[KeyRecord]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise KeyProblem(f"cannot read the key file {self.path}: {exc}") from None
        try:
            return [_record(raw) for raw in data["keys"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyProblem(f"the key file {self.path} is malformed ({exc!r}); fix or remove it") from None

    def add(self, name: str, read: Scope, write: Scope, admin: bool) -> str:
        """Stores a new key's digest and returns the key, the one time it is ever seen."""
        if not NAME.fullmatch(name):
            raise KeyProblem(f"key name {name!r} must be 1-64 of letters, digits, '_', '.', '@' and '-'")
        token = PREFIX + secrets.token_urlsafe(32)
        with self._lock():
            records = self.records()
            if any(record.name == name for record in records):
                raise KeyProblem(f"a key named {name!r} exists; revoke it first or choose another name")
            created = datetime.now(UTC).isoformat(timespec="seconds")
            records.append(KeyRecord(name, digest(token), read, write, admin, created))
            self._write(records)
        return token

    def revoke(self, name: str) -> None:
        with self._lock():
            records = self.records()
            kept = [record for record in records if record.name != name]
            if len(kept) == len(records):
                raise KeyProblem(f"no key named {name!r} (`qa keys list` shows them)")
            self._write(kept)

    def _lock(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock")

    def _write(self, records: list[KeyRecord]) -> None:
        body = {
            "version": VERSION,
            "keys": [
                {
                    "name": r.name,
                    "sha256": r.digest,
                    "read": _scope_out(r.read),
                    "write": _scope_out(r.write),
                    "admin": r.admin,
                    "created": r.created,
                }
                for r in records
            ],
        }
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp: mode 0600, only the owner reads
                json.dump(body, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class Keyring:
    """What a server checks a presented key against: the key file (re-read when it changes) and QA_API_KEY."""

    def __init__(self, path: Path, api_key: str | None = None) -> None:
        self.file = KeyFile(path)
        self._env_digest = digest(api_key) if api_key else None
        self._lock = threading.Lock()
        self._records: list[KeyRecord] = []
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")

    def configured(self) -> bool:
        """Whether any key exists: then every guarded route needs one."""
        return self._env_digest is not None or bool(self._current())

    def resolve(self, token: str) -> Caller | None:
        """The caller a presented key stands for, or None for a wrong or revoked one.

        Every digest is compared, in constant time, so the time taken says nothing about which matched.
        """
        presented = digest(token)
        found: Caller | None = None
        if self._env_digest is not None and hmac.compare_digest(presented, self._env_digest):
            found = ADMIN
        for record in self._current():
            if hmac.compare_digest(presented, record.digest):
                found = record.caller()
        return found

    def _current(self) -> list[KeyRecord]:
        now = time.monotonic()
        with self._lock:
            if now - self._checked < RECHECK_S:
                return self._records
            self._checked = now
            try:
                info = self.file.path.stat()
                stamp: tuple[int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp:
                # a malformed file raises here, on every request, rather than silently serving with no keys
                self._records = self.file.records() if stamp is not None else []
                self._stamp = stamp
            return self._records
