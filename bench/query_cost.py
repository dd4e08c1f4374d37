"""What reading one question costs the default pipeline, part by part, in one process (no server beside it).

    python bench/query_cost.py [--runs 20]

Medians over --runs calls of each part on the same question: e5's query vector, USE's, e5's latent terms,
and the whole reading /ask does (fused vector + latent terms). The ratio to e5 alone is the price of the
default's quality over the e5-only pipeline (QA_EMBEDDER=e5 QA_SPARSE_WEIGHT=0).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _common import machine

from qa.config import DEFAULT_EMBEDDER
from qa.embedding import make_embedder, sparse_encoder

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
    terms = sparse_encoder(e5)
    assert terms is not None
    parts = {
        "e5 query vector": lambda: e5.encode_queries(QUESTION),
        "USE query vector": lambda: use.encode_queries(QUESTION),
        "e5 latent terms": lambda: terms(QUESTION),
        "default: fused vector + latent terms": lambda: (fused.encode_queries(QUESTION), terms(QUESTION)),
    }
    print(f"# query cost: {machine()}")
    results = {name: median_ms(call, args.runs) for name, call in parts.items()}
    for name, ms in results.items():
        print(f"{name:40s} {ms:7.1f} ms  {ms / results['e5 query vector']:5.2f}x e5 alone")


if __name__ == "__main__":
    main()
