"""The ranking stage (qa.ranking): the language correction, once, for every store.

Real model, real FAISS, a real Milvus server: both stores keep per-language statistics current with every
write, and the same corrected ranking comes out of either; `qa eval --store milvus` measures it in a
collection of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from conftest import ROOT
from test_centering import CORPUS, DESIGNER, QUESTION

from qa import centering, ranking, store
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.stores.faiss import IndexData
from qa.stores.milvus import MilvusIndex, MilvusStore

DATA = ROOT / "tests" / "data"
# test_centering's corpus with three more English paragraphs about the bridge, none saying who designed it: asked
# which engineer did, the Russian paragraph (which names her) leads by 0.009 corrected and falls to third, 0.012
# behind the English one, uncorrected, as Milvus ranked it before it kept statistics
BRIDGE = {
    **CORPUS,
    "en-bridge-tolls.txt": "Tolls on the harbour bridge of Valdoria were abolished last year. Drivers had paid two "
    "euros for each crossing since the bridge opened, and the city now covers its upkeep from the port's revenue.",
    "en-bridge-lights.txt": "At night the harbour bridge is lit in blue and gold. The lamps along its 900-metre deck "
    "were replaced with LEDs in 2019, halving the electricity bill of the bridge.",
    "en-bridge-race.txt": "Every September thousands of runners cross the harbour bridge in the city half marathon. "
    "The bridge is closed to cars for the morning, and trams run on a reduced timetable.",
}
MINORITY = "Which engineer designed the bridge of Valdoria?"


def _write(seeds: Path, files: dict[str, str]) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (seeds / name).write_text(text, encoding="utf-8")


def _both(tmp_path: Path, files: dict[str, str], embedder: Embedder, milvus_uri: str) -> tuple[Settings, Settings]:
    """FAISS and Milvus settings over one seeds folder, each store built once."""
    _write(tmp_path / "seeds", files)
    faiss = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "faiss")
    milvus = faiss.model_copy(
        update={
            "index_dir": tmp_path / "milvus",
            "store": "milvus",
            "milvus_uri": milvus_uri,
            "milvus_collection": f"rank_{uuid.uuid4().hex[:8]}",
        }
    )
    for settings in (faiss, milvus):
        report, _ = build_index(settings, embedder=embedder)
        assert not report.failed
    return faiss, milvus


def _counts(index: IndexData | MilvusIndex) -> dict[str, int]:
    stats = index.language_stats()
    assert stats is not None
    return dict(stats.counts)


def test_the_corrected_top_k_is_exactly_what_corrected_rows_would_rank(
    tmp_path: Path, default_embedder: Embedder
) -> None:
    """Against every row corrected and scored by brute force (the store searched such rows until FORMAT 6):
    the same passages in the same order, at every depth."""
    _write(tmp_path / "seeds", CORPUS)
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    _, data = build_index(settings, embedder=default_embedder)
    stats = data.language_stats()
    assert stats is not None and set(stats.offsets()) == {"en", "ru"}
    raw = data.raw_chunk_vectors(np.arange(data.num_chunks))
    table = data.manifest["languages"]
    corrected = centering.apply(raw, [table[int(c)] for c in data.arrays["chunk_languages"]], stats)
    chunks = [(data.documents[int(c[0])].id, int(c[1])) for c in data.arrays["chunks"]]
    for question in (QUESTION, "How long is the harbour bridge?", "Когда откроется больница?"):
        query = default_embedder.encode_queries([question])[0]
        expected = [chunks[row] for row in np.argsort(-(corrected @ query), kind="stable")]
        for k in (1, 3, 10):
            found = ranking.search(data, query, k)
            assert [(h.chunk.doc_id, h.chunk.start) for h in found] == expected[:k]
            np.testing.assert_allclose(
                [h.score for h in found], np.sort(corrected @ query)[::-1][:k], atol=1e-5, rtol=0
            )


def test_milvus_ranks_a_mixed_language_corpus_as_faiss_does(
    tmp_path: Path, default_embedder: Embedder, milvus_uri: str
) -> None:
    faiss, milvus = _both(tmp_path, BRIDGE, default_embedder, milvus_uri)
    on_faiss = Answerer.from_settings(faiss, store.load(faiss.index_dir))
    _, milvus_index = build_index(milvus, embedder=default_embedder)
    on_milvus = Answerer.from_settings(milvus, milvus_index)
    assert _counts(milvus_index) == _counts(on_faiss.index) == {"en": 11, "ru": 8}
    for answerer in (on_faiss, on_milvus):  # the passage in the minority language answers on both stores
        answer = answerer.ask(MINORITY, 3)
        assert answer.citations[0].document == "ru-bridge.txt" and DESIGNER in answer.answer
    for question in (MINORITY, QUESTION, "How long is the harbour bridge?", "Когда откроется больница?"):
        a, b = on_faiss.ask(question, 5), on_milvus.ask(question, 5)
        assert [c.document for c in a.citations] == [c.document for c in b.citations]
        # FAISS holds 8-bit codes, Milvus float32 rows: scores agree to the codes' precision
        np.testing.assert_allclose([c.score for c in a.citations], [c.score for c in b.citations], atol=5e-3)


def test_milvus_statistics_stay_current_after_a_delete_and_a_put(
    tmp_path: Path, default_embedder: Embedder, milvus_uri: str
) -> None:
    faiss, milvus = _both(tmp_path, CORPUS, default_embedder, milvus_uri)
    seeds = faiss.seeds_dir
    (seeds / "ru-lake.txt").unlink()
    (seeds / "en-museum.txt").write_text("Das Museum ist montags geschlossen. " * 3, encoding="utf-8")  # now German
    _, milvus_index = build_index(milvus, embedder=default_embedder)
    _, faiss_index = build_index(faiss, embedder=default_embedder)
    assert _counts(milvus_index) == _counts(faiss_index) == {"en": 7, "ru": 7, "de": 1}
    kept, fresh = milvus_index.language_stats(), faiss_index.language_stats()  # FAISS recounts every generation
    assert kept is not None and fresh is not None
    for lang in ("en", "ru", "de"):  # the sums follow too (FAISS's rows are 8-bit codes)
        np.testing.assert_allclose(kept.sums[lang], fresh.sums[lang], atol=2e-2)

    # a write that crashed between its rows and its statistics: the next build's commit recounts them
    crashed = MilvusStore(milvus.milvus_uri, milvus.milvus_collection, default_embedder.dim)
    crashed.client.delete(f"{milvus.milvus_collection}_documents", filter="part == -1")
    assert crashed.language_stats().counts == {}
    # the served index re-reads them within seconds (STATS_FOR_S), as it would another replica's write
    deadline = time.monotonic() + 60
    while _counts(milvus_index) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _counts(milvus_index) == {}
    _, milvus_index = build_index(milvus, embedder=default_embedder)
    assert _counts(milvus_index) == {"en": 7, "ru": 7, "de": 1}


def test_qa_eval_on_milvus_uses_a_collection_of_its_own_and_drops_it(
    tmp_path: Path, e5: Embedder, milvus_uri: str
) -> None:
    """`qa eval --store milvus` with QA_MILVUS_COLLECTION naming a real collection: that one keeps its document,
    the eval's own collection is gone afterwards, and the figures are the same as on FAISS."""
    name = f"prod_{uuid.uuid4().hex[:8]}"
    configured = Settings(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", store="milvus",
        milvus_uri=milvus_uri, milvus_collection=name,
    )  # fmt: skip
    _write(configured.seeds_dir, {"island.txt": "The lighthouse on Kelp Island was built in 1874."})
    build_index(configured, embedder=e5)
    milvus = MilvusStore(milvus_uri, name, e5.dim)
    before = (milvus.document_hashes(), sorted(milvus.client.list_collections()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {
        "PYTHONPATH": str(ROOT), "QA_EMBEDDER": "e5", "QA_STORE": "milvus", "QA_MILVUS_URI": "http://127.0.0.1:9",
        "QA_MILVUS_COLLECTION": name, "QA_INDEX_DIR": str(configured.index_dir),
        "QA_SEEDS_DIR": str(configured.seeds_dir),
    }  # fmt: skip
    command = [sys.executable, "-m", "qa", "eval", "--questions", str(DATA / "tiny.en.json"), "--contexts",
               str(DATA / "tiny.de.json"), "--json"]  # fmt: skip
    run = subprocess.run([*command, "--store", "milvus", "--milvus-uri", milvus_uri], capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stderr.split())
    assert "collection qa_eval_" in said and f"collection {name}" not in said and "dropped afterwards" in said
    assert (milvus.document_hashes(), sorted(milvus.client.list_collections())) == before  # the eval's is gone
    on_milvus = json.loads(run.stdout)
    on_faiss = json.loads(subprocess.run(command, capture_output=True, text=True, env=env, timeout=600).stdout)
    assert on_milvus["questions"] == on_faiss["questions"] == 4
    for key in ("recall@1", "recall@5", "mrr@10"):
        assert on_milvus[key] == on_faiss[key] == 1.0, key
    assert on_milvus["answer_in_highlight@1"] == on_faiss["answer_in_highlight@1"]
