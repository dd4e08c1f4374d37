"""A throwaway standalone Milvus (PyPI `milvus` 2.3.5), for the tests' session fixture and the benchmarks that
need one (bench/with_milvus.py, bench/milvus_replicas.py import it by path, as bench/extraction.py does
tests/docfactory.py): one way to start it, so a fix to how it starts or stops reaches every caller."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def milvus_server(base: Path) -> Iterator[str]:
    """A standalone Milvus with its data under ``base`` and every component on loopback; yields its URI and
    stops it (waiting as long as a loaded machine needs) when the block ends."""
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(base))
    for component in COMPONENTS:
        server.config.set(f"{component}.ip", "127.0.0.1")  # advertise loopback, never the LAN address
    server.listen_port = _free_port()
    server.start()
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        # MilvusServer.stop() waits 1 s, then 3 s after SIGKILL: too little on a loaded machine
        if server.server_proc is not None:
            server.server_proc.terminate()
            try:
                server.server_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.server_proc.kill()
                server.server_proc.wait(timeout=60)
        server.stop()  # closes its log files
