"""Load test: locust (headless) against a real `qa serve` on 127.0.0.1, with a re-index in the middle.

    pip install -e '.[bench]'
    python bench/load.py                       # 50 users, 60 s, a document added at 30 s
    python bench/load.py --users 10 --seconds 20

Serves a private copy of seeds/ (watching it), runs bench/locustfile.py, and halfway through writes a new
multi-paragraph document into the watched folder so the service rebuilds its index under load. Prints
requests, failures, p50/p99 latency, requests/s and what the re-index did; exits 1 on any failed request
or if the new document was not served by the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _common import free_port

ROOT = Path(__file__).resolve().parent.parent
NEW_DOC = "load-test-harbour-report.txt"


def _new_document() -> str:
    paragraphs = []
    for n, (place, cargo) in enumerate(
        [("Valdoria", "timber"), ("Kirkwall", "salmon"), ("Brest", "grain"), ("Tromsø", "fish oil")], 1
    ):
        paragraphs.append(
            f"Report {n}: the port of {place} handled a record volume of {cargo} this season. "
            f"The harbour master of {place} said the new cranes halved loading times. "
            f"Dock workers in {place} asked for longer breaks during the night shifts. "
            f"Ships bound for {place} now wait less than a day at anchor."
        )
    return "\n\n".join(paragraphs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--reindex-at", type=float, default=0.5, help="fraction of the run when the document lands")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qa-load-"))
    seeds = work / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "QA_WATCH": "1"}
    serve_cmd = [sys.executable, "-m", "qa", "serve", "--port", str(port)]
    serve_cmd += ["--seeds-dir", str(seeds), "--index-dir", str(work / "index")]
    server = subprocess.Popen(serve_cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "w"))
    try:
        _wait_ready(url, server)
        print(f"qa serve ready on {url}; locust: {args.users} users for {args.seconds}s", flush=True)
        locust_cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless"]
        locust_cmd += ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "--host", url]
        locust_cmd += ["--csv", str(work / "load"), "--only-summary", "--stop-timeout", "30"]
        reindex: dict = {}
        trigger = threading.Timer(args.seconds * args.reindex_at, _trigger_reindex, (seeds, reindex))
        started = time.time()
        trigger.start()
        locust = subprocess.run(locust_cmd, env=env, capture_output=True, text=True)
        ended = time.time()
        trigger.join()
        served = httpx.get(f"{url}/documents/{NEW_DOC}", timeout=30).status_code == 200
        status = httpx.get(f"{url}/admin/reindex", timeout=30).json()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    if locust.returncode not in (0, 1):
        print(locust.stdout[-3000:], locust.stderr[-3000:], file=sys.stderr)
        return 1
    total = _aggregated(work / "load_stats.csv")
    print(
        f"requests: {total['Request Count']}, failures: {total['Failure Count']}, "
        f"p50: {total['50%']} ms, p99: {total['99%']} ms, max: {float(total['Max Response Time']):.0f} ms, "
        f"requests/s: {float(total['Requests/s']):.1f}"
    )
    for row in _rows(work / "load_stats.csv"):
        if row["Name"] != "Aggregated":
            print(
                f"  {row['Type']} {row['Name']}: {row['Request Count']} requests, p50 {row['50%']} ms, "
                f"p99 {row['99%']} ms, {row['Failure Count']} failures"
            )
    report = status.get("last_report") or {}
    under_load = bool(status["last_finished"]) and status["last_finished"] < ended
    print(
        f"re-index: {NEW_DOC} written at {reindex.get('at', started) - started:.0f}s; {status['runs']} run(s), "
        f"the last took {status['last_seconds']}s and finished at {(status['last_finished'] or ended) - started:.0f}s "
        f"(under load: {under_load}); added {report.get('added')}; error: {status['last_error']}; "
        f"new document served: {served}"
    )
    ok = int(total["Failure Count"]) == 0 and served and under_load and not status["last_error"]
    print("OK: zero failed requests" if ok else "FAILED", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def _wait_ready(url: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"qa serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json().get("status") == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("qa serve did not become ready")


def _trigger_reindex(seeds: Path, out: dict) -> None:
    out["at"] = time.time()
    (seeds / NEW_DOC).write_text(_new_document(), encoding="utf-8")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _aggregated(path: Path) -> dict[str, str]:
    return next(row for row in _rows(path) if row["Name"] == "Aggregated")


if __name__ == "__main__":
    raise SystemExit(main())
