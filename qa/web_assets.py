"""Where the web chat's files are: inside the installed package, or web/ beside it in a source checkout.

A wheel ships web/ as the package data ``qa/web`` (pyproject's ``package-dir``), so a non-editable install serves
the page; a checkout or editable install keeps web/ at the top of the repository and reads it there.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def default_web_dir() -> Path:
    """The installed copy when there is one, else the repository's web/ folder."""
    installed = _PACKAGE / "web"
    return installed if (installed / "index.html").is_file() else _PACKAGE.parent / "web"
