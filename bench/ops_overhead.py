"""What the request-id and metrics middleware cost a request: GET /healthz through the whole ASGI stack, with
and without them, called in-process (no sockets, so the middleware's share is not hidden by the network).

    PYTHONPATH=. python bench/ops_overhead.py [--requests 20000]

Prints the median per-request time of each app (interleaved rounds) and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import make_embedder
from qa.metrics import HttpMetricsMiddleware
from qa.request_ids import RequestIdMiddleware

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/healthz", "raw_path": b"/healthz", "root_path": "", "query_string": b"",
    "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
}  # fmt: skip


async def _call(app: FastAPI) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200

    await app(dict(SCOPE, headers=list(SCOPE["headers"])), receive, send)


async def _round(app: FastAPI, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await _call(app)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    settings = Settings(seeds_dir=folder / "seeds", index_dir=folder / "index", embedder="use")
    answerer = Answerer(make_embedder("use"), None)
    with_ops = create_app(settings, answerer=answerer)
    without = create_app(settings, answerer=answerer)
    ours = (RequestIdMiddleware, HttpMetricsMiddleware)
    without.user_middleware = [m for m in without.user_middleware if m.cls not in ours]
    rounds = 10
    times: dict[str, list[float]] = {"with": [], "without": []}
    loop = asyncio.new_event_loop()
    for _ in range(rounds):
        times["with"].append(loop.run_until_complete(_round(with_ops, args.requests // rounds)))
        times["without"].append(loop.run_until_complete(_round(without, args.requests // rounds)))
    a, b = statistics.median(times["with"]) * 1e6, statistics.median(times["without"]) * 1e6
    print(f"GET /healthz in-process, median of {rounds} rounds of {args.requests // rounds} requests")
    print(f"with request ids and metrics: {a:.1f} us; without: {b:.1f} us; difference {a - b:.1f} us")


if __name__ == "__main__":
    main()
