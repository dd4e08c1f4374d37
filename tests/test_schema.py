"""schemathesis against the live service's OpenAPI schema: no 5xx, no response that breaks the schema.

Bounded and derandomized (30 examples per operation, a fixed seed sequence), so CI is cheap and repeatable.
Run once with no key configured (requests carry the session token `qa serve` prints) and once with QA_API_KEY
(requests carry it); either way schemathesis also checks that a request without it is refused where the schema
says a key is required.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import LiveServer
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.store import IndexData

KEY = "schema-test-key"
SESSION = "schema-test-session-token"  # what `qa serve` prints; with no key configured, the one that writes
EXAMPLES = settings(
    max_examples=30, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def _server(
    seed_settings: Settings, seed_index: IndexData, default_embedder: Embedder, folder: Path, **overrides: object
) -> LiveServer:
    # its own Answerer and its own copy of the corpus: POST /admin/reindex swaps indexes, and POST/DELETE
    # /documents change files, while the shared session answerer and seed folders stay untouched
    shutil.copytree(seed_settings.seeds_dir, folder / "seeds")
    shutil.copytree(seed_settings.index_dir, folder / "index")
    overrides = {"seeds_dir": folder / "seeds", "index_dir": folder / "index", **overrides}
    settings = seed_settings.model_copy(update=overrides)
    # requests go as schemathesis sends them (owner=False): it checks that a missing key is refused where required
    app = create_app(settings, answerer=Answerer(default_embedder, seed_index), session_token=SESSION)
    return LiveServer(app, owner=False)


def _schema(api_key: str | None) -> dict:
    return create_app(Settings(api_key=api_key, cors_origins="")).openapi()


# The schema is taken from the app at import time (schemathesis parametrizes at collection; its lazy
# from_fixture loader does not work with pytest 9); each server below checks that it serves the same one.
open_schema = schemathesis.openapi.from_dict(_schema(None))
keyed_schema = schemathesis.openapi.from_dict(_schema(KEY))


@pytest.fixture(scope="module")
def open_url(
    seed_settings: Settings, seed_index: IndexData, default_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with _server(seed_settings, seed_index, default_embedder, tmp_path_factory.mktemp("open")) as server:
        assert httpx.get(f"{server.url}/openapi.json").json() == _schema(None)
        yield server.url


@pytest.fixture(scope="module")
def keyed_url(
    seed_settings: Settings, seed_index: IndexData, default_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with _server(seed_settings, seed_index, default_embedder, tmp_path_factory.mktemp("keyed"), api_key=KEY) as server:
        assert httpx.get(f"{server.url}/openapi.json").json() == _schema(KEY)
        yield server.url


def _call_and_validate(case: schemathesis.Case, url: str, headers: dict[str, str] | None = None) -> None:
    response = case.call(base_url=url, headers=headers)
    # A schema-violating body over 64 KiB is refused with 413 before it is parsed: a rejection too,
    # though not one on schemathesis' list of rejection statuses.
    excluded = [negative_data_rejection] if response.status_code == 413 else []
    # A schema can say "files", not "files qa can read": an upload of made-up bytes is schema-valid, and its
    # 422 (each file's reason in errors) is the documented answer, not a rejected valid request.
    if case.operation.label == "POST /documents" and response.status_code == 422 and response.json()["errors"]:
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded, headers=headers)


@open_schema.parametrize()
@EXAMPLES
def test_open_service_conforms_to_its_schema(case: schemathesis.Case, open_url: str) -> None:
    _call_and_validate(case, open_url, {"Authorization": f"Bearer {SESSION}"})


@keyed_schema.parametrize()
@EXAMPLES
def test_keyed_service_conforms_to_its_schema(case: schemathesis.Case, keyed_url: str) -> None:
    _call_and_validate(case, keyed_url, {"Authorization": f"Bearer {KEY}"})
