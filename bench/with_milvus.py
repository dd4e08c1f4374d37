"""Run one command beside a throwaway standalone Milvus (PyPI `milvus`, started by tests/milvus_server.py as
for the tests), with QA_MILVUS_URI naming it; the server and its data folder go when the command ends.

For the mixed-language figure on Milvus (docs/quality.md), run alone on the machine:

    python bench/with_milvus.py -- qa eval --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.mixed.json --json --workdir /tmp/mixed-milvus --store milvus
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from milvus_server import milvus_server  # noqa: E402 - tests/milvus_server.py, by path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name a command to run after --")
    if command[0] == "qa":  # the qa of this interpreter, wherever its script is installed
        command = [sys.executable, "-m", "qa", *command[1:]]
    base = tempfile.mkdtemp(prefix="qa-milvus-")
    try:
        with milvus_server(Path(base)) as uri:
            print(f"Milvus at {uri}", file=sys.stderr)
            return subprocess.run(command, env={**os.environ, "QA_MILVUS_URI": uri}).returncode
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
