"""Two `qa index` processes on two folders filling one Milvus in parallel, against one process doing both.

    python bench/milvus_replicas.py [--uri http://127.0.0.1:19530] [--lang en] [--limit 200] [--embedder e5]

Corpus: 2 x LIMIT XQuAD paragraphs of one language (../shared/data/xquad, CC BY-SA 4.0), one file each: the
first LIMIT in folder a/, the next LIMIT in folder b/. One run indexes a folder holding both (a/ and b/ as
subfolders) into a collection of its own; the other starts two `qa index` processes at once, each on one
folder with its own QA_REPLICA, into another collection (as replicas on two hosts would). Each process has an
empty index folder, so its embedding cache starts cold: the figures include embedding and writing. Without
--uri a standalone Milvus (PyPI `milvus`) is started in a temporary folder. On one machine the two processes
share its cores; --threads caps each process's threads (OMP/MKL), to mimic two hosts of that size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import ROOT, machine

from qa.stores.milvus import MilvusStore

sys.path.insert(0, str(ROOT / "tests"))
from milvus_server import milvus_server  # noqa: E402 - tests/milvus_server.py, by path

XQUAD = ROOT.parent / "shared" / "data" / "xquad"


def write_paragraphs(folder: Path, lang: str, skip: int, limit: int) -> int:
    data = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    contexts = list(dict.fromkeys(p["context"] for article in data["data"] for p in article["paragraphs"]))
    folder.mkdir(parents=True)
    for i, text in enumerate(contexts[skip : skip + limit], skip):
        (folder / f"p{i:04d}.txt").write_text(text + "\n", encoding="utf-8")
    return len(list(folder.iterdir()))


@contextmanager
def milvus_at(uri: str | None, base: Path) -> Iterator[str]:
    """The given Milvus, or one started for this run."""
    if uri:
        yield uri
    else:
        with milvus_server(base / "milvus") as started:
            yield started


def index_process(seeds: Path, index_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "qa", "index", "--seeds-dir", str(seeds), "--index-dir", str(index_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run(processes: list[subprocess.Popen]) -> float:
    """Wall seconds until every process has ended (they were started just before)."""
    started = time.perf_counter()
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"qa index failed ({process.returncode}):\n{err}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", help="an existing Milvus (default: start one)")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--limit", type=int, default=200, help="paragraphs per folder")
    parser.add_argument("--embedder", default="e5")
    parser.add_argument("--threads", type=int, help="threads per qa index process (default: the library's)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-bench-replicas-") as tmp, milvus_at(args.uri, Path(tmp)) as uri:
        base = Path(tmp)
        both = base / "both"
        counts = [write_paragraphs(both / "a", args.lang, 0, args.limit)]
        counts.append(write_paragraphs(both / "b", args.lang, args.limit, args.limit))
        env = dict(os.environ, PYTHONPATH=str(ROOT), QA_STORE="milvus", QA_MILVUS_URI=uri, QA_EMBEDDER=args.embedder)
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        one, two = f"bench_one_{uuid.uuid4().hex[:6]}", f"bench_two_{uuid.uuid4().hex[:6]}"

        single = run([index_process(both, base / "index-one", dict(env, QA_MILVUS_COLLECTION=one, QA_REPLICA="one"))])
        parallel = run(
            [
                index_process(both / part, base / f"index-{part}", dict(env, QA_MILVUS_COLLECTION=two, QA_REPLICA=part))
                for part in ("a", "b")
            ]
        )
        stored = [len(MilvusStore(uri, name, 1).document_hashes()) for name in (one, two)]
        print(f"# {machine()}")
        print(
            f"corpus: {sum(counts)} XQuAD {args.lang} paragraphs ({counts[0]} + {counts[1]}), embedder {args.embedder}"
        )
        print(f"threads per process: {args.threads or 'default'}; Milvus: {args.uri or 'standalone, started here'}")
        print(f"one qa index, both folders:      {single:7.1f} s  ({stored[0]} documents stored)")
        print(f"two qa index at once, a and b:   {parallel:7.1f} s  ({stored[1]} documents stored)")
        print(f"speed-up: {single / parallel:.2f}x")
        if stored != [sum(counts)] * 2:
            raise SystemExit(f"expected {sum(counts)} documents in each collection, got {stored}")


if __name__ == "__main__":
    main()
