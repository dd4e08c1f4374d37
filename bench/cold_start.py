"""Cold start: seconds from launching `qa ask` / `qa serve` until the first answer, on the seed corpus.

Usage: python bench/cold_start.py [--runs 3]
Each run uses a fresh copy of seeds/ and the index built once beforehand (so `qa serve` finds it up to date,
as after a restart). Prints the median of the runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import free_port

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "who commands US troops in Japan?"


def time_ask(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qa", "ask", QUESTION, "-k", "3"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def time_serve(env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": QUESTION}, timeout=30)
                if response.status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                time.sleep(0.05)
            if proc.poll() is not None:
                raise RuntimeError("qa serve exited")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "seeds", Path(tmp) / "seeds")
        env = {**os.environ, "QA_SEEDS_DIR": f"{tmp}/seeds", "QA_INDEX_DIR": f"{tmp}/index", "QA_WATCH": "false"}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qa", "index"], env=env, check=True, capture_output=True)
        print(f"first index of the seed corpus: {time.perf_counter() - started:.2f} s")
        asks = [time_ask(env) for _ in range(args.runs)]
        serves = [time_serve(env) for _ in range(args.runs)]
    print(f"qa ask, launch to answer printed:   median {statistics.median(asks):.2f} s over {args.runs} runs")
    print(f"qa serve, launch to first /ask 200: median {statistics.median(serves):.2f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
