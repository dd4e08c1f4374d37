"""test_api.py's tests that read the index, against a server whose index lives in a real Milvus (QA_STORE=milvus).

Only the tests that reach the index are collected again (with this module's `client`): the request
validation and no-index tests never touch Milvus, so running them twice proved nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import LiveServer
from test_api import (  # noqa: F401 - collected again with this module's Milvus-backed `client`
    test_document_endpoint_and_path_tricks,
    test_every_citation_is_exact,
    test_healthz,
    test_japan_question_cites_the_indo_pacific_command,
    test_russian_question_finds_the_arms_export_passage,
)

from qa.api import create_app, load_answerer
from qa.config import Settings
from qa.indexer import build_index
from qa.stores.milvus import MilvusIndex


@pytest.fixture(scope="module")
def milvus_seed_settings(seed_settings: Settings, milvus_uri: str) -> Settings:
    return seed_settings.model_copy(update={"store": "milvus", "milvus_uri": milvus_uri, "milvus_collection": "seed"})


@pytest.fixture(scope="module")
def milvus_server(milvus_seed_settings: Settings, default_embedder) -> Iterator[LiveServer]:
    report, index = build_index(milvus_seed_settings, embedder=default_embedder)
    assert isinstance(index, MilvusIndex) and report.added and not report.failed
    with LiveServer(create_app(milvus_seed_settings, answerer=load_answerer(milvus_seed_settings))) as server:
        yield server


@pytest.fixture()
def client(milvus_server: LiveServer) -> Iterator[httpx.Client]:  # noqa: F811 - overrides conftest's
    with httpx.Client(base_url=milvus_server.url, timeout=30) as http:
        yield http
