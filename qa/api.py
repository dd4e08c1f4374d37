"""The HTTP API: create_app() builds a FastAPI app whose model and index live on app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa import __version__, store
from qa.answer import Answerer
from qa.config import Settings, get_settings
from qa.embedding import make_embedder
from qa.errors import DocumentNotFound, IndexMissing, QAError
from qa.models import Turn
from qa.schemas import AskRequest, AskResponse, DocumentOut, ErrorOut, HealthOut

log = logging.getLogger(__name__)
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 404, 413, 415, 422, 503)}


def load_answerer(settings: Settings) -> Answerer:
    """The model plus whatever index exists; an empty/missing index still serves /healthz (and 503s)."""
    embedder = make_embedder(settings.embedder, settings.device)
    if settings.store == "milvus":
        from qa import milvus_store

        return Answerer(embedder, milvus_store.open_index(settings, embedder), min_score=settings.min_score)
    try:
        data = store.load(settings.index_dir)
    except IndexMissing:
        data = None
    return Answerer(embedder, data, min_score=settings.min_score)


def create_app(settings: Settings | None = None, *, answerer: Answerer | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "answerer", None) is None:
            app.state.answerer = await run_in_threadpool(load_answerer, settings)
        yield

    app = FastAPI(
        title="qa",
        version=__version__,
        description="Ask questions in any language; get passages from your documents, cited to the character.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.answerer = answerer
    _install_error_handlers(app)

    @app.post("/ask", response_model=AskResponse, responses=_ERRORS, summary="Answer a question with citations")
    async def ask(body: AskRequest, request: Request) -> AskResponse:
        qa: Answerer = request.app.state.answerer
        history = [Turn(t.role, t.content) for t in body.history]
        answer = await run_in_threadpool(qa.ask, body.question, body.top_k, history)
        return AskResponse.from_answer(answer)

    @app.get("/documents/{doc_id:path}", response_model=DocumentOut, responses=_ERRORS, summary="A document's text")
    async def document(doc_id: str, request: Request) -> DocumentOut:
        doc = request.app.state.answerer.document(doc_id)
        return DocumentOut(id=doc.id, title=doc.title, text=doc.text)

    @app.get("/healthz", response_model=HealthOut, summary="Liveness and corpus size")
    async def healthz(request: Request) -> HealthOut:
        qa: Answerer = request.app.state.answerer
        index = qa.index
        documents = index.num_documents if index else 0
        chunks = index.num_chunks if index else 0
        return HealthOut(
            status="ok" if chunks else "empty", documents=documents, chunks=chunks, embedder=qa.embedder.name
        )

    if (settings.web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web")
    return app


def error_response(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse(ErrorOut(detail=detail, errors=errors or []).model_dump(), status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = []
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ()) if part != "body"]
            field = ".".join(loc) or "body"
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "json_invalid":
                field, message = "body", "malformed JSON"
            items.append({"field": field, "message": message})
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in items) or "invalid request"
        return error_response(422, detail, items)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(IndexMissing)
    async def missing(_: Request, exc: IndexMissing) -> JSONResponse:
        return error_response(503, str(exc))

    @app.exception_handler(DocumentNotFound)
    async def not_found(_: Request, exc: DocumentNotFound) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(QAError)
    async def qa_error(_: Request, exc: QAError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return error_response(503, str(exc))
