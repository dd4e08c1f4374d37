"""Where a document in a shared store came from: an upload, or a folder on a named host.

Several `qa serve` processes and `qa index` runs can fill one Milvus, each with its own seeds folder or none.
Each writes under its origin, and the store records which origins hold each document (qa.stores.milvus), so
a folder sync removes only what its own folder held, and an upload, held by no folder, stays until someone
deletes it through the API. The local FAISS store has one origin, its seeds folder, and ignores these.
"""

from __future__ import annotations

import socket

from qa.config import Settings

UPLOAD = "upload"  # documents uploaded through POST /documents: their text lives in the store, not on a disk
FOLDER = "folder:"


def folder(settings: Settings) -> str:
    """``folder:<host>:<absolute seeds path>``: the host is ``QA_REPLICA``, or the machine's name."""
    host = settings.replica or socket.gethostname()
    return f"{FOLDER}{host}:{settings.seeds_dir.resolve()}"


def is_folder(origin: str) -> bool:
    return origin.startswith(FOLDER)


def describe(origins: frozenset[str] | set[str]) -> str:
    """Origins as a sentence part: 'an upload', 'folder /srv/seeds on host a'."""
    said = []
    for origin in sorted(origins):
        if is_folder(origin):
            host, _, path = origin[len(FOLDER) :].partition(":")
            said.append(f"folder {path} on host {host}")
        else:
            said.append("an upload" if origin == UPLOAD else origin)
    return " and ".join(said)
