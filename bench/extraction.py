"""Extraction seconds per MB for each format, and OCR seconds per page on all cores vs one.

    python bench/extraction.py [--mb 2] [--ocr-pages 6] [--runs 3]
    python bench/extraction.py --mb 0.05 --ocr-pages 1 --runs 1      # a quick check that it runs
    python bench/extraction.py --accuracy                            # OCR character accuracy only

Inputs are generated (tests/formatfactory.py, the writers the tests use): the same seeded English prose
written as each format to about MB megabytes, and a scanned PDF of A4 pages at 300 dpi, each holding ~40
lines of 10-point text. Each file is read the way indexing reads it, `loader.load_document` (parsers in the
long-lived extraction worker, started before the first timing), so the figures include sending the request and
the text back. The median of RUNS reads is printed. OCR is timed with pages spread over all cores and on one.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import ROOT, machine

sys.path.insert(0, str(ROOT / "tests"))

import formatfactory as ff  # noqa: E402
from docfactory import make_pdf  # noqa: E402

from qa import loader  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.extract import Options  # noqa: E402
from qa.extract.worker import read_in_worker  # noqa: E402

WORDS = (
    "harbour ferry lock keeper tide bridge council market river canal storm lighthouse budget report pilot crew "
    "ship cargo dock quay north south morning evening city port water road season repairs opened closed new old"
).split()


def prose(count: int, seed: int = 1) -> list[str]:
    """COUNT paragraphs of three sentences each, the same every run."""
    rng = random.Random(seed)

    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        return " ".join(words).capitalize() + "."

    return [" ".join(sentence() for _ in range(3)) for _ in range(count)]


def writers(folder: Path) -> dict[str, Callable[[int], Path]]:
    """Format -> a function writing N paragraphs (or rows, slides, pages) of prose as that format."""

    def rows(n: int) -> list[list[str]]:
        return [["Paragraph", "Text"], *[[str(i), p] for i, p in enumerate(prose(n))]]

    def text(name: str, body: Callable[[list[str]], str]) -> Callable[[int], Path]:
        def write(n: int) -> Path:
            (folder / name).write_text(body(prose(n)), encoding="utf-8")
            return folder / name

        return write

    def pdf(n: int) -> Path:
        paragraphs = prose(n)
        pages = [" ".join(paragraphs[i : i + 4]) for i in range(0, len(paragraphs), 4)]
        (folder / "bench.pdf").write_bytes(ff.merge_pdfs(*(make_pdf(page) for page in pages)))
        return folder / "bench.pdf"

    return {
        ".txt": text("bench.txt", "\n\n".join),
        ".md": text("bench.md", lambda ps: "# Bench\n\n" + "\n\n".join(ps)),
        ".html": text("bench.html", lambda ps: "<html><body>" + "".join(f"<p>{p}</p>" for p in ps) + "</body></html>"),
        ".pdf": pdf,
        ".docx": lambda n: ff.write_docx(folder / "bench.docx", "Bench", prose(n)),
        ".pptx": lambda n: ff.write_pptx(folder / "bench.pptx", [("Slide", p) for p in prose(n)]),
        ".xlsx": lambda n: ff.write_xlsx(folder / "bench.xlsx", {"Sheet": rows(n)}),
        ".csv": lambda n: ff.write_csv(folder / "bench.csv", rows(n)),
        ".odt": lambda n: ff.write_odt(folder / "bench.odt", "Bench", prose(n)),
        ".ods": lambda n: ff.write_ods(folder / "bench.ods", "Sheet", rows(n)),
        ".odp": lambda n: ff.write_odp(folder / "bench.odp", prose(n)),
        ".epub": lambda n: ff.write_epub(folder / "bench.epub", "Bench", [("Chapter", p) for p in prose(n)]),
        ".rtf": lambda n: ff.write_rtf(folder / "bench.rtf", prose(n)),
        ".eml": lambda n: ff.write_eml(folder / "bench.eml", "Bench", "\n\n".join(prose(n)), "a@x.org", "b@x.org"),
    }  # fmt: skip


def sized(write: Callable[[int], Path], megabytes: float) -> Path:
    """Write once small, then scale the paragraph count so the file is about MEGABYTES."""
    probe = 50
    size = write(probe).stat().st_size
    return write(max(1, round(probe * megabytes * 2**20 / size)))


def timed(read: Callable[[], object], runs: int) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


RUSSIAN = [
    "Мост через реку Шельду будет закрыт на ремонт с 3 по 17 марта.",
    "Паромная переправа работает каждые двадцать минут, первый паром отходит в шесть утра.",
    "Жителей просят заранее планировать поездки и пользоваться общественным транспортом.",
]


def accuracy(settings: Settings, folder: Path) -> None:
    """Character accuracy of OCR (1 - edit distance / length, via difflib) on clean scans and on a photo-like
    page (turned 2 degrees, 1 % speckle, JPEG): a quality figure, independent of the machine's load."""
    import difflib
    import re

    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", text).strip()

    cases = {
        "English scan": (prose(6, seed=3), {}),
        "Russian scan": (RUSSIAN * 2, {}),
        "English photo": (prose(6, seed=3), {"angle": 2.0, "noise": 0.01}),
        "Russian photo": (RUSSIAN * 2, {"angle": 2.0, "noise": 0.01}),
    }
    for label, (lines, effects) in cases.items():
        image = ff.render_text(lines, size=32, width=1600, **effects)
        path = folder / "ocr.jpg"
        image.convert("RGB").save(path, quality=80)
        read = norm(loader.load_document(folder, path, settings=settings).text)
        truth = norm(" ".join(lines))
        ratio = difflib.SequenceMatcher(None, truth, read, autojunk=False).ratio()
        print(f"OCR accuracy, {label} ({settings.ocr_languages}): {ratio:.3f} of {len(truth)} characters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=2.0, help="size of each generated file")
    parser.add_argument("--ocr-pages", type=int, default=6, help="pages in the scanned PDF (0: skip OCR)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--accuracy", action="store_true", help="only OCR accuracy (no timings; load-independent)")
    args = parser.parse_args()
    print(machine())
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.accuracy:
            accuracy(settings, folder)
            return
        loader.load_document(folder, ff.write_csv(folder / "warm.csv", [["a"], ["b"]]), settings=settings)
        print(f"{'format':<6} {'MB':>6} {'chars':>10} {'s/MB':>8}  (median of {args.runs}, via the worker)")
        for suffix, write in writers(folder).items():
            path = sized(write, args.mb)
            megabytes = path.stat().st_size / 2**20
            chars = len(loader.load_document(folder, path, settings=settings).text)
            seconds = timed(lambda: loader.load_document(folder, path, settings=settings), args.runs)  # noqa: B023
            print(f"{suffix:<6} {megabytes:6.2f} {chars:10,d} {seconds / megabytes:8.3f}")
            path.unlink()
        if args.ocr_pages:
            page = ff.render_text(prose(12, seed=2), size=42, width=2480)  # 10 pt at 300 dpi, A4 width
            scan = folder / "scan.pdf"
            scan.write_bytes(ff.scanned_pdf([page] * args.ocr_pages))
            base = Options.from_settings(settings)
            for workers, label in ((0, "all cores"), (1, "one core")):
                options = Options(**{**base.__dict__, "ocr_workers": workers})
                seconds = timed(lambda: read_in_worker(".pdf", scan, options), args.runs)  # noqa: B023
                pages = f"{args.ocr_pages} scanned pages ({label}, {settings.ocr_languages})"
                print(f"OCR of {pages}: {seconds / args.ocr_pages:.2f} s/page")


if __name__ == "__main__":
    main()
