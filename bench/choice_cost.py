"""CPU a question spent choosing the answer line: the learned choice as shipped against the hand rules.

    qa eval --questions ../shared/data/xquad/xquad.en.json --contexts ../shared/data/xquad/xquad.de.json \
        --workdir /tmp/choice-eval-de                      # builds the index once
    python bench/choice_cost.py --index /tmp/choice-eval-de/index [--questions 120] [--rounds 3]

The questions' encodings are cached by a first pass, so what is timed is ranking and choosing; the two ways
are interleaved, fastest round of each, CPU seconds (process_time), the load average printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from qa import store
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import make_embedder

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "xquad" / "xquad.en.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"# choice cost: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {os.getloadavg()}")
    answerer = Answerer(make_embedder(Settings().embedder), store.load(args.index))
    data = json.loads(XQUAD.read_text(encoding="utf-8"))["data"]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]][: args.questions]
    for question in questions:
        answerer.ask(question)  # encodings cached from here on
    chooser = answerer.chooser
    ways = {"hand rules": None, "learned, as shipped": chooser}
    spent: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            answerer.chooser = way
            started = time.process_time()
            for question in questions:
                answerer.ask(question)
            spent[name].append((time.process_time() - started) / len(questions) * 1000)
    for name, values in spent.items():
        print(f"{name:26s} {min(values):6.2f} ms CPU a question (fastest of {args.rounds})")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
