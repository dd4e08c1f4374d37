"""A question answered from every supported format, through the production path (discover, check_source,
load_document inside build_index) and the real e5 model; slides and PDF pages cited to the right page."""

from __future__ import annotations

from pathlib import Path

import formatfactory as ff
import pytest

from qa import loader
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.store import IndexData

# file -> (question in English, words the answering passage must hold)
CASES = {
    "notes.txt": ("When does the ferris wheel on the beach close?", "closes in October"),
    "garden.md": ("Who planted the rose garden?", "planted in 1960 by the mayor"),
    "aquarium.html": ("When are the seals fed at the aquarium?", "feeds its seals at 15:00"),
    "authority.pdf": ("How many pilots does the harbour authority employ?", "employs 312 pilots"),
    "lighthouse.docx": ("Who kept the Ostend lighthouse in 1921?", "Henri Vermeulen"),
    "review.pptx": ("What is the dredging budget for 2027?", "4.2 million euros"),
    "crew.xlsx": ("Who is the chief engineer of the Zeemeeuw?", "Anneke Smit"),
    "markets.csv": ("On which day is the market in Diksmuide?", "Market day: Thursday"),
    "council.odt": ("What did the city council approve over the Leie river?", "cycling bridge"),
    "ferries.ods": ("Where does the Princess Amalia ferry sail to?", "Destination: Harwich"),
    "museum.odp": ("When is the museum's night opening?", "first Friday of the month"),
    "lantern.epub": ("Where did the old keeper hide the lantern?", "bell tower of the abbey"),
    "bakery.rtf": ("What does the bakery on Vlamingstraat bake on Saturdays?", "rye bread with caraway"),
    "outage.eml": ("When will tap water be cut off in the Sint-Anna district?", "9 December"),
}


def _write_corpus(seeds: Path) -> None:
    seeds.mkdir(parents=True)
    (seeds / "notes.txt").write_text("The ferris wheel on the beach closes in October.\n", encoding="utf-8")
    (seeds / "garden.md").write_text("# Rose garden\n\nThe rose garden was planted in 1960 by the mayor.\n", "utf-8")
    (seeds / "aquarium.html").write_text(
        "<html><head><title>Aquarium</title></head><body><p>The aquarium feeds its seals at 15:00.</p></body></html>",
        encoding="utf-8",
    )
    (seeds / "authority.pdf").write_bytes(
        ff.text_pdf_pages(
            [
                "Annual report of the harbour authority, prepared for the board.",
                "The harbour authority employs 312 pilots and tug crews.",
                "Contact details and the addresses of the regional offices.",
            ]
        )
    )
    ff.write_docx(
        seeds / "lighthouse.docx",
        "Lighthouse history",
        ["The Ostend lighthouse keeper in 1921 was Henri Vermeulen.", "The lamp was electrified later."],
        table=[["Year", "Event"], ["1859", "First light"]],
    )
    ff.write_pptx(
        seeds / "review.pptx",
        [
            ("Quarterly review", "Agenda: people, money, risks"),
            ("Budget", "The dredging budget for 2027 is 4.2 million euros."),
            ("Risks", "Storm surges may delay the works."),
        ],
    )
    ff.write_xlsx(
        seeds / "crew.xlsx",
        {
            "Crew": [
                ["Name", "Role", "Ship"],
                ["Anneke Smit", "Chief engineer", "Zeemeeuw"],
                ["Joris Peeters", "Deckhand", "Albatros"],
            ]
        },
    )
    ff.write_csv(seeds / "markets.csv", [["Town", "Market day", "Square"], ["Diksmuide", "Thursday", "Grote Markt"]])
    ff.write_odt(
        seeds / "council.odt",
        "Council minutes",
        ["The city council approved a new cycling bridge over the Leie river.", "The meeting closed at nine."],
    )
    ff.write_ods(
        seeds / "ferries.ods",
        "Ferries",
        [["Ferry", "Destination", "Departure"], ["Princess Amalia", "Harwich", "22:00"]],
    )
    ff.write_odp(
        seeds / "museum.odp",
        ["Welcome to the museum", "The museum's night opening is every first Friday of the month."],
    )
    ff.write_epub(
        seeds / "lantern.epub",
        "The Lantern",
        [
            ("The storm", "Rain fell on the dunes all night."),
            ("The hiding place", "The old keeper hid the lantern in the bell tower of the abbey."),
        ],
    )
    ff.write_rtf(
        seeds / "bakery.rtf", ["The bakery on Vlamingstraat bakes rye bread with caraway seeds every Saturday."]
    )
    ff.write_eml(
        seeds / "outage.eml",
        "Water outage",
        "Tap water in the Sint-Anna district will be cut off on 9 December from 8:00 to 12:00 for pipe repairs.",
        "utilities@city.example",
        "residents@city.example",
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, e5: Embedder) -> tuple[Settings, IndexData]:
    base = tmp_path_factory.mktemp("formats")
    _write_corpus(base / "seeds")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    report, data = build_index(settings, embedder=e5)
    assert not report.failed, report.failed
    assert sorted(report.added) == sorted(CASES)
    assert data is not None
    return settings, data


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_question_is_answered_from_each_format(corpus: tuple[Settings, IndexData], e5: Embedder, name: str) -> None:
    settings, data = corpus
    question, expected = CASES[name]
    answer = Answerer(e5, data).ask(question, top_k=3)
    top = answer.citations[0]
    assert top.document == name, (question, [c.document for c in answer.citations])
    assert expected in top.text
    document = loader.load_document(settings.seeds_dir, settings.seeds_dir / name, settings=settings)
    assert document.text[top.start : top.end] == top.text  # offsets point into the extracted text


def test_slides_and_pdf_pages_cite_their_page(corpus: tuple[Settings, IndexData], e5: Embedder) -> None:
    settings, data = corpus
    answerer = Answerer(e5, data)
    for name, page in (("authority.pdf", 2), ("review.pptx", 2), ("museum.odp", 2)):
        question, _ = CASES[name]
        top = answerer.ask(question, top_k=1).citations[0]
        document = loader.load_document(settings.seeds_dir, settings.seeds_dir / name, settings=settings)
        assert len(document.pages) == (3 if name != "museum.odp" else 2)
        assert document.page_at(top.highlight.start) == page, name
        assert top.page == page  # the answerer sets it from the hit's page starts
    plain = loader.load_document(settings.seeds_dir, settings.seeds_dir / "lighthouse.docx", settings=settings)
    assert plain.pages == () and plain.page_at(10) is None


def test_structure_a_reader_can_use(corpus: tuple[Settings, IndexData]) -> None:
    """Rows name their columns, e-mail keeps its headers, titles come from the files, not just their names."""
    settings, _ = corpus

    def load(name: str):
        return loader.load_document(settings.seeds_dir, settings.seeds_dir / name, settings=settings)

    assert "Name: Anneke Smit; Role: Chief engineer; Ship: Zeemeeuw" in load("crew.xlsx").text
    assert "Town: Diksmuide; Market day: Thursday; Square: Grote Markt" in load("markets.csv").text
    assert "Ferry: Princess Amalia; Destination: Harwich; Departure: 22:00" in load("ferries.ods").text
    assert "Year: 1859; Event: First light" in load("lighthouse.docx").text
    mail = load("outage.eml")
    assert mail.title == "Water outage"
    assert "From: utilities@city.example" in mail.text and "Attachments: schedule.pdf" in mail.text
    assert load("lantern.epub").title == "The Lantern"
    assert load("lantern.epub").text.count("The storm") == 1  # the chapter, not a copy from the table of contents
    assert load("council.odt").title == "Council minutes"
    assert load("lighthouse.docx").title == "Lighthouse history"
    assert load("review.pptx").title == "Quarterly review"
