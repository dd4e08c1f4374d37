"""Scans and photos read by the real Tesseract: a Russian scanned PDF and an English photographed notice
answered from English questions, a PDF mixing text and scanned pages, and every way OCR can be unavailable."""

from __future__ import annotations

from pathlib import Path

import formatfactory as ff
import pytest
from PIL import Image

from qa import loader
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import BadDocument
from qa.indexer import build_index
from qa.store import IndexData

RUSSIAN_NOTICE = [
    "Уведомление о ремонте моста",
    "Мост через реку Шельду будет закрыт на ремонт с 3 по 17 марта. Паромная переправа работает каждые двадцать минут.",
]
ENGLISH_NOTICE = [
    "NOTICE TO RESIDENTS",
    "The swimming pool on Harbour Street will reopen on Monday 14 April after the roof repairs.",
    "Opening hours are 7 am to 9 pm.",
]
SCANNED_PAGE = "The second page was scanned: the lock keeper of the canal is Pieter Jansen."


def write_scans(seeds: Path) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    (seeds / "bridge-scan.pdf").write_bytes(ff.scanned_pdf([ff.render_text(RUSSIAN_NOTICE, size=30, width=1200)]))
    photo = ff.render_text(ENGLISH_NOTICE, size=32, width=1100, angle=2.0, noise=0.01)  # a little turned, speckled
    photo.convert("RGB").save(seeds / "pool-notice.jpg", quality=80)
    (seeds / "canal.pdf").write_bytes(
        ff.merge_pdfs(
            ff.text_pdf_pages(["The first page has a text layer: the canal opens at dawn."]),
            ff.scanned_pdf([ff.render_text([SCANNED_PAGE])]),
        )
    )
    (seeds / "weather.txt").write_text("Rain is expected on the coast all week.", encoding="utf-8")


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory, e5: Embedder) -> tuple[Settings, IndexData]:
    base = tmp_path_factory.mktemp("ocr")
    write_scans(base / "seeds")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    assert settings.ocr_languages == "eng+rus"  # the default reads both
    report, data = build_index(settings, embedder=e5)
    assert not report.failed, report.failed
    assert data is not None
    return settings, data


def test_a_russian_scan_and_an_english_photo_answer_english_questions(
    scans: tuple[Settings, IndexData], e5: Embedder
) -> None:
    _, data = scans
    answerer = Answerer(e5, data)
    bridge = answerer.ask("When will the bridge over the Scheldt be closed for repairs?", top_k=2).citations[0]
    assert bridge.document == "bridge-scan.pdf"
    assert "закрыт на ремонт" in bridge.text and "17 марта" in bridge.text
    pool = answerer.ask("When does the swimming pool on Harbour Street reopen?", top_k=2).citations[0]
    assert pool.document == "pool-notice.jpg"
    assert "Harbour Street" in pool.text and "April" in pool.text


def test_a_pdf_mixing_text_and_scanned_pages_gets_both(scans: tuple[Settings, IndexData], e5: Embedder) -> None:
    settings, data = scans
    top = Answerer(e5, data).ask("Who is the lock keeper of the canal?", top_k=1).citations[0]
    assert top.document == "canal.pdf" and "Pieter Jansen" in top.text
    document = loader.load_document(settings.seeds_dir, settings.seeds_dir / "canal.pdf", settings=settings)
    assert "text layer: the canal opens at dawn" in document.text
    assert len(document.pages) == 2
    assert document.page_at(document.text.index("Pieter Jansen")) == 2
    assert document.page_at(document.text.index("canal opens")) == 1


def test_without_tesseract_scans_are_skipped_naming_the_package(tmp_path: Path, e5: Embedder) -> None:
    write_scans(tmp_path / "seeds")
    settings = Settings(
        seeds_dir=tmp_path / "seeds",
        index_dir=tmp_path / "index",
        embedder="e5",
        tesseract_cmd="/nonexistent/tesseract",
    )
    report, data = build_index(settings, embedder=e5)
    reasons = {failure.path: failure.reason for failure in report.failed}
    assert set(reasons) == {"bridge-scan.pdf", "pool-notice.jpg"}
    assert all("tesseract-ocr" in reason and "not installed" in reason for reason in reasons.values())
    assert "scanned PDF" in reasons["bridge-scan.pdf"]
    assert sorted(report.added) == ["canal.pdf", "weather.txt"]  # the mixed PDF keeps its text page
    assert data is not None
    canal = next(doc for doc in data.documents if doc.id == "canal.pdf")
    assert "canal opens at dawn" in canal.text and "Pieter" not in canal.text


def test_a_language_without_its_data_is_named(tmp_path: Path) -> None:
    ff.render_text(ENGLISH_NOTICE).save(tmp_path / "notice.png")
    settings = Settings(seeds_dir=tmp_path, index_dir=tmp_path / "index", ocr_languages="eng+deu")
    with pytest.raises(BadDocument, match="tesseract-ocr-deu"):
        loader.load_document(tmp_path, tmp_path / "notice.png", settings=settings)


def test_an_image_without_text_and_a_page_over_its_time_limit(tmp_path: Path) -> None:
    Image.new("RGB", (800, 600), (120, 160, 200)).save(tmp_path / "sky.png")
    with pytest.raises(BadDocument, match="no text found in the image"):
        loader.load_document(tmp_path, tmp_path / "sky.png")
    ff.render_text(ENGLISH_NOTICE).save(tmp_path / "notice.png")
    hasty = Settings(seeds_dir=tmp_path, index_dir=tmp_path / "index", ocr_page_timeout=0.001)
    with pytest.raises(BadDocument, match="QA_OCR_PAGE_TIMEOUT"):
        loader.load_document(tmp_path, tmp_path / "notice.png", settings=hasty)
    assert "swimming pool" in loader.load_document(tmp_path, tmp_path / "notice.png").text
