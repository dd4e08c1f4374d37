"""Incremental indexing with the real model: only what changed is embedded; a failed build harms nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa import store
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import SPARSE_K, Embedder
from qa.errors import IndexCorrupt, IndexOutdated
from qa.indexer import build_index
from qa.stores import local
from qa.stores.arrayfile import ArrayFile


class Counting:
    """The real embedder, recording which passages it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.passages: list[str] = []
        self.sparse: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passages.extend(texts)
        return self.inner.encode_passages(texts)

    def encode_sparse(self, texts: Sequence[str]) -> np.ndarray:
        self.sparse.extend(texts)
        return self.inner.encode_sparse(texts)  # type: ignore[attr-defined]


@pytest.fixture()
def corpus(tmp_path: Path) -> Settings:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "bridge.txt").write_text("The Harbour Bridge opened in 1932. It carries rail and road.", encoding="utf-8")
    (seeds / "reactor.md").write_text("# Reactor\n\nThe reactor was commissioned in 1987.", encoding="utf-8")
    return Settings(seeds_dir=seeds, index_dir=tmp_path / "index")


def _ask(settings: Settings, e5: Embedder, question: str) -> str:
    return Answerer(e5, store.load(settings.index_dir)).ask(question, 1).citations[0].document


def test_add_change_delete_reembed_only_what_changed(corpus: Settings, e5: Embedder) -> None:
    counting = Counting(e5)
    first, _ = build_index(corpus, embedder=counting)
    assert sorted(first.added) == ["bridge.txt", "reactor.md"] and first.written
    assert any("1932" in text for text in counting.passages)

    counting.passages.clear()
    again, _ = build_index(corpus, embedder=counting)
    assert counting.passages == [] and not again.written and sorted(again.unchanged) == ["bridge.txt", "reactor.md"]

    seeds = corpus.seeds_dir
    (seeds / "bridge.txt").write_text("The Harbour Bridge opened in 1932. It is painted grey.", encoding="utf-8")
    (seeds / "ferry.txt").write_text("Ferries leave Circular Quay every twenty minutes.", encoding="utf-8")
    (seeds / "reactor.md").unlink()
    report, data = build_index(corpus, embedder=counting)
    assert report.updated == ["bridge.txt"] and report.added == ["ferry.txt"] and report.removed == ["reactor.md"]
    assert all("reactor" not in text for text in counting.passages)
    assert "The Harbour Bridge opened in 1932." not in counting.passages  # unchanged sentence: from the cache
    assert any("painted grey" in text for text in counting.passages)
    assert data is not None and {d.id for d in data.documents} == {"bridge.txt", "ferry.txt"}
    assert _ask(corpus, e5, "How often do ferries leave?") == "ferry.txt"
    assert _ask(corpus, e5, "Какого цвета мост?") == "bridge.txt"


def test_new_chunking_or_embedder_forces_full_rebuild(corpus: Settings, e5: Embedder) -> None:
    build_index(corpus, embedder=e5)
    report, _ = build_index(corpus.model_copy(update={"chunk_size": 300}), embedder=e5)
    assert report.rebuilt and sorted(report.added) == ["bridge.txt", "reactor.md"]
    manifest = store.read_manifest(corpus.index_dir)
    assert manifest is not None and manifest["chunking"]["size"] == 300
    assert manifest["embedder"] == {"name": e5.name, "dim": e5.dim, "sparse": 2 * SPARSE_K, "fine": e5.dim}
    assert set(manifest["documents"]) == {"bridge.txt", "reactor.md"}


def test_interrupted_build_leaves_the_old_index_loadable(
    corpus: Settings, e5: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_index(corpus, embedder=e5)
    (corpus.seeds_dir / "ferry.txt").write_text("Ferries leave every twenty minutes.", encoding="utf-8")
    real_write = local.faiss.write_index

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(local.faiss, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, embedder=e5)
    monkeypatch.setattr(local.faiss, "write_index", real_write)

    data = store.load(corpus.index_dir)
    assert {d.id for d in data.documents} == {"bridge.txt", "reactor.md"}
    assert not [p for p in corpus.index_dir.iterdir() if p.name.startswith(".tmp")]
    report, data = build_index(corpus, embedder=e5)
    assert report.added == ["ferry.txt"] and data is not None and data.num_documents == 3


def test_damaged_index_file_is_detected_and_rebuilt(corpus: Settings, e5: Embedder) -> None:
    build_index(corpus, embedder=e5)
    generation = store.current_generation(corpus.index_dir)
    assert generation is not None
    vectors = generation / "sentence_rows.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])
    with pytest.raises(IndexCorrupt, match="qa index --rebuild"):
        store.load(corpus.index_dir)
    report, data = build_index(corpus, embedder=e5)
    assert report.rebuilt and data is not None and data.num_documents == 2
    assert store.load(corpus.index_dir).num_documents == 2


def test_a_bad_file_is_reported_and_the_rest_indexed(corpus: Settings, e5: Embedder) -> None:
    (corpus.seeds_dir / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report, data = build_index(corpus, embedder=e5)
    assert [f.path for f in report.failed] == ["broken.pdf"]
    assert data is not None and {d.id for d in data.documents} == {"bridge.txt", "reactor.md"}


def test_a_live_index_serves_as_the_previous_generation(
    corpus: Settings, e5: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, live = build_index(corpus, embedder=e5)
    (corpus.seeds_dir / "ferry.txt").write_text("Ferries leave every twenty minutes.", encoding="utf-8")

    def no_disk_load(*args, **kwargs):
        raise AssertionError("the previous generation was loaded from disk again")

    monkeypatch.setattr(local, "load", no_disk_load)
    counting = Counting(e5)
    report, data = build_index(corpus, embedder=counting, live=live)
    assert report.added == ["ferry.txt"] and sorted(report.unchanged) == ["bridge.txt", "reactor.md"]
    assert all("1932" not in text for text in counting.passages)  # unchanged rows came from the live index
    assert data is not None and data.num_documents == 3


def test_sentences_are_read_in_context_only_after_a_denial(corpus: Settings, e5: Embedder) -> None:
    (corpus.seeds_dir / "reactor.md").unlink()
    text = "The old pier has no lights. The lighthouse guides the ships. It is painted white."
    (corpus.seeds_dir / "bridge.txt").write_text(text, encoding="utf-8")
    counting = Counting(e5)
    build_index(corpus, embedder=counting)
    sentences = ["The old pier has no lights.", "The lighthouse guides the ships.", "It is painted white."]
    # the chunk, its sentences, and one context reading: the sentence after the denial, read after it
    assert sorted(counting.passages) == sorted([text, *sentences, f"{sentences[0]} {sentences[1]}"])
    assert counting.sparse == [text]  # latent terms for passages only


def test_special_files_are_skipped_before_a_byte_is_read(tmp_path: Path, e5: Embedder) -> None:
    """A link to /dev/zero, a FIFO and a huge sparse file are named and skipped; they never hang the build."""
    import os
    import threading

    from qa import loader

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "good.txt").write_text("The lighthouse keeper of Ostend is Marta Claes.", encoding="utf-8")
    (seeds / "zero.txt").symlink_to("/dev/zero")
    os.mkfifo(seeds / "pipe.txt")
    with (seeds / "huge.txt").open("wb") as handle:  # sparse: no disk used, but over the size limit
        handle.truncate(loader.MAX_BYTES + 1)
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5")
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(report=build_index(settings, embedder=e5)[0]), daemon=True)
    worker.start()
    worker.join(timeout=120)  # the build ends by itself; before the fix it read /dev/zero forever
    assert not worker.is_alive(), "indexing hung on a special file"
    reasons = {f.path: f.reason for f in result["report"].failed}
    assert result["report"].added == ["good.txt"]
    assert "outside the seeds folder" in reasons["zero.txt"]
    assert "not a regular file" in reasons["pipe.txt"]
    assert "over the" in reasons["huge.txt"]


def test_an_index_in_an_older_format_is_named_and_rebuilt(corpus: Settings, e5: Embedder) -> None:
    build_index(corpus, embedder=e5)
    generation = store.current_generation(corpus.index_dir)
    assert generation is not None
    manifest = generation / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"format": {store.FORMAT}', '"format": 2'))
    with pytest.raises(IndexOutdated, match=rf"older qa \(format 2, this one reads {store.FORMAT}\): run `qa index`"):
        store.load(corpus.index_dir)
    report, data = build_index(corpus, embedder=e5)  # never misread: rebuilt from the seeds (cache still serves)
    assert report.rebuilt and sorted(report.added) == ["bridge.txt", "reactor.md"] and report.embedded == 0
    assert store.load(corpus.index_dir).num_documents == 2


def test_a_fresh_build_is_served_memory_mapped_from_disk(corpus: Settings, e5: Embedder) -> None:
    """What a live re-index swaps in is the generation on disk, mapped, not the arrays it built in memory."""
    _, data = build_index(corpus, embedder=e5)

    read_by_slice = {name: a for name, a in data.arrays.items() if isinstance(a, ArrayFile)}  # type: ignore[attr-defined]
    assert set(read_by_slice) == {"sentence_rows", "texts", "sparse_ids", "sparse_weights"}
    assert all(isinstance(a, np.memmap) for name, a in data.arrays.items() if name not in read_by_slice)  # type: ignore[attr-defined]
    current = corpus.index_dir / (corpus.index_dir / "CURRENT").read_text().strip()  # the generation on disk
    assert all(a.path.parent == current for a in read_by_slice.values())
    assert data.document("bridge.txt").text.startswith("The Harbour Bridge")  # type: ignore[union-attr]
