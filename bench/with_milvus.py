"""Run one command beside a throwaway standalone Milvus (PyPI `milvus`, as tests/conftest.py starts it), with
QA_MILVUS_URI naming it; the server and its data folder go when the command ends.

For the mixed-language figure on Milvus (docs/quality.md), run alone on the machine:

    python bench/with_milvus.py -- qa eval --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.mixed.json --json --workdir /tmp/mixed-milvus --store milvus
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name a command to run after --")
    if command[0] == "qa":  # the qa of this interpreter, wherever its script is installed
        command = [sys.executable, "-m", "qa", *command[1:]]
    from milvus import MilvusServer

    base = tempfile.mkdtemp(prefix="qa-milvus-")
    server = MilvusServer()
    server.set_base_dir(base)
    for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
        server.config.set(f"{component}.ip", "127.0.0.1")  # advertise loopback, never the LAN address
    server.listen_port = free_port()
    server.start()
    try:
        uri = f"http://127.0.0.1:{server.listen_port}"
        print(f"Milvus at {uri}", file=sys.stderr)
        return subprocess.run(command, env={**os.environ, "QA_MILVUS_URI": uri}).returncode
    finally:
        if server.server_proc is not None:  # MilvusServer.stop() waits too little on a loaded machine
            server.server_proc.terminate()
            try:
                server.server_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.server_proc.kill()
                server.server_proc.wait(timeout=60)
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
