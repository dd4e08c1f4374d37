"""GET /metrics and GET /readyz: what a metrics scraper and an orchestrator ask of a running service.

``/readyz`` is readiness (send me traffic?), ``/healthz`` stays liveness (is the process alive?): until the
first index serves, a new replica answers every question with a 503, so a load balancer should not send it
any, but it must not be restarted either, or its first build never ends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from qa.http_errors import error_response
from qa.metrics import CONTENT_TYPE
from qa.schemas import ErrorOut, ReadyOut

RETRY_AFTER = "5"


def add_ops_routes(app: FastAPI, metrics_access: list[Any]) -> None:
    """``metrics_access``: the dependencies /metrics needs (none when QA_METRICS_PUBLIC=1)."""
    app.state.ready = False

    @app.get(
        "/metrics",
        response_class=Response,
        dependencies=metrics_access,
        responses={
            200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus' text format."},
            401: {"model": ErrorOut},
            403: {"model": ErrorOut},
        },
        summary="Metrics in Prometheus' text format: requests, answers, the corpus, indexing, the encoder",
    )
    def metrics(request: Request) -> Response:  # plain def: with Milvus the corpus counts are network calls
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get(
        "/readyz",
        response_model=ReadyOut,
        responses={503: {"model": ErrorOut, "description": "No index serves yet; the detail says why."}},
        summary="Readiness: 200 once an index serves, 503 until then (liveness is /healthz)",
    )
    def readyz(request: Request) -> ReadyOut | JSONResponse:  # plain def: with Milvus the count is a network call
        why = not_ready(request.app)
        if why is not None:
            return error_response(503, why, headers={"Retry-After": RETRY_AFTER})
        return ReadyOut()


def not_ready(app: FastAPI) -> str | None:
    """None once an index serves (a loaded, non-empty one, or whatever the first build made), else why not.

    Once ready, always ready: a later build swaps a new index in without a gap, and a failed one keeps the
    previous index serving.
    """
    if app.state.ready:
        return None
    answerer = app.state.answerer
    index = answerer.index if answerer is not None else None
    status = app.state.reindexer.status()
    if (index is not None and index.num_chunks > 0) or (status["runs"] and status["last_error"] is None):
        app.state.ready = True
        return None
    progress = status["progress"]
    if progress is not None:
        total = progress["files_total"]
        done = f"{progress['files_done']} of {total} files done" if total is not None else "listing the files"
        return f"no index serves yet: the first is being built ({done}); try again shortly"
    if status["last_error"] is not None:
        return f"no index serves yet: the last build failed ({status['last_error']}); see GET /admin/reindex"
    return "no index serves yet: none has been built; run `qa index` or POST /admin/reindex"
