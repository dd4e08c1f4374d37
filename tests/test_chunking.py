from conftest import SEEDS

from qa.chunking import ChunkingParams, chunk_document
from qa.models import Document


def _doc(text: str) -> Document:
    return Document(id="d.txt", title="d", text=text, sha256="x")


def test_chunks_are_exact_slices_covering_the_seed() -> None:
    text = (SEEDS / "us-japan-security-talks.txt").read_text(encoding="utf-8")
    chunks = chunk_document(_doc(text), ChunkingParams(500, 60))
    assert len(chunks) >= 3
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= 500
    # every non-space character of the document lies in some chunk
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_chunks_end_on_sentence_boundaries_not_after_abbreviations() -> None:
    sentence = "В Японии размещено более 50 тыс. американских военнослужащих и техники. "
    text = sentence * 30
    chunks = chunk_document(_doc(text), ChunkingParams(300, 40))
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text.endswith("техники."), chunk.text[-30:]
        assert text[chunk.start : chunk.end] == chunk.text


def test_overlap_repeats_text_between_neighbours() -> None:
    text = " ".join(f"Sentence number {i} talks about item {i}." for i in range(60))
    chunks = chunk_document(_doc(text), ChunkingParams(200, 60))
    overlaps = [a.end - b.start for a, b in zip(chunks, chunks[1:])]
    assert any(o > 0 for o in overlaps)
    assert all(o <= 60 for o in overlaps)


def test_one_huge_line_is_cut_into_bounded_chunks() -> None:
    text = "слово " * 5000
    chunks = chunk_document(_doc(text), ChunkingParams(400, 0))
    assert all(len(c.text) <= 400 and text[c.start : c.end] == c.text for c in chunks)
    assert chunks[-1].end >= len(text.rstrip())
