"""One document's upload and deletion through the API on a corpus of thousands of small files (issue 24).

    python bench/upload_latency.py [--files 3000] [--uploads 20] [--qa-root PATH] [--work DIR]

``--files`` small text files (one chunk each) are indexed by `qa index`, then `qa serve` (no watcher; its
start-up session token writes) takes ``--uploads`` new one-sentence documents one at a time, each timed from
POST /documents to its 201 (searchable), then their deletions, each to its 204. Prints p50 and p90 of each and
the load average. ``--qa-root`` runs another checkout's qa (a before/after figure on the same corpus: give the
same ``--work`` to both runs and the second re-uses the first's index and embedding cache).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from _common import ROOT, free_port, machine, pct, serve_ready

PLACES = ["Kirkwall", "Valdoria", "Helgoland", "Tromsø", "Lerwick", "Stornoway", "Bergen", "Cork", "Brest", "Vigo"]
THINGS = ["ferry", "bakery", "library", "harbour office", "museum", "school", "clinic", "market", "pool", "archive"]


def corpus(seeds: Path, files: int) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        place, thing = PLACES[i % len(PLACES)], THINGS[(i // len(PLACES)) % len(THINGS)]
        text = (
            f"Note {i}: the {thing} of {place} opens at {6 + i % 5}:{i % 60:02d} on weekdays. "
            f"Ask for room {i} at the front desk; the keeper's number is {1000 + i}."
        )
        (seeds / f"note-{i:05d}.txt").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--qa-root", type=Path, default=ROOT, help="the checkout whose qa serves")
    parser.add_argument("--work", type=Path, default=None, help="keep the corpus and index here (re-used)")
    args = parser.parse_args()
    print(f"# upload latency: {machine()}; qa from {args.qa_root}", flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-upload-"))
    fresh = not (work / "index").exists()
    if fresh:
        corpus(work / "seeds", args.files)
    for leftover in (work / "seeds").glob("upload-*.txt"):  # a run stopped half-way
        leftover.unlink()
    port = free_port()
    started = time.perf_counter()
    server = serve_ready(work, port, index_first=fresh, watch=False, root=args.qa_root)
    print(f"indexed and serving in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        token = re.search(r"#token=([A-Za-z0-9_-]+)", (work / "server.log").read_text())
        assert token is not None, "qa serve printed no session token"
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as http:
            warm = http.post("/documents", files=[("file", ("upload-warm.txt", b"A first upload, not timed."))])
            assert warm.status_code == 201, warm.text  # after the start-up build, which it waits behind
            assert http.delete("/documents/upload-warm.txt").status_code == 204
            uploads, deletes = [], []
            for i in range(args.uploads):
                body = f"Upload {i}: the night ferry number {i} leaves pier {i % 7} at {i % 24:02d}:15.".encode()
                began = time.perf_counter()
                response = http.post("/documents", files=[("file", (f"upload-{i:03d}.txt", body))])
                uploads.append(time.perf_counter() - began)
                assert response.status_code == 201, response.text
            for i in range(args.uploads):
                began = time.perf_counter()
                response = http.delete(f"/documents/upload-{i:03d}.txt")
                deletes.append(time.perf_counter() - began)
                assert response.status_code == 204, response.text
            documents = http.get("/documents", params={"limit": 1}).json()["total"]
    finally:
        server.terminate()
        server.wait(60)
    result = {
        "files": documents,
        "upload_p50_ms": round(pct(uploads, 50) * 1000, 1),
        "upload_p90_ms": round(pct(uploads, 90) * 1000, 1),
        "delete_p50_ms": round(pct(deletes, 50) * 1000, 1),
        "delete_p90_ms": round(pct(deletes, 90) * 1000, 1),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "qa_root": str(args.qa_root),
    }
    print(json.dumps(result), flush=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
