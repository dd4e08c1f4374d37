"""What every request must show besides its key (qa.auth): a host served, a same-site write, CORS, headers.

A local qa must not be usable from the user's own browser on behalf of another site: a
``multipart/form-data`` or ``text/plain`` POST is a simple request that any page can send to 127.0.0.1
without a preflight, and a page whose name rebinds to 127.0.0.1 is same-origin with it. So every request
must name a host this service is meant to answer for (``HostGuard``), and every write must come from no
browser at all (no ``Origin``) or from this service's own page or an allowed CORS origin (``write_guard``).
Who the caller is, and so what it may read and change, is qa.auth's: never the client's address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.config import Settings
from qa.http_errors import error_response

# The web page's policy: no inline script or style, nothing from other origins, never framed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI and ReDoc load their bundles from a CDN and start with an inline script, so /docs and
# /redoc get a policy that allows exactly that (still never framed, no other connections).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


# A reply that depends on who asks (its caller's collections) must never be served to another caller by a
# proxy or the browser's cache: an admin's answer reaching a reader would leak what the reader may not see.
_PER_CALLER = ((b"cache-control", b"private, no-store"), (b"vary", b"Authorization"))


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers to every response, errors and static files included; no-store to replies
    that depend on the caller (those whose route resolved one, qa.auth)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else CSP
        state: dict = scope.setdefault("state", {})  # the dict request.state writes into (qa.auth's caller)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*_COMMON, (b"content-security-policy", csp.encode())]
                if "caller" in state or message["status"] in (401, 403):
                    extra += _PER_CALLER  # what this key may read: never from a shared cache
                for name, value in extra:
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(settings: Settings) -> set[str]:
    """Host names served: loopback, QA_ALLOWED_HOSTS and the host of QA_PUBLIC_URL."""
    hosts = set(LOOPBACK_NAMES)
    hosts |= {host.strip().lower() for host in settings.allowed_hosts.split(",") if host.strip()}
    if settings.public_url:
        hosts.add((urlsplit(settings.public_url).hostname or "").lower())
    return hosts - {""}


def cors_origins(settings: Settings) -> list[str]:
    return [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]


def host_name(host_header: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``::1``, ``Example.org:80`` -> ``example.org``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostGuard:
    """Pure ASGI: a request for a Host this service does not serve is refused (DNS rebinding), as 400.

    Starlette's TrustedHostMiddleware does the same check but answers in plain text; this one answers in
    the service's one error shape and names the setting that admits the host. ``*.localhost`` names are
    loopback by definition (RFC 6761) and served too.
    """

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), "")
        host = host_name(header)
        if host in self.hosts or host.endswith(".localhost"):
            await self.app(scope, receive, send)
            return
        detail = f"host {host or '(none)'!r} is not served here; add it to QA_ALLOWED_HOSTS to serve it"
        await error_response(400, detail, [{"field": "Host", "message": "not an allowed host"}])(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Hosts checked first; security headers always; CORS only for QA_CORS_ORIGINS (closed by default)."""
    origins = cors_origins(settings)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            # a page on another origin reads the id to quote in a report, and how long to wait after a 503
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(HostGuard, hosts=allowed_hosts(settings))
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: even a refused host gets the headers


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def is_loopback(host: str | None) -> bool:
    """Whether a client address (or name) is this machine: 127.0.0.0/8, ::1, ::ffff:127.x, localhost."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def same_site(origin: str, host_header: str, trusted: list[str]) -> bool:
    """An ``Origin`` this service's own page sends (same scheme-less host and port), or a trusted one."""
    if origin in trusted:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file: pages) and anything odd
    return parts.netloc.lower() == host_header.strip().lower()


def write_guard(settings: Settings) -> Callable[[Request], None]:
    """A dependency for every request that changes state (uploads, deletions, re-index), beside its key.

    A browser may write only from this service's own page or an allowed origin (QA_CORS_ORIGINS,
    QA_PUBLIC_URL): a cross-site form post is a simple request that no preflight stops, so the ``Origin``
    header is the one thing that tells it. The client's address decides nothing: behind a reverse proxy on
    the same host every client is 127.0.0.1.
    """
    trusted = cors_origins(settings)
    if settings.public_url:
        public = urlsplit(settings.public_url)
        trusted.append(f"{public.scheme}://{public.netloc}")

    def guard(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and not same_site(origin, request.headers.get("host", ""), trusted):
            raise HTTPException(403, f"cross-site write refused: Origin {origin!r} is not this site")

    return guard
