"""RTF through striprtf: control words dropped, \\'xx and \\uN escapes decoded to the characters they name."""

from __future__ import annotations

import re
from pathlib import Path

from qa.errors import BadDocument
from qa.extract.base import Extracted, Options, clean


def read_rtf(path: Path, options: Options) -> Extracted:
    from striprtf.striprtf import rtf_to_text

    data = path.read_bytes()
    if not data.lstrip().startswith(b"{\\rtf"):
        raise BadDocument("corrupt RTF: the file does not start with {\\rtf")
    # RTF is 7-bit by definition; 8-bit bytes in the wild are the document's ANSI code page (cp1252 by default)
    raw = data.decode("latin-1")
    codepage = re.search(r"\\ansicpg(\d+)", raw[:4096])
    encoding = f"cp{codepage.group(1)}" if codepage else "cp1252"
    try:
        text = rtf_to_text(raw, encoding=encoding, errors="replace")
    except LookupError:  # a code page Python does not know
        text = rtf_to_text(raw, errors="replace")
    lines = (line.strip() for line in clean(text).splitlines())
    return Extracted("\n".join(line for line in lines if line))
