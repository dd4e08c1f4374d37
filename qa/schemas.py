"""Pydantic request/response models: the HTTP contract, and the OpenAPI schema at /docs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.models import Answer

MAX_QUESTION = 2000
MAX_TURNS = 20
MAX_HISTORY_CHARS = 20_000


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
    )
    top_k: int = Field(5, ge=1, le=20, description="How many citations to return.")
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description="Earlier turns of the chat, oldest first, so follow-up questions are understood.",
    )

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
    start: int = Field(description="Offset of the passage in the document's extracted text.")
    end: int
    text: str = Field(description="Exactly document_text[start:end].")
    highlight: SpanOut = Field(description="The answering sentence, with offsets in the same document text.")
    score: float


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="The best citation's highlight, verbatim; empty when no_answer.")
    no_answer: bool = Field(description="True when nothing in the corpus seems to answer the question.")
    citations: list[CitationOut]
    took_ms: float

    @classmethod
    def from_answer(cls, answer: Answer) -> AskResponse:
        return cls.model_validate(asdict(answer))


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str


class HealthOut(BaseModel):
    status: Literal["ok", "empty"]
    documents: int
    chunks: int
    embedder: str


class ErrorItem(BaseModel):
    field: str | None = None
    message: str


class ErrorOut(BaseModel):
    """The one error body of every 4xx/5xx response."""

    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)


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
