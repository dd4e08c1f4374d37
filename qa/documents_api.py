"""The /documents routes: list, read, upload and delete documents over HTTP (qa.library does the work).

Reads are plain ``def`` endpoints, so FastAPI runs them in its thread pool: with the Milvus store a document
lookup is a network call, and it must never stall the event loop (and every other request with it). Writes
run in the write queue (qa.write_queue), never in that pool: a change waits for the index, and a queue of
them must not take the threads questions need.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from pydantic import WithJsonSchema
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from qa import collections as colls
from qa.access import Caller, caller_of
from qa.errors import DocumentNotFound
from qa.http_errors import error_response
from qa.library import Library
from qa.schemas import (
    COLLECTION_PATTERN,
    CollectionListOut,
    CollectionOut,
    DocumentListOut,
    DocumentOut,
    DocumentSummary,
    ErrorOut,
    UploadOut,
    UploadResult,
)
from qa.write_queue import WriteQueue

# one name, or several separated by commas (qa.collections.NAME each)
CollectionsParam = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": f"^{colls.NAME.pattern}(,{colls.NAME.pattern})*$"})
]
MAX_FILES = 100  # parts named "file" in one upload
MAX_PAGE = 1000
LIST_PARAMS = frozenset({"offset", "limit", "collection"})
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
                    },
                    "collection": {
                        "type": "string",
                        "default": colls.DEFAULT,
                        "pattern": COLLECTION_PATTERN,
                        "description": "The collection to store the files in (its folder under the seeds folder).",
                    },
                },
            }
        }
    },
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


def add_document_routes(app: FastAPI, guarded: list[DependsParam], write: list[DependsParam]) -> None:
    """``guarded``: who is asking (qa.auth.read_guard); ``write``: what every change also needs (a same-site
    Origin, security.write_guard, and a key with write scope, qa.auth.change_guard).

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
        collection: list[CollectionsParam] | None = Query(
            None, description="Only these collections (repeat the parameter or separate names by commas)."
        ),
    ) -> DocumentListOut:
        library: Library = request.app.state.library
        scope = colls.narrow(caller_of(request).read, _collections_asked(collection))
        summaries, total = library.page(offset, limit, scope)
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
        _readable(caller_of(request), doc_id)
        doc = request.app.state.answerer.document(doc_id)
        return DocumentOut(
            id=doc.id, title=doc.title, collection=colls.of(doc.id), text=doc.text, pages=list(doc.pages)
        )

    @app.get(
        "/collections",
        response_model=CollectionListOut,
        responses=_errors(401, 503),
        summary="The collections the caller may read, with their document counts",
        dependencies=guarded,
    )
    def list_collections(request: Request) -> CollectionListOut:
        caller = caller_of(request)
        library: Library = request.app.state.library
        readable = {name: count for name, count in library.collections().items() if _may_read(caller, name)}
        # default where the caller may write it (an upload goes there unless told otherwise), though empty; never
        # to a key that can neither read nor write it: a count of 0 there would be a lie, any other a leak
        shown = {colls.DEFAULT: 0} if caller.can_write(colls.DEFAULT) else {}
        counts = {**shown, **readable}
        return CollectionListOut(
            collections=[
                CollectionOut(name=name, documents=count, writable=caller.can_write(name))
                for name, count in sorted(counts.items())
            ]
        )

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
            collection = _upload_collection(form.getlist("collection"))
            _writable(caller_of(request), collection)
            library: Library = request.app.state.library
            writes: WriteQueue = request.app.state.writes
            outcomes = await writes.run(lambda: library.add(files, collection))
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
        caller = caller_of(request)
        _readable(caller, doc_id)
        _writable(caller, colls.of(doc_id))
        library: Library = request.app.state.library
        writes: WriteQueue = request.app.state.writes
        await writes.run(lambda: library.remove(doc_id))
        return Response(status_code=204)


def _collections_asked(values: list[str] | None) -> list[str] | None:
    """The collections a ``collection`` query parameter names (repeated, or separated by commas); None: not
    given. A name outside the rule is a 422 naming it."""
    if not values:
        return None
    names = [name for value in values for name in value.split(",")]
    problems = []
    for name in names:
        try:
            colls.check(name)
        except colls.BadCollection as exc:
            problems.append({"loc": ("query", "collection"), "msg": str(exc)})
    if problems:
        raise RequestValidationError(problems)
    return names


def _upload_collection(values: list[Any]) -> str:
    """The ``collection`` form field of an upload: one valid name (``default`` when absent), else a 422."""
    if not values:
        return colls.DEFAULT
    if len(values) > 1 or not isinstance(values[0], str):
        raise HTTPException(422, "collection: give one collection name as a plain form field")
    try:
        return colls.check(values[0])
    except colls.BadCollection as exc:
        raise HTTPException(422, f"collection: {exc}") from exc


def _readable(caller: Caller, doc_id: str) -> None:
    """A document outside the caller's read scope is answered exactly as a missing one: its existence is not
    revealed."""
    if not caller.can_read(doc_id):
        raise DocumentNotFound(f"no document with id {doc_id!r}")


def _may_read(caller: Caller, collection: str) -> bool:
    return caller.read is None or collection in caller.read


def _writable(caller: Caller, collection: str) -> None:
    if not caller.can_write(collection):
        raise HTTPException(403, f"this key may not change the collection {collection!r}")


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
