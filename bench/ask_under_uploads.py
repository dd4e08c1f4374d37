"""`/ask` p99 while one client uploads a document a second and 16 ask (issue 24), against the same with no uploads.

    python bench/ask_under_uploads.py [--paragraphs 240] [--seconds 30] [--askers 16]

The corpus: XQuAD's German paragraphs (``--paragraphs``), indexed by `qa index`, served by `qa serve` on
127.0.0.1 (its start-up session token writes). Phase 1: ``--askers`` threads ask XQuAD's English questions for
``--seconds``. Phase 2: the same, while one more thread uploads a new one-paragraph document every second (each
waits for its 201, so at most one is in flight; the rest queue in the writer, never in /ask's pool). Prints each
phase's p50/p99, requests and errors, the uploads done, and the ratio of the p99s (target: at most 2x, 0 errors).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _common import ROOT, free_port, machine, ms, pct, serve_ready

XQUAD = ROOT.parent / "shared" / "data" / "xquad"
TARGET = 2.0


def load(language: str) -> list[tuple[str, list[str]]]:
    data = json.loads((XQUAD / f"xquad.{language}.json").read_text(encoding="utf-8"))["data"]
    return [(p["context"], [q["question"] for q in p["qas"]]) for a in data for p in a["paragraphs"]]


def serve(work: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`qa index`, then `qa serve`; returns the server and the session token it printed."""
    server = serve_ready(work, port, index_first=True, watch=False)
    token = re.search(r"#token=([A-Za-z0-9_-]+)", (work / "server.log").read_text())
    if token is None:
        server.terminate()
        raise SystemExit("qa serve printed no session token")
    return server, token.group(1)


def phase(url: str, questions: list[str], askers: int, seconds: float, upload: tuple[str, list[str]] | None) -> dict:
    """Latencies and errors of ``askers`` threads asking for ``seconds``; with ``upload`` (token, texts) one more
    thread posts a new document each second."""
    latencies: list[float] = []
    errors: list[str] = []
    uploads: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def ask(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            i = worker
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    response = http.post("/ask", json={"question": questions[i % len(questions)], "top_k": 5})
                    failed = None if response.status_code == 200 else f"/ask {response.status_code}"
                except httpx.HTTPError as exc:
                    failed = f"/ask {type(exc).__name__}"
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if failed:
                        errors.append(failed)
                i += askers

    def post(token: str, texts: list[str]) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            n = 0
            while time.monotonic() < stop:
                due = time.monotonic() + 1.0
                name = f"upload-{time.time_ns()}-{n}.txt"
                started = time.perf_counter()
                response = http.post("/documents", files={"file": (name, texts[n % len(texts)].encode())})
                with lock:
                    uploads.append(time.perf_counter() - started)
                    if response.status_code != 201:
                        errors.append(f"upload {response.status_code}")
                n += 1
                time.sleep(max(0.0, due - time.monotonic()))

    threads = [threading.Thread(target=ask, args=(w,)) for w in range(askers)]
    if upload is not None:
        threads.append(threading.Thread(target=post, args=upload))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "errors": errors, "uploads": uploads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=240, help="XQuAD German paragraphs indexed (240: all)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--askers", type=int, default=16)
    args = parser.parse_args()
    print(f"# /ask under one upload a second: {machine()}")
    german = load("de")
    english = [q for _, asked in load("en") for q in asked]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "seeds").mkdir()
        for i, (text, _) in enumerate(german[: args.paragraphs]):
            (work / "seeds" / f"de-{i:03d}.txt").write_text(text, encoding="utf-8")
        port = free_port()
        server, token = serve(work, port)
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.post(f"{url}/ask", json={"question": "warm-up"}, timeout=120).raise_for_status()
            texts = [text for text, _ in german[args.paragraphs :]] or [text for text, _ in german]
            quiet = phase(url, english, args.askers, args.seconds, None)
            busy = phase(url, english[len(english) // 2 :], args.askers, args.seconds, (token, texts))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"corpus: {args.paragraphs} documents; {args.askers} askers, {args.seconds:.0f} s a phase")
    print(f"{'phase':>14} {'requests':>8} {'errors':>6} {'p50':>10} {'p99':>10}")
    for name, result in (("no uploads", quiet), ("1 upload/s", busy)):
        lat = result["latencies"]
        print(f"{name:>14} {len(lat):>8} {len(result['errors']):>6} {ms(pct(lat, 50)):>10} {ms(pct(lat, 99)):>10}")
    done = busy["uploads"]
    print(f"uploads: {len(done)} done, p50 {ms(pct(done, 50))}, max {ms(max(done))}" if done else "uploads: none")
    ratio = pct(busy["latencies"], 99) / pct(quiet["latencies"], 99)
    errors = quiet["errors"] + busy["errors"]
    met = ratio <= TARGET and not errors
    print(
        f"target: p99 with uploads <= {TARGET:.0f}x without, 0 errors: {ratio:.2f}x, {len(errors)} errors -> "
        f"{'met' if met else 'NOT met'}"
    )
    if errors:
        print("errors:", ", ".join(sorted(set(errors))))


if __name__ == "__main__":
    main()
