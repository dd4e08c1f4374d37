"""Reading the seeds folder: every supported format, every encoding quirk, and bad files reported by name."""

from __future__ import annotations

from pathlib import Path

from docfactory import make_pdf

from qa.loader import Failure, iter_documents
from qa.models import Document


def _load(folder: Path) -> tuple[dict[str, Document], dict[str, str]]:
    docs, failures = {}, {}
    for item in iter_documents(folder):
        if isinstance(item, Failure):
            failures[item.path] = item.reason
        else:
            docs[item.id] = item
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
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / ".hidden.txt").write_text("never indexed", encoding="utf-8")

    docs, failures = _load(tmp_path)

    assert set(docs) == {"bom-crlf.txt", "sub/notes.md", "sub/deeper/page.html", "report.pdf"}
    assert docs["bom-crlf.txt"].text == "Первая строка.\nВторая строка.\n"
    assert docs["sub/notes.md"].title == "Field notes"
    html = docs["sub/deeper/page.html"]
    assert html.title == "Harbour page"
    assert "Visible bold text." in html.text and "Second block" in html.text
    assert "hidden" not in html.text and "color" not in html.text
    assert "commissioned in 1987" in docs["report.pdf"].text
    assert docs["report.pdf"].title == "Reactor report"

    assert set(failures) == {"corrupt.pdf", "latin1.txt", "binary.txt", "empty.txt", "image.png"}
    assert "PDF" in failures["corrupt.pdf"]
    assert "UTF-8" in failures["latin1.txt"]
    assert "binary" in failures["binary.txt"]
    assert "empty" in failures["empty.txt"]
    assert "unsupported" in failures["image.png"]


def test_symlink_out_of_the_seeds_folder_is_refused(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2", encoding="utf-8")
    (seeds / "link.txt").symlink_to(secret)
    (seeds / "ok.txt").write_text("A fine document.", encoding="utf-8")
    docs, failures = _load(seeds)
    assert set(docs) == {"ok.txt"}
    assert "outside" in failures["link.txt"]
