"""OpenDocument (.odt, .ods, .odp) through odfpy; a presentation's slide is a page, a sheet's row a line."""

from __future__ import annotations

from pathlib import Path

from qa.errors import BadDocument
from qa.extract.archive import check_zip
from qa.extract.base import Extracted, Options, join_blocks, join_pages, squeeze
from qa.extract.sheets import rows_to_lines

MAX_REPEAT = 1024  # a sheet declares "16384 empty columns" or "a million empty rows" with one element


def _open(path: Path, kind: str):  # noqa: ANN202 - odfpy's OpenDocument
    from odf.opendocument import load

    check_zip(path, kind)
    try:
        return load(str(path))
    except KeyError as exc:  # a zip without content.xml
        raise BadDocument(f"corrupt {kind} file: missing {exc}") from exc


def read_odt(path: Path, options: Options) -> Extracted:
    document = _open(path, "ODT")
    return Extracted(join_blocks(_paragraphs(document.text)), _title(document))


def read_odp(path: Path, options: Options) -> Extracted:
    from odf import draw

    document = _open(path, "ODP")
    slides = [join_blocks(_paragraphs(page)) for page in document.presentation.getElementsByType(draw.Page)]
    text, starts = join_pages(slides)
    return Extracted(text, _title(document), starts)


def read_ods(path: Path, options: Options) -> Extracted:
    from odf import table

    document = _open(path, "ODS")
    sections = []
    for sheet in document.spreadsheet.getElementsByType(table.Table):
        lines = rows_to_lines(_rows(sheet))
        if lines:
            sections.append("\n".join([f"Sheet: {sheet.getAttribute('name')}", *lines]))
    return Extracted("\n\n".join(sections), _title(document))


def _paragraphs(element) -> list[str]:  # noqa: ANN001 - an odfpy element
    """Headings and paragraphs in document order (lists and table cells included), one block each."""
    from odf import teletype

    blocks = []
    for child in element.childNodes:
        if child.nodeType != child.ELEMENT_NODE:
            continue
        if child.qname[1] in ("p", "h") and child.qname[0].endswith(":text:1.0"):
            blocks.append(squeeze(teletype.extractText(child)))
        else:
            blocks.extend(_paragraphs(child))
    return blocks


def _rows(sheet):  # noqa: ANN001, ANN202 - odfpy elements; yields lists of cell texts
    from odf import table

    for row in sheet.getElementsByType(table.TableRow):
        cells: list[str] = []
        for cell in row.childNodes:
            if cell.qname[1] not in ("table-cell", "covered-table-cell"):
                continue
            text = squeeze(" ".join(_paragraphs(cell)))
            repeat = int(cell.getAttribute("numbercolumnsrepeated") or 1)
            cells.extend([text] * min(repeat, MAX_REPEAT))
            if len(cells) >= MAX_REPEAT:
                break
        if not any(cells):
            continue
        for _ in range(min(int(row.getAttribute("numberrowsrepeated") or 1), MAX_REPEAT)):
            yield cells


def _title(document) -> str | None:  # noqa: ANN001 - odfpy's OpenDocument
    from odf import dc, teletype

    titles = document.meta.getElementsByType(dc.Title)
    return (squeeze(teletype.extractText(titles[0])) or None) if titles else None
