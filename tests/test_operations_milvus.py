"""/metrics over a real Milvus (QA_STORE=milvus): documents and chunks by collection read from the shared store.

Apart from test_operations.py so that those tests start no Milvus server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import TINY, LiveServer
from test_operations import LEAVE, scrape, value

from qa.api import create_app, load_answerer
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.stores.milvus import MilvusIndex


def test_metrics_count_a_milvus_stores_documents_and_chunks_by_collection(
    tmp_path: Path, milvus_uri: str, e5: Embedder
) -> None:
    seeds = tmp_path / "seeds"
    (seeds / "hr").mkdir(parents=True)
    for name, text in TINY.items():
        (seeds / name).write_text(text, encoding="utf-8")
    (seeds / "hr" / "leave.txt").write_text(LEAVE, encoding="utf-8")
    settings = Settings(
        seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5", store="milvus", milvus_uri=milvus_uri,
        milvus_collection="ops_metrics",
    )  # fmt: skip
    report, index = build_index(settings, embedder=e5)
    assert isinstance(index, MilvusIndex) and not report.failed
    with LiveServer(create_app(settings, answerer=load_answerer(settings))) as server:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            samples = scrape(http)
            assert value(samples, "qa_documents", collection="default") == 2
            assert value(samples, "qa_documents", collection="hr") == 1
            assert value(samples, "qa_chunks", collection="default") == 2  # one short passage each
            assert value(samples, "qa_chunks", collection="hr") == 1
            # a deletion shows at the next scrape
            removed = http.delete("/documents/hr/leave.txt")
            assert removed.status_code == 204, removed.text
            after = scrape(http)
            assert (
                value(after, "qa_documents", collection="hr") == 0 and value(after, "qa_chunks", collection="hr") == 0
            )
            assert value(after, "qa_documents", collection="default") == 2
