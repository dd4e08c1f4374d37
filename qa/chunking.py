"""Split a document into overlapping passages on paragraph and sentence boundaries, with exact offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.models import Chunk, Document
from qa.sentences import CASELESS_STOPS, SENTENCE_END

# Sentence ends (qa.sentences' rules: never before a lower-case word, so «тыс.» stays put; the full stops of
# scripts without case), then clause and word boundaries as a last resort for very long sentences.
_SEPARATORS = [
    r"\n\s*\n",
    r"\n",
    SENTENCE_END,
    rf"(?<=[{CASELESS_STOPS}])",
    r"(?<=[;:,，；])\s+",
    r"\s+",
    "",
]


# these rules and qa.sentences', by name in the index manifest (v2: the full stops of scripts without case, Thai
# sentences by model, every lower-case letter; v3: a short Thai word the model cuts off joins its sentence; v4:
# no end after an initial or a title): a change rebuilds every index, from the embedding cache for the texts that
# did not change
SPLITTER = "recursive-sentence-v4"


@dataclass(frozen=True)
class ChunkingParams:
    """Recorded in the index manifest: changing either value forces a full rebuild."""

    size: int
    overlap: int


def make_splitter(params: ChunkingParams) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=params.size,
        chunk_overlap=min(params.overlap, params.size // 2),
        add_start_index=True,
        strip_whitespace=True,
    )


def chunk_document(
    doc: Document, params: ChunkingParams, splitter: RecursiveCharacterTextSplitter | None = None
) -> list[Chunk]:
    """Passages of ``doc``; each one's ``text`` is exactly ``doc.text[start:end]``."""
    splitter = splitter or make_splitter(params)
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.create_documents([doc.text]):
        text = piece.page_content
        start = piece.metadata.get("start_index", -1)
        if start < 0 or doc.text[start : start + len(text)] != text:
            # langchain's start index is a text search; fall back to our own from the last chunk
            start = doc.text.find(text, cursor)
            if start < 0:
                start = _locate(doc.text, text)
        if start < 0:
            continue
        chunks.append(Chunk(doc.id, start, start + len(text), text))
        cursor = start + 1
    return chunks


def _locate(text: str, piece: str) -> int:
    """Last resort: match the piece with flexible whitespace (it may have been stripped/joined)."""
    pattern = r"\s+".join(re.escape(word) for word in piece.split())
    match = re.search(pattern, text)
    return match.start() if match else -1
