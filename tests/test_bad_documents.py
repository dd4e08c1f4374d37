"""Bad input of every kind is refused with a reason a person can act on, and the other files are indexed:
corrupt files of each format, encrypted PDFs, zip bombs dressed as office files, files with no text, and a
parser that runs past its time limit (its worker process is killed)."""

from __future__ import annotations

import io
import multiprocessing
import tempfile
import time
import zipfile
from pathlib import Path

import formatfactory as ff
import pytest
from docfactory import make_pdf

from qa import loader
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import BadDocument
from qa.extract.archive import MAX_INFLATED_BYTES
from qa.extract.worker import shutdown
from qa.indexer import build_index

ZIP_FORMATS = (".docx", ".pptx", ".xlsx", ".odt", ".ods", ".odp", ".epub")


def refusal(folder: Path, name: str, settings: Settings | None = None) -> str:
    with pytest.raises(BadDocument) as caught:
        loader.load_document(folder, folder / name, settings=settings)
    return str(caught.value)


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(make_pdf("The vault code is 4711."))).pages[0])
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("suffix", ZIP_FORMATS)
def test_corrupt_office_files_name_the_format(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"garbage{suffix}").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    assert f"corrupt {suffix[1:].upper()} file" in refusal(tmp_path, f"garbage{suffix}")


def test_truncated_and_impostor_files(tmp_path: Path) -> None:
    whole = ff.write_docx(tmp_path / "whole.docx", "Minutes", ["The meeting approved the budget."] * 50).read_bytes()
    (tmp_path / "cut.docx").write_bytes(whole[: len(whole) // 2])
    assert "corrupt DOCX file" in refusal(tmp_path, "cut.docx")
    with zipfile.ZipFile(tmp_path / "holiday.pptx", "w") as archive:  # a zip, but not a presentation
        archive.writestr("photo.txt", "not a slide")
    assert "PPTX" in refusal(tmp_path, "holiday.pptx")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nnot a pdf\n")
    assert "PDF" in refusal(tmp_path, "broken.pdf")
    (tmp_path / "letter.rtf").write_text("Dear committee, this is plain text named .rtf", encoding="utf-8")
    assert "corrupt RTF" in refusal(tmp_path, "letter.rtf")
    (tmp_path / "message.eml").write_text("just some words, no headers at all\n", encoding="utf-8")
    assert "not an e-mail message" in refusal(tmp_path, "message.eml")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    assert "corrupt image" in refusal(tmp_path, "photo.jpg")
    (tmp_path / "table.csv").write_bytes(bytes(range(256)) * 8)
    assert "binary" in refusal(tmp_path, "table.csv")


def test_encrypted_pdfs(tmp_path: Path) -> None:
    (tmp_path / "locked.pdf").write_bytes(encrypted_pdf(user_password="secret"))
    reason = refusal(tmp_path, "locked.pdf")
    assert "encrypted PDF" in reason and "password" in reason
    # encrypted only against editing (no password to open): readable like any other PDF
    (tmp_path / "no-edit.pdf").write_bytes(encrypted_pdf(user_password=""))
    assert "vault code is 4711" in loader.load_document(tmp_path, tmp_path / "no-edit.pdf").text


def test_a_zip_bomb_dressed_as_a_docx_is_refused_from_its_directory(tmp_path: Path) -> None:
    bomb = ff.zip_bomb(tmp_path / "report.docx", inflated=MAX_INFLATED_BYTES + 16 * 2**20)
    assert bomb.stat().st_size < 2 * 2**20  # well under the file limit: only the inflated size gives it away
    reason = refusal(tmp_path, "report.docx")
    assert "zip bomb" in reason and "was not decompressed" in reason and "272 MiB" in reason


@pytest.mark.parametrize("suffix", ZIP_FORMATS)
def test_a_zip_bomb_part_under_16_mib_is_refused_from_its_directory(tmp_path: Path, suffix: str) -> None:
    """Every part is held to the ratio check: 15 MiB of zeros from 15 KiB used to pass (only parts over 16 MiB
    were checked), and a dozen such parts fit under the inflated total's limit."""
    ff.zip_bomb(tmp_path / f"letter{suffix}", member="content.xml", inflated=15 * 2**20)
    reason = refusal(tmp_path, f"letter{suffix}")
    assert "part 'content.xml' claims a" in reason and "zip bomb" in reason and "was not decompressed" in reason


def test_a_document_over_the_text_limit_fails_and_the_others_index(tmp_path: Path, e5: Embedder) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "harbour.txt").write_text("The harbour master of Ostend is Marta Claes.", encoding="utf-8")
    (seeds / "chronicle.txt").write_text("Летопись гавани. " * 36_000, encoding="utf-8")  # 1.1 MB: 2 bytes a letter
    rows = [f"Row {i}: locker {i * 7919 % 10007} holds box {i * 104729 % 99991}." for i in range(30_000)]
    ff.write_docx(seeds / "ledger.docx", "Ledger", rows)  # a small file whose text is 1.3 MB
    assert (seeds / "ledger.docx").stat().st_size < 2**20
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5", max_text_mb=1)
    assert refusal(seeds, "chronicle.txt", settings) == (
        "extracted text is 1.1 MB, over the 1 MB limit (QA_MAX_TEXT_MB)"
    )
    report, data = build_index(settings, embedder=e5)
    assert report.added == ["harbour.txt"] and data is not None
    reasons = {failure.path: failure.reason for failure in report.failed}
    assert set(reasons) == {"chronicle.txt", "ledger.docx"}
    assert all("over the 1 MB limit (QA_MAX_TEXT_MB)" in reason for reason in reasons.values())


def test_files_that_yield_no_text(tmp_path: Path) -> None:
    import docx

    docx.Document().save(str(tmp_path / "blank.docx"))
    assert "no text could be extracted" in refusal(tmp_path, "blank.docx")
    ff.write_xlsx(tmp_path / "empty.xlsx", {"Sheet": []})
    assert "no text could be extracted" in refusal(tmp_path, "empty.xlsx")
    (tmp_path / "blank-scan.pdf").write_bytes(ff.scanned_pdf([ff.render_text([""], width=600)]))
    assert "OCR found no legible text" in refusal(tmp_path, "blank-scan.pdf")
    (tmp_path / "spaces.md").write_text("   \n\n  ", encoding="utf-8")
    assert "no text could be extracted" in refusal(tmp_path, "spaces.md")


def test_a_parser_past_its_time_limit_is_stopped_and_the_next_file_reads(tmp_path: Path) -> None:
    rows = "".join(f"Row {i},Value {i},Note {i}\n" for i in range(600_000))  # seconds of parsing
    (tmp_path / "big.csv").write_text("Row,Value,Note\n" + rows, encoding="utf-8")
    hasty = Settings(seeds_dir=tmp_path, index_dir=tmp_path / "index", parse_timeout=0.2)
    reason = refusal(tmp_path, "big.csv", hasty)
    assert "reading stopped after 0.2 s" in reason and "QA_PARSE_TIMEOUT" in reason
    assert not multiprocessing.active_children()  # the worker was killed and reaped
    ff.write_csv(tmp_path / "small.csv", [["Town", "Mayor"], ["Ghent", "Mathias De Clercq"]])
    assert "Town: Ghent; Mayor: Mathias De Clercq" in loader.load_document(tmp_path, tmp_path / "small.csv").text


def test_one_bad_file_never_stops_the_others(tmp_path: Path, e5: Embedder) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    ff.write_docx(seeds / "good.docx", "Harbour", ["The harbour master of Ostend is Marta Claes."])
    ff.zip_bomb(seeds / "bomb.xlsx", member="xl/worksheets/sheet1.xml", inflated=MAX_INFLATED_BYTES + 2**20)
    (seeds / "locked.pdf").write_bytes(encrypted_pdf(user_password="secret"))
    (seeds / "garbage.odt").write_bytes(b"PK\x03\x04 nope")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5")
    report, data = build_index(settings, embedder=e5)
    assert report.added == ["good.docx"] and data is not None
    reasons = {failure.path: failure.reason for failure in report.failed}
    assert "zip bomb" in reasons["bomb.xlsx"]
    assert "encrypted PDF" in reasons["locked.pdf"]
    assert "corrupt ODT" in reasons["garbage.odt"]


def test_a_stopped_ocr_leaves_no_tesseract_and_no_page_images_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker leads a process group: killing the group takes the Tesseract it was running along; the files
    pytesseract wrote for it (the page as PNG, Tesseract's output) are removed with the worker's folder."""
    shutdown()  # the next read starts a worker whose folder lies under this test's temporary directory
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ff.write_csv(tmp_path / "small.csv", [["Town", "Mayor"], ["Ghent", "Mathias De Clercq"]])
    loader.load_document(tmp_path, tmp_path / "small.csv")  # the worker is up
    (worker,) = multiprocessing.active_children()
    (folder,) = scratch.iterdir()  # the worker's own
    lines = [f"Line {i}: the harbour master inspects the northern quay every morning at seven." for i in range(60)]
    ff.render_text(lines, size=42, width=2480).save(tmp_path / "page.png")  # several seconds of OCR
    hasty = Settings(seeds_dir=tmp_path, index_dir=tmp_path / "index", parse_timeout=1.5)
    assert "reading stopped after 1.5 s" in refusal(tmp_path, "page.png", hasty)
    # SIGKILL is delivered at once but a process takes a moment to leave the table: wait for the group to empty
    deadline = time.monotonic() + 10
    while live_processes_in_group(worker.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_in_group(worker.pid) == []
    assert not folder.exists()


def live_processes_in_group(group: int) -> list[str]:
    """Processes of a process group still running (a killed child stays a zombie until someone reaps it)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().rsplit(")", 1)
        except OSError:  # it exited while we looked
            continue
        state, _parent, pgrp = rest.split()[:3]
        if int(pgrp) == group and state not in ("Z", "X"):
            found.append(name.split("(", 1)[1])
    return found
