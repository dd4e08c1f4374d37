"""GET /metrics in Prometheus' text format: requests by route and status with their latency, answers by outcome.

Each app has a registry of its own (never prometheus_client's global one): tests build many apps in one
process, and two apps must not count each other's requests. What is read from the index and the re-indexer
(documents, chunks, builds, the encoder) is collected at scrape time by qa.metrics_collectors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# /ask answers in about 0.1 s; uploads wait for their files to be indexed, which can take minutes
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
REASONS = ("answered", "not_found", "small_talk")  # AskResponse.no_answer_reason, None read as "answered"
SOURCES = ("api", "slack")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
UNMATCHED = "unmatched"  # a path no route serves: one label, whatever the path (no unbounded label values)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The app's registry and the metrics counted as requests go by."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "qa_http_requests",
            "HTTP requests by method, route template (not the raw path) and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Seconds from a request's arrival until its response is sent, by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "qa_answers",
            "Answers given, by where the question came from (api: POST /ask, slack) and outcome: answered, or "
            "why not (not_found, small_talk).",
            ["source", "reason"],
            registry=self.registry,
        )
        for source in SOURCES:  # every outcome shows from the start, at 0
            for reason in REASONS:
                self.answers.labels(source, reason)

    def answered(self, reason: str | None, source: str = "api") -> None:
        self.answers.labels(source, reason or "answered").inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def watch(self, collector: Collector) -> None:
        """Read ``collector`` at every scrape (values that live elsewhere: the index, the re-indexer)."""
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that serves ``scope`` (``/documents/{doc_id:path}``), as the router picks
    it: the first full match, else the first that matches the path only (a 405); a mount is its prefix."""
    partial: BaseRoute | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return _template(route)
        if match is Match.PARTIAL and partial is None:
            partial = route
    return _template(partial) if partial is not None else UNMATCHED


def _template(route: BaseRoute) -> str:
    path = str(getattr(route, "path", "") or "")
    if isinstance(route, Mount):  # the web page at "/": one label for every file it serves
        return f"{path}/{{path:path}}"
    return path or "/"


class HttpMetricsMiddleware:
    """Pure ASGI: counts every response (errors and refusals included) and times it to its last byte.

    The route is the one the app's router recorded in the scope; where a mount's own router recorded one of
    its routes after it (relative to the mount), or none ran (a refused host), the route is matched again
    against a copy of the scope taken on arrival, which the routers below have not rewritten.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's router's list: routes added after the middleware are seen too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = dict(scope)
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception with nothing sent ends as a 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            picked = scope.get("route")  # the app's router's pick, unless a mount's router picked after it
            if picked is not None and any(picked is route for route in self.routes):
                route = _template(picked)
            else:
                route = route_template(self.routes, arrived)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe(method, route, status, time.perf_counter() - started)
