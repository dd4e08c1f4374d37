"""The /documents routes: list, read, upload and delete documents over HTTP (qa.library does the work).

Reads are plain ``def`` endpoints, so FastAPI runs them in its thread pool: with the Milvus store a document
lookup is a network call, and it must never stall the event loop (and every other request with it). Writes
run in the write queue (qa.write_queue), never in that pool: a change waits for the index, and a queue of
them must not take the threads questions need.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from qa.http_errors import error_response
from qa.library import Library
from qa.schemas import DocumentListOut, DocumentOut, DocumentSummary, ErrorOut, UploadOut, UploadResult
from qa.write_queue import WriteQueue

MAX_FILES = 100  # parts named "file" in one upload
MAX_PAGE = 1000
LIST_PARAMS = frozenset({"offset", "limit"})
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                        "description": "One or more files; each is stored under the seeds folder by a safe name.",
                    }
                },
            }
        }
    },
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


def add_document_routes(app: FastAPI, guarded: list[DependsParam], write: list[DependsParam]) -> None:
    """``guarded``: the API key check (if any); ``write``: what every change also needs (security.write_guard).

    Routes go on the app itself, not an included router: the 405 handler (qa.api) matches the app's routes.
    """

    @app.get(
        "/documents",
        response_model=DocumentListOut,
        responses=_errors(401, 422, 503),
        summary="The indexed documents, a page at a time",
        dependencies=[*guarded, Depends(_known_query(LIST_PARAMS))],
    )
    def list_documents(
        request: Request,
        offset: int = Query(0, ge=0, description="How many documents to skip (sorted by id)."),
        limit: int = Query(100, ge=1, le=MAX_PAGE, description="Documents per page."),
    ) -> DocumentListOut:
        library: Library = request.app.state.library
        summaries, total = library.page(offset, limit)
        following = offset + limit
        return DocumentListOut(
            documents=[DocumentSummary(**summary.__dict__) for summary in summaries],
            total=total,
            offset=offset,
            limit=limit,
            next_offset=following if following < total else None,
        )

    @app.get(
        "/documents/{doc_id:path}",
        response_model=DocumentOut,
        responses=_errors(401, 404, 503),
        summary="A document's text and page offsets",
        dependencies=guarded,
    )
    def document(doc_id: str, request: Request) -> DocumentOut:
        doc = request.app.state.answerer.document(doc_id)
        return DocumentOut(id=doc.id, title=doc.title, text=doc.text, pages=list(doc.pages))

    @app.post(
        "/documents",
        response_model=UploadOut,
        status_code=201,
        responses={
            **_errors(400, 401, 403, 413, 415, 503),
            409: {"model": ErrorOut, "description": "A file's name is taken by a folder in the seeds folder."},
            422: {"model": ErrorOut, "description": "No file could be indexed; each file's reason in errors."},
        },
        summary="Upload documents; answers once they are searchable",
        dependencies=[*guarded, *write],
        openapi_extra={"requestBody": _UPLOAD_BODY},
    )
    async def upload(request: Request) -> Any:
        _require_multipart(request)
        # parsed here, after the guards: a refused request is never spooled to disk
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
        try:
            parts = form.getlist("file")
            if not parts:
                raise HTTPException(422, "no file: send one or more multipart parts named 'file'")
            files = [(part.filename or "", part.file) for part in parts if isinstance(part, UploadFile)]
            if len(files) != len(parts):
                raise HTTPException(422, "every part named 'file' must be a file (with a filename)")
            library: Library = request.app.state.library
            writes: WriteQueue = request.app.state.writes
            outcomes = await writes.run(lambda: library.add(files))
        finally:
            await form.close()
        results = [UploadResult(id=o.id, title=o.title, status=o.status, error=o.error) for o in outcomes]
        if all(result.status == "failed" for result in results):
            detail = "no file could be indexed: " + "; ".join(f"{r.id}: {r.error}" for r in results)
            return error_response(422, detail, [{"field": r.id, "message": r.error or ""} for r in results])
        return UploadOut(documents=results)

    @app.delete(
        "/documents/{doc_id:path}",
        status_code=204,
        response_class=Response,
        responses=_errors(401, 403, 404, 409, 503),
        summary="Delete a document: its file and its rows; answers once it is no longer searchable",
        dependencies=[*guarded, *write],
    )
    async def delete(doc_id: str, request: Request) -> Response:
        library: Library = request.app.state.library
        writes: WriteQueue = request.app.state.writes
        await writes.run(lambda: library.remove(doc_id))
        return Response(status_code=204)


def _known_query(known: frozenset[str]) -> Callable[[Request], None]:
    """422 for a query parameter the route does not take: a typo such as ``ofset`` would otherwise be ignored."""

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            message = f"unknown query parameter; this route takes {', '.join(sorted(known))}"
            raise RequestValidationError([{"loc": ("query", name), "msg": message} for name in unknown])

    return check


def _require_multipart(request: Request) -> None:
    message = email.message.Message()
    message["content-type"] = request.headers.get("content-type", "")
    if message.get_content_type() != "multipart/form-data":
        shown = request.headers.get("content-type") or "none"
        raise HTTPException(415, f"Content-Type must be multipart/form-data (got {shown})")
