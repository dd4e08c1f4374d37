"""Code-point offsets -> UTF-8 byte offsets of one text, in one pass over it.

The local store keeps every text as UTF-8 bytes and each chunk as a byte range; measuring each offset as
``len(text[:offset].encode())`` re-encodes the text from its start for every chunk, which is quadratic: about a
minute for 9 MiB of Cyrillic and half an hour for 35 MiB, under the index lock, on every later build too.
"""

from __future__ import annotations

from collections.abc import Iterable


def utf8_offsets(text: str, offsets: Iterable[int]) -> dict[int, int]:
    """Each code-point offset (0..len(text)) -> the byte offset where it falls in ``text.encode()``.

    The offsets are visited in order, so every character between them is encoded once, whatever their number
    or overlap.
    """
    found: dict[int, int] = {}
    at, position = 0, 0
    for offset in sorted(set(offsets)):
        if not 0 <= offset <= len(text):
            raise ValueError(f"offset {offset} is outside a text of {len(text)} characters")
        position += len(text[at:offset].encode("utf-8"))
        found[offset] = position
        at = offset
    return found
