"""Zip-based formats (docx, pptx, xlsx, odt, ods, odp, epub) are checked from the zip directory before any
member is inflated, so a zip bomb dressed as an office file is refused without being decompressed."""

from __future__ import annotations

import zipfile
from pathlib import Path

from qa.errors import BadDocument

MAX_INFLATED_BYTES = 256 * 2**20  # real office files with their pictures inflate to a few times their size
MAX_MEMBERS = 10_000
MAX_RATIO = 200  # deflate reaches ~10x on XML; a member that claims far more is a bomb, not a document


def check_zip(path: Path, kind: str) -> None:
    """Refuse a file that is not a zip, or whose directory declares too much inflated data; reads no member."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadDocument(f"corrupt {kind} file (not a valid zip container: {exc})") from exc
    if len(members) > MAX_MEMBERS:
        raise BadDocument(f"{kind} file holds {len(members)} parts, over the {MAX_MEMBERS} limit (a zip bomb?)")
    total = sum(member.file_size for member in members)
    if total > MAX_INFLATED_BYTES:
        raise BadDocument(
            f"{kind} file would inflate to {total / 2**20:.0f} MiB, over the {MAX_INFLATED_BYTES // 2**20} MiB "
            "limit (a zip bomb?); it was not decompressed"
        )
    # every member, whatever its size: a dozen 15 MiB members inflated from kilobytes are as much a bomb as one
    # of 200 MiB (a parser holds each as a tree several times its size); real parts (XML: ~10x) stay far below
    for member in members:
        if member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise BadDocument(
                f"{kind} file part {member.filename!r} claims a {member.file_size // max(member.compress_size, 1)}x "
                "compression ratio (a zip bomb?); it was not decompressed"
            )
