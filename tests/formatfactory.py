"""Write small real documents of every supported format for the tests, with the formats' own writer libraries
(python-docx, python-pptx, openpyxl, odfpy, EbookLib, Pillow, pypdf: the `test` extra), and images of printed
text for OCR rendered with Pillow and the DejaVu fonts."""

from __future__ import annotations

import csv
import io
import random
import textwrap
import zipfile
from email.message import EmailMessage
from pathlib import Path

from docfactory import make_pdf

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def write_docx(path: Path, title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


def write_pptx(path: Path, slides: list[tuple[str, str]]) -> Path:
    from pptx import Presentation

    presentation = Presentation()
    for title, body in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.save(str(path))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_odt(path: Path, title: str, paragraphs: list[str]) -> Path:
    from odf import dc, text
    from odf.opendocument import OpenDocumentText

    document = OpenDocumentText()
    document.meta.addElement(dc.Title(text=title))
    document.text.addElement(text.H(outlinelevel=1, text=title))
    for paragraph in paragraphs:
        document.text.addElement(text.P(text=paragraph))
    document.save(str(path))
    return path


def write_ods(path: Path, name: str, rows: list[list[str]]) -> Path:
    from odf import table, text
    from odf.opendocument import OpenDocumentSpreadsheet

    document = OpenDocumentSpreadsheet()
    sheet = table.Table(name=name)
    for row in rows:
        line = table.TableRow()
        for value in row:
            cell = table.TableCell(valuetype="string")
            cell.addElement(text.P(text=value))
            line.addElement(cell)
        sheet.addElement(line)
    document.spreadsheet.addElement(sheet)
    document.save(str(path))
    return path


def write_odp(path: Path, slides: list[str]) -> Path:
    from odf import draw, style, text
    from odf.opendocument import OpenDocumentPresentation

    document = OpenDocumentPresentation()
    layout = style.PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = style.MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for number, body in enumerate(slides, 1):
        page = draw.Page(name=f"slide{number}", masterpagename=master)
        frame = draw.Frame(width="20cm", height="10cm", x="1cm", y="1cm")
        box = draw.TextBox()
        box.addElement(text.P(text=body))
        frame.addElement(box)
        page.addElement(frame)
        document.presentation.addElement(page)
    document.save(str(path))
    return path


def write_epub(path: Path, title: str, chapters: list[tuple[str, str]]) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier(f"qa-test-{path.stem}")
    book.set_title(title)
    book.set_language("en")
    items = []
    for number, (heading, body) in enumerate(chapters, 1):
        item = epub.EpubHtml(title=heading, file_name=f"chapter{number}.xhtml", lang="en")
        item.content = f"<html><body><h1>{heading}</h1><p>{body}</p></body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def write_rtf(path: Path, paragraphs: list[str]) -> Path:
    def escape(text: str) -> str:
        out = []
        for char in text:
            if char in "\\{}":
                out.append("\\" + char)
            elif ord(char) > 127:
                out.append(f"\\u{ord(char) if ord(char) < 32768 else ord(char) - 65536}?")
            else:
                out.append(char)
        return "".join(out)

    body = "".join(f"{{\\pard {escape(p)}\\par}}\n" for p in paragraphs)
    path.write_text("{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n" + body + "}", "ascii")
    return path


def write_eml(path: Path, subject: str, body: str, sender: str, to: str, html: bool = False) -> Path:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = "Tue, 01 Dec 2026 09:30:00 +0000"
    if html:
        message.set_content(f"<html><body><p>{body}</p></body></html>", subtype="html")
    else:
        message.set_content(body)
    message.add_attachment(b"%PDF-1.4 tiny", maintype="application", subtype="pdf", filename="schedule.pdf")
    path.write_bytes(bytes(message))
    return path


def text_pdf_pages(pages: list[str]) -> bytes:
    """A PDF with one text page per entry (ASCII), built from docfactory's one-page PDFs."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in pages:
        writer.add_page(PdfReader(io.BytesIO(make_pdf(page))).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_text(
    lines: list[str], *, size: int = 34, width: int = 1400, angle: float = 0.0, noise: float = 0.0, seed: int = 7
):
    """An image of printed text in DejaVu Sans, optionally turned a little and speckled like a photo."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(DEJAVU / "DejaVuSans.ttf"), size)
    wrapped = [part for line in lines for part in (textwrap.wrap(line, width=int(width / (size * 0.55))) or [""])]
    height = int(len(wrapped) * size * 1.5) + 2 * size
    image = Image.new("L", (width, height), 250)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(wrapped):
        draw.text((size, size + number * size * 1.5), line, fill=20, font=font)
    if noise:
        rng = random.Random(seed)
        pixels = image.load()
        for _ in range(int(width * height * noise)):
            x, y = rng.randrange(width), rng.randrange(height)
            pixels[x, y] = rng.choice((0, 255))
    if angle:
        image = image.rotate(angle, expand=True, fillcolor=250)
    return image


def scanned_pdf(images: list) -> bytes:
    """A PDF of page images only (no text layer), as a scanner writes it."""
    out = io.BytesIO()
    images[0].save(out, format="PDF", resolution=150, save_all=True, append_images=images[1:])
    return out.getvalue()


def merge_pdfs(*documents: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in documents:
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bomb(path: Path, member: str = "word/document.xml", inflated: int = 300 * 2**20) -> Path:
    """A zip named like an office file whose one member inflates to ``inflated`` bytes of zeros."""
    block = bytes(2**20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(member, "w", force_zip64=True) as handle:
            for _ in range(inflated // len(block)):
                handle.write(block)
    return path
