"""What the no-answer decision costs one /ask, part by part, on an index `qa eval --workdir` kept.

    qa eval --questions ../shared/data/xquad/xquad.en.json --contexts ../shared/data/xquad/xquad.de.json \\
        --workdir /tmp/answer-eval-de
    python bench/decision_cost.py --workdir /tmp/answer-eval-de --contexts ../shared/data/xquad/xquad.de.json

Each question is answered once through ``Answerer.reply`` (the 30 ranked candidates and the question's
latent terms are what the decision reads); then the decision's parts are timed on them alone: the signals
(qa.answerability.features) and the model. Medians over the questions, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _common import machine

from qa import answerability, store
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import make_embedder
from qa.eval import load_eval_set
from qa.parts import query_parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="a `qa eval --workdir` folder")
    parser.add_argument("--questions", type=Path, default=Path("../shared/data/xquad/xquad.en.json"))
    parser.add_argument("--contexts", type=Path, required=True, help="the paragraphs that index holds")
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    print(f"# decision_cost: {machine()}")
    embedder = make_embedder(Settings().embedder)
    answerer = Answerer(embedder, store.load(args.workdir / "index"))
    questions = [q.text for q in load_eval_set(args.questions, args.contexts).questions[: args.limit]]
    parts: dict[str, list[float]] = {"signals": [], "model": []}
    for question in questions:
        reply = answerer.reply(question, 5)
        if not reply.ranked:
            continue
        terms = query_parts(embedder, [question]).sparse[0]
        t0 = time.perf_counter()
        signals = answerability.features(question, reply.ranked, terms)
        t1 = time.perf_counter()
        answerer.decision.probability(signals)
        t2 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1)):
            parts[name].append(seconds * 1000)
    medians = {name: statistics.median(values) for name, values in parts.items()}
    print(f"{len(parts['model'])} questions decided by the model; medians in ms:")
    for name, value in medians.items():
        print(f"  {name:9s} {value:.3f}")
    print(f"  {'together':9s} {sum(medians.values()):.3f}")


if __name__ == "__main__":
    main()
