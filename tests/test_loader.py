"""Reading the seeds folder as the indexer does (discover -> check_source -> load_document): the plain formats,
encoding quirks, page starts, and bad files refused by name before or while they are read."""

from __future__ import annotations

from pathlib import Path

import formatfactory as ff
import pytest
from docfactory import make_pdf

from qa import loader
from qa.errors import BadDocument
from qa.models import Document


def load_folder(folder: Path) -> tuple[dict[str, Document], dict[str, str]]:
    """What qa.indexer.build_index does with each file, minus the embedding."""
    docs, failures = {}, {}
    for path in loader.discover(folder):
        name = loader.doc_id(folder, path)
        try:
            loader.check_source(folder, path)
            docs[name] = loader.load_document(folder, path)
        except BadDocument as exc:
            failures[name] = str(exc)
    return docs, failures


def test_formats_encodings_and_failures(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "bom-crlf.txt").write_bytes("\ufeffПервая строка.\r\nВторая строка.\r\n".encode())
    (tmp_path / "sub" / "notes.md").write_text("# Field notes\n\nThe *bridge* opened in 1932.\n", encoding="utf-8")
    (tmp_path / "sub" / "deeper" / "page.html").write_text(
        "<html><head><title>Harbour page</title><style>p{color:red}</style></head>"
        "<body><p>Visible <b>bold</b> text.</p><script>var hidden = 1;</script><div>Second block</div></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "report.pdf").write_bytes(make_pdf("The reactor was commissioned in 1987.", title="Reactor report"))
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage\n%%EOF")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "archive.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (tmp_path / ".hidden.txt").write_text("never indexed", encoding="utf-8")
    (tmp_path / "~$report.docx").write_bytes(b"\x0bMarta Claes" + bytes(150))  # Word's lock file beside an open file

    docs, failures = load_folder(tmp_path)

    assert set(docs) == {"bom-crlf.txt", "sub/notes.md", "sub/deeper/page.html", "report.pdf"}
    assert docs["bom-crlf.txt"].text == "Первая строка.\nВторая строка.\n"
    assert docs["sub/notes.md"].title == "Field notes"
    html = docs["sub/deeper/page.html"]
    assert html.title == "Harbour page"
    assert "Visible bold text." in html.text and "Second block" in html.text
    assert "hidden" not in html.text and "color" not in html.text
    assert "commissioned in 1987" in docs["report.pdf"].text
    assert docs["report.pdf"].title == "Reactor report"
    assert docs["report.pdf"].pages == (0,) and docs["bom-crlf.txt"].pages == ()

    assert set(failures) == {"corrupt.pdf", "latin1.txt", "binary.txt", "empty.txt", "archive.zip"}
    assert "PDF" in failures["corrupt.pdf"]
    assert "UTF-8" in failures["latin1.txt"]
    assert "binary" in failures["binary.txt"]
    assert "empty" in failures["empty.txt"]
    assert "unsupported file type '.zip'" in failures["archive.zip"] and ".docx" in failures["archive.zip"]


def test_a_three_page_pdf_records_where_each_page_starts(tmp_path: Path) -> None:
    pages = ["Cover of the ferry report.", "The ferry to Dover carried 12,000 cars in May.", "Appendix with tables."]
    (tmp_path / "ferry.pdf").write_bytes(ff.text_pdf_pages(pages))
    document = loader.load_document(tmp_path, tmp_path / "ferry.pdf")
    assert len(document.pages) == 3
    for number, page in enumerate(pages, 1):
        start = document.text.index(page)
        assert document.pages[number - 1] == start
        assert document.page_at(start) == document.page_at(start + len(page) - 1) == number


def test_symlink_out_of_the_seeds_folder_is_refused(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2", encoding="utf-8")
    (seeds / "link.txt").symlink_to(secret)
    (seeds / "ok.txt").write_text("A fine document.", encoding="utf-8")
    docs, failures = load_folder(seeds)
    assert set(docs) == {"ok.txt"}
    assert "outside" in failures["link.txt"]


def test_a_file_over_the_limit_is_refused_before_a_byte_is_read(tmp_path: Path) -> None:
    """The 50 MiB limit is the upload limit too; the check needs only stat() (sparse files use no disk)."""
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(loader.MAX_BYTES + 1)  # sparse: no disk used
    assert loader.MAX_BYTES == 50 * 2**20
    with pytest.raises(BadDocument, match="over the 50 MiB limit"):
        loader.check_source(tmp_path, huge)
    with pytest.raises(BadDocument, match="over the 50 MiB limit"):
        loader.load_document(tmp_path, huge)
    at_limit = tmp_path / "at-limit.txt"
    with at_limit.open("wb") as handle:
        handle.truncate(loader.MAX_BYTES)
    assert loader.check_source(tmp_path, at_limit) == at_limit.resolve()
