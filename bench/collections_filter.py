"""/ask p50 with a 3-collection filter against no filter, on the same corpus and server, in one run.

    python bench/collections_filter.py [--paragraphs 240] [--requests 200]

The corpus: XQuAD's English and German paragraphs (``--paragraphs`` of each), spread over six collections
``c0`` .. ``c5`` (paragraph i in ``c{i % 6}``, so every collection holds both languages and the ranking's
language correction runs in both modes). `qa index` builds it, then `qa serve` answers on 127.0.0.1. Requests
alternate: one with ``"collections": ["c0", "c1", "c2"]``, one without, each a question the server has not
seen (XQuAD's English questions in order), so both modes pay the encoder and see the same load. The filter is
applied inside the vector search (qa.vector_index), so it may cost at most 10% of the unfiltered p50.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
from _common import ROOT, free_port, machine, ms, pct, serve_ready

XQUAD = ROOT.parent / "shared" / "data" / "xquad"
COLLECTIONS = 6
FILTER = ["c0", "c1", "c2"]
TARGET = 1.10


def paragraphs(language: str) -> list[tuple[str, list[str]]]:
    data = json.loads((XQUAD / f"xquad.{language}.json").read_text(encoding="utf-8"))["data"]
    return [(p["context"], [q["question"] for q in p["qas"]]) for a in data for p in a["paragraphs"]]


def write_corpus(seeds: Path, count: int) -> list[str]:
    """The seeds folder; returns the English questions, in order."""
    questions: list[str] = []
    for language in ("en", "de"):
        for i, (text, asked) in enumerate(paragraphs(language)[:count]):
            folder = seeds / f"c{i % COLLECTIONS}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{language}-{i:03d}.txt").write_text(text, encoding="utf-8")
            if language == "en":
                questions += asked
    return questions


def measure(url: str, questions: list[str], requests: int) -> dict[str, list[float]]:
    """Alternating filtered and unfiltered requests, each a new question; every answer must cite only what it
    was allowed to (a filtered one: c0-c2 alone)."""
    times: dict[str, list[float]] = {"filtered": [], "unfiltered": []}
    with httpx.Client(base_url=url, timeout=120) as http:
        http.post("/ask", json={"question": "warm-up: who won the game?"}).raise_for_status()
        for i in range(requests):
            mode = "filtered" if i % 2 == 0 else "unfiltered"
            body: dict = {"question": questions[i % len(questions)], "top_k": 5}
            if mode == "filtered":
                body["collections"] = FILTER
            started = time.perf_counter()
            response = http.post("/ask", json=body)
            times[mode].append(time.perf_counter() - started)
            response.raise_for_status()
            cited = {c["collection"] for c in response.json()["citations"]}
            if mode == "filtered" and not cited <= set(FILTER):
                raise SystemExit(f"a filtered answer cited {sorted(cited)}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=240, help="XQuAD paragraphs per language (240: all)")
    parser.add_argument("--requests", type=int, default=200, help="requests in all, half of them filtered")
    args = parser.parse_args()
    print(f"# /ask with a {len(FILTER)}-collection filter vs none: {machine()}")
    with tempfile.TemporaryDirectory(prefix="qa-bench-collections-") as tmp:
        work = Path(tmp)
        questions = write_corpus(work / "seeds", args.paragraphs)
        port = free_port()
        server = serve_ready(work, port, index_first=True, watch=False)
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
            times = measure(f"http://127.0.0.1:{port}", questions, args.requests)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"corpus: {health['documents']} documents, {health['chunks']} chunks in {COLLECTIONS} collections")
    print(f"{'mode':>10} {'requests':>8} {'p50':>10} {'p90':>10}")
    for mode, values in times.items():
        print(f"{mode:>10} {len(values):>8} {ms(pct(values, 50)):>10} {ms(pct(values, 90)):>10}")
    ratio = pct(times["filtered"], 50) / pct(times["unfiltered"], 50)
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"target: filtered p50 <= {TARGET:.2f}x unfiltered: {ratio:.3f}x -> {verdict}")


if __name__ == "__main__":
    main()
