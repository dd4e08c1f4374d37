"""Imported once by the extraction forkserver, so every worker forked from it starts with the parsers loaded."""

from __future__ import annotations

import importlib

from qa.extract import READERS

for _ref in {ref.module for ref in READERS.values()}:
    importlib.import_module(f"qa.extract.{_ref}")
for _library in ("pypdf", "pypdfium2", "docx", "pptx", "openpyxl", "odf.opendocument", "ebooklib.epub", "bs4",
                 "striprtf.striprtf", "pytesseract", "PIL.Image"):  # fmt: skip
    try:
        importlib.import_module(_library)
    except ImportError:  # a missing parser is reported by the reader that needs it, not here
        pass
