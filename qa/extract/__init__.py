"""Text out of every supported file format, behind one interface: ``read(path, options) -> Extracted``.

One module per format family (``text``, ``pdf``, ``office``, ``opendocument``, ``sheets``, ``ebook``, ``rtf``,
``mail``, ``ocr``); each exposes readers with the same signature, registered here by file suffix. Adding a
format is one new module and one line in :data:`READERS`. The loader decides *whether* a file may be read
(:func:`qa.loader.check_source`) and runs the reader in a worker process with a time limit
(:mod:`qa.extract.worker`); readers only turn bytes into text.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.extract.base import Extracted, Options

__all__ = ["Extracted", "Options", "READERS", "IN_PROCESS", "SUPPORTED", "reader_for"]

Reader = Callable[[Path, Options], Extracted]


@dataclass(frozen=True)
class _Ref:
    """A reader named by module and function, imported on first use (parsers are heavy to import)."""

    module: str
    function: str

    def load(self) -> Reader:
        return getattr(importlib.import_module(f"qa.extract.{self.module}"), self.function)


READERS: dict[str, _Ref] = {
    ".txt": _Ref("text", "read_plain"),
    ".md": _Ref("text", "read_markdown"),
    ".markdown": _Ref("text", "read_markdown"),
    ".html": _Ref("text", "read_html"),
    ".htm": _Ref("text", "read_html"),
    ".pdf": _Ref("pdf", "read_pdf"),
    ".docx": _Ref("office", "read_docx"),
    ".pptx": _Ref("office", "read_pptx"),
    ".xlsx": _Ref("sheets", "read_xlsx"),
    ".csv": _Ref("sheets", "read_csv"),
    ".odt": _Ref("opendocument", "read_odt"),
    ".ods": _Ref("opendocument", "read_ods"),
    ".odp": _Ref("opendocument", "read_odp"),
    ".epub": _Ref("ebook", "read_epub"),
    ".rtf": _Ref("rtf", "read_rtf"),
    ".eml": _Ref("mail", "read_eml"),
    ".png": _Ref("ocr", "read_image"),
    ".jpg": _Ref("ocr", "read_image"),
    ".jpeg": _Ref("ocr", "read_image"),
    ".tif": _Ref("ocr", "read_image"),
    ".tiff": _Ref("ocr", "read_image"),
}
SUPPORTED = frozenset(READERS)
# Plain text is decoded in the calling process: no parser can hang on it, and a worker would cost more than
# the read. Everything else runs in a worker process that is killed when it overruns its time limit.
IN_PROCESS = frozenset({".txt", ".md", ".markdown"})


def reader_for(suffix: str) -> Reader:
    """The reader for a (lower-case) suffix; KeyError for an unsupported one."""
    return READERS[suffix].load()
