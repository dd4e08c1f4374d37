"""Tesseract OCR (through pytesseract) for images and for PDF pages without a text layer.

Pages are read in parallel, one Tesseract process per CPU core (each limited to one thread), with a time
limit per page. Without Tesseract, or without a configured language's data, the reason names the Debian
package to install.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import BadDocument
from qa.extract.base import Extracted, Options, heartbeat

if TYPE_CHECKING:
    from PIL.Image import Image

MIN_CONFIDENCE = 40  # Tesseract's word confidence (0-100): below it, a "word" is mostly noise in a photo
TESSERACT_MISSING = (
    "needs OCR, but Tesseract is not installed (install the Debian package tesseract-ocr and the language "
    "packages such as tesseract-ocr-eng, tesseract-ocr-rus; or point QA_TESSERACT_CMD at it)"
)


class OcrUnavailable(BadDocument):
    """Tesseract (or a language's data) is missing: every scanned page would fail the same way."""


def read_image(path: Path, options: Options) -> Extracted:
    """A photo or scan of text: its OCR text, or BadDocument when Tesseract reads nothing."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            frames = [_prepare(frame) for frame in _frames(image)]
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise BadDocument(f"corrupt image ({exc})") from exc
    try:
        texts = list(ocr_pages(frames, options))
    except OcrUnavailable as exc:
        raise BadDocument(f"image {exc}") from exc
    text = "\n\n".join(t for t in texts if t)
    if not text and None in texts:
        raise BadDocument(timeout_reason(options))
    if not text:
        raise BadDocument("no text found in the image (OCR read nothing legible)")
    return Extracted(text)


def ocr_pages(images: Iterable[Image], options: Options) -> Iterator[str | None]:
    """The text of each image, in order; None for a page that overran its time limit (the others go on)."""
    check_tesseract(options)
    workers = options.ocr_workers or len(os.sched_getaffinity(0)) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # submit a bounded number ahead so rendered pages do not pile up in memory
        pending = []
        for number, image in enumerate(images, 1):
            pending.append((number, pool.submit(_ocr_one, image, options)))
            while len(pending) > 2 * workers:
                yield _result(pending.pop(0))
        while pending:
            yield _result(pending.pop(0))


def check_tesseract(options: Options) -> None:
    """OcrUnavailable naming the missing package, before any page is attempted."""
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = options.tesseract_cmd
    try:
        installed = _languages(options.tesseract_cmd)
    except (pytesseract.TesseractNotFoundError, FileNotFoundError, PermissionError) as exc:
        raise OcrUnavailable(TESSERACT_MISSING) from exc
    missing = [lang for lang in options.ocr_languages.split("+") if lang and lang not in installed]
    if missing:
        packages = ", ".join(f"tesseract-ocr-{lang.lower().replace('_', '-')}" for lang in missing)
        raise OcrUnavailable(
            f"needs OCR in {'+'.join(missing)}, whose Tesseract language data is not installed (Debian: {packages}; "
            "or change QA_OCR_LANGUAGES)"
        )


def timeout_reason(options: Options) -> str:
    return f"OCR took longer than {options.ocr_page_timeout:g} s per page and was stopped (QA_OCR_PAGE_TIMEOUT)"


@functools.lru_cache(maxsize=4)
def _languages(command: str) -> frozenset[str]:
    """The languages a Tesseract program has data for (asked once per worker: the worker is recycled)."""
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = command
    return frozenset(pytesseract.get_languages(config=""))


def _result(pending: tuple[int, Future[str]]) -> str | None:
    try:
        text: str | None = pending[1].result()
    except RuntimeError as exc:  # pytesseract kills Tesseract at the time limit and raises RuntimeError
        if "timeout" not in str(exc).lower():
            raise
        text = None
    heartbeat()
    return text


def _ocr_one(image: Image, options: Options) -> str:
    import pytesseract

    data = pytesseract.image_to_data(
        image, lang=options.ocr_languages, timeout=options.ocr_page_timeout, output_type=pytesseract.Output.DICT
    )
    return _layout(data)


def _layout(data: dict[str, list]) -> str:
    """Confident words back into text: a paragraph's lines joined into one line (a sentence wrapped in the
    scan stays one sentence), hyphenated line ends rejoined, paragraphs on their own lines."""
    paragraphs: dict[tuple[int, int], list[list[str]]] = {}
    for i, word in enumerate(data["text"]):
        word = word.strip()
        if not word or float(data["conf"][i]) < MIN_CONFIDENCE:
            continue
        lines = paragraphs.setdefault((data["block_num"][i], data["par_num"][i]), [])
        key = data["line_num"][i]
        if not lines or lines[-1][0] != key:
            lines.append([key])
        lines[-1].append(word)
    out = []
    for lines in paragraphs.values():
        text = ""
        for line in lines:
            words = " ".join(line[1:])
            if text.endswith("-") and words[:1].islower():
                text = text[:-1] + words
            else:
                text = f"{text} {words}" if text else words
        if sum(ch.isalnum() for ch in text) >= 3:
            out.append(text)
    return "\n".join(out)


def _frames(image: Image) -> Iterator[Image]:
    """Every frame of a multi-page TIFF, or the one image."""
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        yield image.copy()


def _prepare(image: Image) -> Image:
    """Grayscale, and big enough for Tesseract (it reads best at ~30 px letters; small photos are upscaled)."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image).convert("L")
    if max(image.size) < 1200:
        factor = 1200 / max(image.size)
        image = image.resize((round(image.width * factor), round(image.height * factor)))
    return image
