"""Content hashes: of source files (what changed?) and of index files (is it damaged?)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed by ``hashlib.file_digest`` so a large file never sits in memory whole."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
