"""A failing model or store fails only what it must: one document for the model, the whole build (and
nothing else) for the store; an upload it fails is undone. Also: `qa eval` never touches the configured store."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ROOT, LiveServer, free_port

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import StoreUnavailable
from qa.eval import evaluate, load_eval_set
from qa.indexer import build_index
from qa.stores.milvus import MilvusStore, open_index

DATA = ROOT / "tests" / "data"
POISON = "The poisoned sentence."


class Failing:
    """The real embedder, raising on any batch that holds ``bad`` (as a model failing on one input would),
    and calling ``before`` ahead of every passage batch."""

    def __init__(self, inner: Embedder, bad: str = POISON, before=lambda: None) -> None:
        self.inner, self.name, self.dim, self.bad, self.before = inner, inner.name, inner.dim, bad, before

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.before()
        if any(self.bad in t for t in texts):
            raise RuntimeError("the model failed on one text")
        return self.inner.encode_passages(texts)

    def encode_sparse(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_sparse(texts)  # type: ignore[attr-defined]


def _seeds(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


FILES = {
    "a.txt": "The lighthouse on Kelp Island was built in 1874.",
    "b.txt": "The bakery on Mill Street sells rye bread.",
    "c.txt": "A ferry links Kelp Island to the mainland.",
}


def test_an_embedding_failure_fails_only_its_document(tmp_path: Path, e5: Embedder) -> None:
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5")
    _seeds(settings.seeds_dir, {"a.txt": FILES["a.txt"], "b.txt": FILES["b.txt"]})
    build_index(settings, embedder=e5)
    # b changes and a poisoned file arrives: both are embedded in one group, which the model fails
    _seeds(settings.seeds_dir, {"b.txt": FILES["b.txt"] + " It opens at six.", "p.txt": f"Kelp news. {POISON}"})
    report, index = build_index(settings, embedder=Failing(e5))
    assert [f.path for f in report.failed] == ["p.txt"] and "the model failed" in report.failed[0].reason
    assert report.updated == ["b.txt"] and report.unchanged == ["a.txt"] and not report.removed
    assert sorted(d.id for d in store.load(settings.index_dir).documents) == ["a.txt", "b.txt"]
    assert "six" in index.document("b.txt").text  # type: ignore[union-attr]


def test_a_milvus_that_refuses_connections_stops_the_build_naming_it(tmp_path: Path, e5: Embedder) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", store="milvus", milvus_uri=uri)
    _seeds(settings.seeds_dir, FILES)
    with pytest.raises(StoreUnavailable, match=f"Milvus at {uri}"):
        build_index(settings, embedder=e5)


class Proxy:
    """A TCP relay in front of Milvus that can be cut: the server going away mid-build, as the client sees it."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.cut_off = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.cut_off = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_milvus_stopping_mid_build_reports_no_file_and_deletes_nothing(
    tmp_path: Path, e5: Embedder, milvus_uri: str
) -> None:
    name = f"cut_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", store="milvus",
        milvus_uri=milvus_uri, milvus_collection=name,
    )  # fmt: skip
    _seeds(settings.seeds_dir, FILES)
    build_index(settings, embedder=e5)
    before = MilvusStore(milvus_uri, name, e5.dim).document_hashes()
    assert sorted(before) == ["a.txt", "b.txt", "c.txt"]

    # next run: a and b change, c is gone; the server goes away once the build has read what is stored
    _seeds(settings.seeds_dir, {"a.txt": FILES["a.txt"] + " It is white.", "b.txt": FILES["b.txt"] + " Fresh."})
    (settings.seeds_dir / "c.txt").unlink()
    proxy = Proxy(milvus_uri)
    with pytest.raises(StoreUnavailable, match="Milvus at"):
        build_index(settings.model_copy(update={"milvus_uri": proxy.uri}), embedder=Failing(e5, before=proxy.cut))
    assert MilvusStore(milvus_uri, name, e5.dim).document_hashes() == before  # c was not deleted, a and b intact


def _eval_files() -> tuple[Path, Path]:
    return DATA / "tiny.en.json", DATA / "tiny.de.json"


def test_eval_never_touches_the_configured_store(tmp_path: Path, e5: Embedder) -> None:
    configured = Settings(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", store="milvus",
        milvus_uri=f"http://127.0.0.1:{free_port()}",  # any use of the configured store fails loudly
    )  # fmt: skip
    said: list[str] = []
    result = evaluate(configured, load_eval_set(*_eval_files()), announce=said.append)
    assert result["questions"] == 4 and result["recall@5"] > 0
    assert not configured.index_dir.exists() and not configured.seeds_dir.exists()
    assert len(said) == 1 and "FAISS" in said[0] and "milvus store is not touched" in said[0]


def test_eval_leaves_a_real_milvus_collection_as_it_was(tmp_path: Path, e5: Embedder, milvus_uri: str) -> None:
    name = f"prod_{uuid.uuid4().hex[:8]}"
    configured = Settings(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", store="milvus",
        milvus_uri=milvus_uri, milvus_collection=name,
    )  # fmt: skip
    _seeds(configured.seeds_dir, FILES)
    build_index(configured, embedder=e5)
    before = MilvusStore(milvus_uri, name, e5.dim).document_hashes()
    evaluate(configured, load_eval_set(*_eval_files()), workdir=tmp_path / "eval")
    assert MilvusStore(milvus_uri, name, e5.dim).document_hashes() == before  # before the fix: all "removed"


def test_milvus_going_away_mid_upload_keeps_the_earlier_version(tmp_path: Path, e5: Embedder, milvus_uri: str) -> None:
    """An upload replacing an earlier upload fails as Milvus goes away mid-embedding (StoreUnavailable, and so
    does every lookup after it): 503 naming Milvus, and the earlier version is what Milvus still holds."""
    name = f"upl_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5", store="milvus",
        milvus_uri=milvus_uri, milvus_collection=name,
    )  # fmt: skip
    _seeds(settings.seeds_dir, FILES)
    build_index(settings, embedder=e5)
    proxy = Proxy(milvus_uri)
    served = settings.model_copy(update={"milvus_uri": proxy.uri})
    armed = threading.Event()
    cut = Failing(e5, before=lambda: proxy.cut() if armed.is_set() else None)  # cut as the replacement embeds
    earlier = "The harbour crane on Kelp Island lifts twelve tonnes."
    with LiveServer(create_app(served, answerer=Answerer(cut, open_index(proxy.uri, name, e5.dim)))) as server:
        with httpx.Client(base_url=server.url) as http:
            first = http.post("/documents", files=[("file", ("d.txt", earlier.encode()))], timeout=300)
            assert first.status_code == 201 and first.json()["documents"][0]["status"] == "indexed"
            armed.set()
            newer = earlier + " It was painted white in 1990."
            response = http.post("/documents", files=[("file", ("d.txt", newer.encode()))], timeout=300)
    assert response.status_code == 503 and "Milvus at" in response.json()["detail"]
    stored = open_index(milvus_uri, name, e5.dim).document("d.txt")
    assert stored is not None and stored.text == earlier  # the earlier version, never none
    assert sorted(p.name for p in settings.seeds_dir.iterdir()) == ["a.txt", "b.txt", "c.txt"]  # nothing placed
