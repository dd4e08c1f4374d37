"""Shared fixtures: the real bundled e5 model, a seed-corpus index built once per session, a live server."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from milvus_server import milvus_server

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import DEFAULT_EMBEDDER, Settings
from qa.embedding import Embedder, make_embedder
from qa.indexer import build_index
from qa.store import IndexData

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
JAPAN_QUESTION = "who commands US troops in Japan?"
JAPAN_ANSWER = "Управление осуществляет глава Индо-Тихоокеанского командования на Гавайях."
# The sentence closest to the question denies ("...but the US commander in Japan has no command authority");
# an answer may show it before JAPAN_ANSWER (qa.highlight.best_sentence), never alone.
JAPAN_DENIAL = (
    "В Японии размещено более 50 тыс. американских военнослужащих, но командующий войсками США в Японии "
    "не имеет командных полномочий."
)
JAPAN_ANSWERS = (JAPAN_ANSWER, f"{JAPAN_DENIAL} {JAPAN_ANSWER}")


@pytest.fixture(scope="session")
def e5() -> Embedder:
    return make_embedder("e5")


@pytest.fixture(scope="session")
def default_embedder() -> Embedder:
    """What the service runs with no configuration: e5 fused with USE (qa.config.DEFAULT_EMBEDDER)."""
    return make_embedder(DEFAULT_EMBEDDER)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The repository's seed corpus, indexed into a private folder, with the default configuration."""
    base = tmp_path_factory.mktemp("seed")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    return Settings(seeds_dir=seeds, index_dir=base / "index")


@pytest.fixture(scope="session")
def seed_index(seed_settings: Settings, default_embedder: Embedder) -> IndexData:
    report, data = build_index(seed_settings, embedder=default_embedder)
    assert not report.failed and data is not None
    return data


@pytest.fixture(scope="session")
def seed_answerer(seed_settings: Settings, seed_index: IndexData) -> Answerer:
    return Answerer.from_settings(seed_settings, seed_index)


class AsOwner:
    """The test client plays the person at the machine, who holds the session token `qa serve` printed: a
    request with no ``Authorization`` carries it while the app has no key configured. With keys configured,
    or a header of its own, a request goes as sent (qa.auth decides, as in production)."""

    def __init__(self, app) -> None:
        self.app = app

    def __getattr__(self, name: str):
        return getattr(self.app, name)  # transparent: tests reach the app's state through uvicorn's config

    async def __call__(self, scope, receive, send) -> None:
        auth = getattr(getattr(self.app, "state", None), "auth", None)
        if (
            scope["type"] == "http"
            and auth is not None
            and all(name != b"authorization" for name, _ in scope["headers"])
            and not auth.keys_configured()
        ):
            token = f"Bearer {auth.session_token}".encode()
            scope = {**scope, "headers": [*scope["headers"], (b"authorization", token)]}
        await self.app(scope, receive, send)


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a thread, so tests speak real HTTP to the ASGI app.

    ``owner``: requests without a key act as the machine's owner (AsOwner); False sends them as they are.
    """

    def __init__(self, app, port: int | None = None, *, owner: bool = True) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        served = AsOwner(app) if owner else app
        self.server = uvicorn.Server(uvicorn.Config(served, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def index_files(base: Path, files: dict[str, str], embedder: Embedder) -> Settings:
    """``files`` (name -> text) written to ``base``/seeds and indexed with ``embedder``: the settings that read them."""
    (base / "seeds").mkdir()
    for name, text in files.items():
        (base / "seeds" / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index")
    report, _ = build_index(settings, embedder=embedder)
    assert not report.failed
    return settings


def answerer_over(base: Path, files: dict[str, str], embedder: Embedder) -> Answerer:
    """An answerer over an index of ``files``, loaded as the service loads it."""
    return Answerer(embedder, store.load(index_files(base, files, embedder).index_dir))


def session_token_in(output: str) -> str | None:
    """The session token in `qa serve`'s start-up output (``http://127.0.0.1:PORT/#token=…``), once printed."""
    found = re.search(r"/#token=([A-Za-z0-9_-]+)", output)
    return found.group(1) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def seed_server(seed_settings: Settings, seed_answerer: Answerer) -> Iterator[LiveServer]:
    with LiveServer(create_app(seed_settings, answerer=seed_answerer)) as server:
        yield server


@pytest.fixture()
def client(seed_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=seed_server.url, timeout=30) as http:
        yield http


TINY = {
    "harbour.txt": "The harbour master of Valdoria is Ingrid Olsen. She has run the port since 2011.",
    "bakery.txt": "The old bakery on Mill Street sells rye bread. It opens at six every morning.",
}
TINY_ANSWER = "The harbour master of Valdoria is Ingrid Olsen."


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory: pytest.TempPathFactory, e5: Embedder) -> Settings:
    """Two one-line documents indexed once per session; tests copy them before changing anything."""
    base = tmp_path_factory.mktemp("tiny")
    (base / "seeds").mkdir()
    for name, text in TINY.items():
        (base / "seeds" / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    build_index(settings, embedder=e5)
    return settings


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real standalone Milvus server (PyPI `milvus`), data in a temp folder, components on loopback."""
    with milvus_server(tmp_path_factory.mktemp("milvus")) as uri:
        yield uri
