"""Spreadsheets (.xlsx through openpyxl, .csv through the standard library): each row becomes one line that
names its columns ("Port: Ostend; Harbour master: Marta Claes"), so a passage holding a row can answer a
question about it on its own."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from qa.errors import BadDocument
from qa.extract.archive import check_zip
from qa.extract.base import Extracted, Options, squeeze
from qa.extract.text import decode


def read_csv(path: Path, options: Options) -> Extracted:
    raw = decode(path.read_bytes())
    try:
        dialect = csv.Sniffer().sniff(raw[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(raw.splitlines(), dialect))
    except csv.Error as exc:
        raise BadDocument(f"corrupt CSV: {exc}") from exc
    return Extracted("\n".join(rows_to_lines(rows)))


def read_xlsx(path: Path, options: Options) -> Extracted:
    from openpyxl import load_workbook

    check_zip(path, "XLSX")
    workbook = load_workbook(path, read_only=True, data_only=True)  # data_only: formulas' last computed values
    try:
        title = workbook.properties.title if workbook.properties else None
        sections = []
        for sheet in workbook.worksheets:
            lines = rows_to_lines(sheet.iter_rows(values_only=True))
            if lines:
                sections.append("\n".join([f"Sheet: {sheet.title}", *lines]))
    finally:
        workbook.close()
    return Extracted("\n\n".join(sections), title or None)


def rows_to_lines(rows: Iterable[Iterable[object]]) -> list[str]:
    """The first non-empty row names the columns; every later row is "Column: value; Column: value."."""
    header: list[str] | None = None
    lines = []
    for row in rows:
        cells = [cell_text(value) for value in row]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        pairs = [
            f"{header[i] if i < len(header) and header[i] else f'Column {i + 1}'}: {value}"
            for i, value in enumerate(cells)
            if value
        ]
        lines.append("; ".join(pairs))
    if header is not None and not lines:  # a single row: it is data, not a header
        lines.append("; ".join(cell for cell in header if cell))
    return lines


def cell_text(value: object) -> str:
    """A cell as a person would read it: 3.0 -> "3", dates in ISO form, one line."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return squeeze(str(value))
