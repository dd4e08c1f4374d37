"""Microsoft Office documents: .docx through python-docx, .pptx through python-pptx (a slide is a page)."""

from __future__ import annotations

from pathlib import Path

from qa.extract.archive import check_zip
from qa.extract.base import Extracted, Options, join_blocks, join_pages, squeeze
from qa.extract.sheets import rows_to_lines


def read_docx(path: Path, options: Options) -> Extracted:
    import docx
    from docx.table import Table

    check_zip(path, "DOCX")
    document = docx.Document(str(path))
    blocks: list[str] = []
    heading = None
    for item in document.iter_inner_content():  # paragraphs and tables in reading order
        if isinstance(item, Table):
            blocks.extend(rows_to_lines([cell.text for cell in row.cells] for row in item.rows))
            continue
        text = squeeze(item.text)
        style = (item.style.name if item.style is not None else "") or ""
        if heading is None and text and style.startswith(("Title", "Heading")):
            heading = text
        blocks.append(text)
    title = document.core_properties.title or heading
    return Extracted(join_blocks(blocks), title or None)


def read_pptx(path: Path, options: Options) -> Extracted:
    from pptx import Presentation

    check_zip(path, "PPTX")
    presentation = Presentation(str(path))
    slides = []
    first_title = None
    for slide in presentation.slides:
        blocks = []
        title_shape = slide.shapes.title
        if title_shape is not None and title_shape.has_text_frame and title_shape.text_frame.text.strip():
            first_title = first_title or squeeze(title_shape.text_frame.text)
        for shape in slide.shapes:  # the title placeholder is one of the shapes, in its place
            blocks.extend(_shape_text(shape))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = squeeze(slide.notes_slide.notes_text_frame.text)
            if notes:
                blocks.append(f"Notes: {notes}")
        slides.append(join_blocks(blocks))
    text, starts = join_pages(slides)
    return Extracted(text, presentation.core_properties.title or first_title or None, starts)


def _shape_text(shape) -> list[str]:  # noqa: ANN001 - any python-pptx shape
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if getattr(shape, "shape_type", None) == MSO_SHAPE_TYPE.GROUP:  # read the shapes inside
        return [line for inner in shape.shapes for line in _shape_text(inner)]
    if getattr(shape, "has_table", False):
        return rows_to_lines([cell.text for cell in row.cells] for row in shape.table.rows)
    if getattr(shape, "has_text_frame", False):
        return [squeeze(paragraph.text) for paragraph in shape.text_frame.paragraphs]
    return []
