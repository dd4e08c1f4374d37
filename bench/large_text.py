"""One huge text through the real store code: the write of a 35 MiB Cyrillic document, first and on a later build.

    python bench/large_text.py [--mb 35] [--dim 384] [--old-mb 0]

The text: varied Russian sentences (2 bytes a letter in UTF-8) until it is MB MiB. It is chunked and split into
sentences by the indexer's own code (qa.chunking, qa.sentences); the vectors are random (embedding 35 MiB takes
hours and is not what is measured), DIM wide, with no latent terms. Timed: the local store's writer
(qa.stores.local_writer.FaissWriter, as `qa index` opens it; it detects each chunk's language for the ranking's
correction) putting the document and committing a generation; then a later build, where another document changes
and the big one is kept (copied from the previous generation, not embedded). Before issue 22 every chunk's byte
range re-encoded the text up to it: quadratic, about 67 s at 9 MiB and 29 min at 35 MiB. ``--old-mb N`` times that
former computation on the first N MiB, for the comparison on the same machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, peak_rss_mb

from qa.byte_offsets import utf8_offsets
from qa.chunking import ChunkingParams, chunk_document
from qa.models import Document
from qa.sentences import split_sentences
from qa.stores.base import DocRows
from qa.stores.local_writer import FaissWriter

WORDS = (
    "город порт гавань корабль капитан рыбак берег остров маяк мост улица площадь рынок хлеб пекарня школа "
    "библиотека музей театр река мельница церковь колокол ратуша архив гильдия паром причал буря ветер море"
).split()


def cyrillic_text(mebibytes: float, seed: int = 0) -> str:
    """Sentences of 8 to 20 words with a year in each, paragraphs of 6 sentences, until the UTF-8 size is reached."""
    rng = np.random.default_rng(seed)
    target = int(mebibytes * 2**20)
    parts: list[str] = []
    size = 0
    while size < target:
        sentences = []
        for _ in range(6):
            words = [WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(8, 21))]
            sentences.append(f"{words[0].capitalize()} {' '.join(words[1:])} в {rng.integers(1500, 2025)} году.")
        paragraph = " ".join(sentences) + "\n\n"
        parts.append(paragraph)
        size += len(paragraph.encode())
    return "".join(parts)


def rows_of(doc: Document, dim: int, seed: int = 0) -> tuple[DocRows, float]:
    """The document's rows as the builder would give them (random vectors), and the seconds chunking took."""
    started = time.perf_counter()
    chunks, sentences = [], []
    for chunk in chunk_document(doc, ChunkingParams(500, 60)):
        first = len(sentences)
        sentences.extend((s.start, s.end) for s in split_sentences(doc.text, chunk.start, chunk.end))
        chunks.append((chunk.start, chunk.end, first, len(sentences)))
    took = time.perf_counter() - started
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        rows = rng.normal(size=(n, dim)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    sentence_rows = unit(len(sentences))
    rows = DocRows(doc, chunks, sentences, unit(len(chunks)), sentence_rows, sentence_rows,
                   np.empty((len(chunks), 0), np.float32))  # fmt: skip
    return rows, took


def old_byte_ranges(text: str, chunks: list[tuple[int, int, int, int]]) -> list[tuple[int, int]]:
    """The computation before issue 22: the text re-encoded up to each chunk's start and end."""
    return [(len(text[:s].encode()), len(text[:e].encode())) for s, e, _, _ in chunks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=35.0, help="size of the text in MiB of UTF-8")
    parser.add_argument("--dim", type=int, default=384, help="vector width (e5's 384)")
    parser.add_argument("--old-mb", type=float, default=0.0, help="also time the former byte ranges on N MiB")
    args = parser.parse_args()
    print(machine())

    text = cyrillic_text(args.mb)
    doc = Document("chronicle.txt", "Chronicle", text, "sha-big")
    rows, chunking = rows_of(doc, args.dim)
    size = f"{len(text.encode()) / 2**20:.1f} MiB UTF-8, {len(text):,} characters"
    print(f"text: {size}; {len(rows.chunks):,} chunks, {len(rows.sentences):,} sentences ({chunking:.1f} s to split)")
    header = {
        "embedder": {"name": "bench-random", "dim": args.dim, "sparse": 0, "fine": args.dim},
        "chunking": {"size": 500, "overlap": 60, "splitter": "bench"},
    }
    with tempfile.TemporaryDirectory(prefix="qa-large-text-") as tmp:
        index_dir = Path(tmp) / "index"
        started = time.perf_counter()
        writer = FaissWriter.open(index_dir, header, "auto", rebuild=True)
        writer.put(rows)
        first = writer.commit()
        write = time.perf_counter() - started
        assert first.search_hits(rows.vectors[-1], 1)[0].chunk.text == text[rows.chunks[-1][0] : rows.chunks[-1][1]]
        print(f"store write, first build: {write:.1f} s")

        small = Document("note.txt", "Note", "Маяк на острове горит всю ночь.", "sha-small")
        small_rows = DocRows(small, [(0, len(small.text), 0, 1)], [(0, len(small.text))], rows.vectors[:1],
                             rows.vectors[:1], rows.vectors[:1], np.empty((1, 0), np.float32))  # fmt: skip
        started = time.perf_counter()
        writer = FaissWriter.open(index_dir, header, "auto", rebuild=False, live=first)
        writer.keep(doc.id)
        writer.put(small_rows)
        writer.commit()
        later = time.perf_counter() - started
        print(f"store write, a later build (another document changed, the big one kept): {later:.1f} s")
        started = time.perf_counter()
        utf8_offsets(text, (o for s, e, _, _ in rows.chunks for o in (s, e)))
        print(f"  of which byte ranges (one pass): {time.perf_counter() - started:.2f} s")

    if args.old_mb:
        cut = text.encode()[: int(args.old_mb * 2**20)].decode(errors="ignore")  # whole characters only
        kept = [c for c in rows.chunks if c[1] <= len(cut)]
        started = time.perf_counter()
        old_byte_ranges(cut, kept)
        old = time.perf_counter() - started
        print(
            f"former byte ranges (re-encoding up to each chunk), {args.old_mb:g} MiB, {len(kept):,} chunks: {old:.1f} s"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
