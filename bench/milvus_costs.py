"""What one Milvus reply and one document write cost: the same paragraphs and questions on FAISS and on Milvus.

    python bench/with_milvus.py -- python bench/milvus_costs.py [--docs 40] [--questions 20]

The first ``--docs`` paragraphs of XQuAD's mixed-language file (and the English questions about them) are
indexed into a FAISS index first, which fills the embedding cache, then into a fresh Milvus collection on
``QA_MILVUS_URI`` with that cache: the Milvus build's seconds are then store writes (plus chunking and cache
reads, which the FAISS build has too). Then a change of one document (a replacement) is written to Milvus and
timed alone. Last, each question is answered on both stores (as `qa eval` answers: ``top_k * 3`` passages),
timed per reply, and the two stores' top documents compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine

from qa.answer import Answerer
from qa.config import Settings
from qa.eval import distinct_documents, eval_settings, load_eval_set
from qa.indexer import build_index
from qa.stores.milvus import drop_collections

XQUAD = ROOT.parent / "shared" / "data" / "xquad"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40, help="paragraphs to index")
    parser.add_argument("--questions", type=int, default=20, help="questions to answer on each store")
    args = parser.parse_args()
    uri = os.environ["QA_MILVUS_URI"]
    full = load_eval_set(XQUAD / "xquad.en.json", XQUAD / "xquad.mixed.json")
    paragraphs = dict(list(full.paragraphs.items())[: args.docs])
    questions = [q for q in full.questions if q.doc_id in paragraphs][: args.questions]
    print(machine())
    with tempfile.TemporaryDirectory(prefix="qa-milvus-costs-") as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        for doc_id, text in paragraphs.items():
            (seeds / doc_id).write_text(text, encoding="utf-8")
        base = Settings()
        faiss = eval_settings(base, seeds, Path(tmp) / "index")
        milvus = eval_settings(base, seeds, Path(tmp) / "index", uri)
        started = time.perf_counter()
        _, faiss_index = build_index(faiss)
        print(f"FAISS build, cold cache: {time.perf_counter() - started:.1f} s for {len(paragraphs)} documents")
        try:
            started = time.perf_counter()
            report, milvus_index = build_index(milvus)
            took = time.perf_counter() - started
            print(f"Milvus build, warm cache: {took:.1f} s, {took / len(report.added) * 1000:.0f} ms a document")
            first = seeds / next(iter(paragraphs))
            first.write_text(first.read_text(encoding="utf-8") + " ", encoding="utf-8")
            started = time.perf_counter()
            report, milvus_index = build_index(milvus)
            print(f"Milvus, one document replaced: {time.perf_counter() - started:.2f} s ({report.updated})")
            first.write_text(paragraphs[first.name], encoding="utf-8")
            build_index(faiss)
            report, milvus_index = build_index(milvus)
            answerers = {
                "faiss": Answerer.from_settings(faiss, faiss_index),
                "milvus": Answerer.from_settings(milvus, milvus_index),
            }
            for answerer in answerers.values():  # the model loaded, each store touched once
                answerer.reply("warm-up question", 30)
            tops: dict[str, list[list[str]]] = {}
            for name, answerer in answerers.items():
                times, tops[name] = [], []
                for question in questions:
                    started = time.perf_counter()
                    reply = answerer.reply(question.text, 30)
                    times.append(time.perf_counter() - started)
                    tops[name].append(distinct_documents(reply.answer)[:10])
                print(
                    f"{name}: median {statistics.median(times) * 1000:.0f} ms a reply, "
                    f"max {max(times) * 1000:.0f} ms ({len(times)} questions)"
                )
            same = sum(a == b for a, b in zip(tops["faiss"], tops["milvus"]))
            first = sum(a[:1] == b[:1] for a, b in zip(tops["faiss"], tops["milvus"]))
            print(f"same top-10 documents on both stores: {same}, same first: {first} of {len(questions)} questions")
        finally:
            drop_collections(uri, milvus.milvus_collection)


if __name__ == "__main__":
    main()
