"""Safe names for uploaded files: the client's name is a hint, never a path."""

from __future__ import annotations

import re
import unicodedata

from qa.errors import BadDocument

MAX_NAME_BYTES = 200  # well under every file system's 255, leaving room for a suffix
# characters Windows forbids, plus "<>&" so a name that held HTML is plain text wherever it is shown
_UNSAFE = re.compile(r'[<>:"/\\|?*&\x00-\x1f\x7f]')


def safe_name(name: str) -> str:
    """The last path part of ``name``, without control or markup characters, leading dots or spaces.

    ``../../etc/passwd`` -> ``passwd``, ``C:\\docs\\a.pdf`` -> ``a.pdf``, ``<img src=x>.txt`` -> ``_img src=x_.txt``,
    ``.env`` -> ``env``. Raises BadDocument when nothing usable is left.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]  # no path part survives, whichever separator the client used
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()  # no hidden files ("." / ".." / ".env")
    if not name or not name.strip("._ "):
        raise BadDocument("the file name is empty once path parts and unsafe characters are removed")
    return _truncate(name)


def _truncate(name: str) -> str:
    """At most MAX_NAME_BYTES of UTF-8, keeping the suffix (it decides how the file is read)."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, suffix = name, ""
    tail = f".{suffix}" if suffix else ""
    budget = MAX_NAME_BYTES - len(tail.encode())
    return stem.encode()[:budget].decode(errors="ignore").rstrip() + tail
