"""The local store's pieces on their own: file hashes, the embedding cache, generations and their garbage
collection, the once-per-generation checksum pass."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from filelock import ReadWriteLock, Timeout

from qa import store
from qa.embed_cache import EmbeddingCache, text_key
from qa.errors import IndexCorrupt
from qa.hashing import file_sha256
from qa.models import Document
from qa.stores import local
from qa.stores.base import DocRows

HEADER = {"embedder": {"name": "test", "dim": 64, "sparse": 0}, "chunking": {"size": 500, "overlap": 0}}


def _generation(index_dir: Path, text: str = "Alpha beta. Gamma delta.") -> store.IndexData:
    vectors = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    doc = Document("a.txt", "A", text, "sha", pages=(0, 12))
    rows = DocRows(doc, [(0, len(text), 0, 2)], [(0, 11), (12, len(text))], vectors[:1], vectors[1:], vectors[1:],
                   np.empty((1, 0), np.float32))  # fmt: skip
    store.save(index_dir, *store.assemble(HEADER, [rows]))
    return store.load(index_dir)


def test_file_sha256_matches_hashlib_on_a_file_larger_than_one_read(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    payload = bytes(range(256)) * 20_000  # 5 MB
    path.write_bytes(payload)
    assert file_sha256(path) == hashlib.sha256(payload).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_embedding_cache_round_trips_persists_and_keeps_models_apart(tmp_path: Path) -> None:
    vector = np.arange(4, dtype=np.float32)
    cache = EmbeddingCache(tmp_path, "model-a", 4)
    cache.put_many([(text_key("hello"), vector)])
    cache.put_many([(text_key("hello"), vector + 1)])  # the first vector of a text stays
    cache.close()
    again = EmbeddingCache(tmp_path, "model-a", 4)
    found = again.get_many([text_key("hello"), text_key("unknown")])
    assert list(found) == [text_key("hello")] and np.array_equal(found[text_key("hello")], vector)
    assert len(again) == 1
    again.close()
    other = EmbeddingCache(tmp_path, "model-b", 4)  # another model never sees model-a's vectors
    assert other.get_many([text_key("hello")]) == {} and other.path != again.path
    other.close()
    narrower = EmbeddingCache(tmp_path, "model-a", 3)  # a vector of the wrong width is not returned
    assert narrower.get_many([text_key("hello")]) == {}
    narrower.close()


def test_a_generation_round_trips_with_its_pages(tmp_path: Path) -> None:
    _generation(tmp_path)
    loaded = store.load(tmp_path)
    assert loaded.documents[0].pages == (0, 12)
    hit = loaded.search_hits(loaded.raw_chunk_vectors(np.array([0]))[0], 1)[0]
    assert hit.pages == (0, 12) and [s.text for s in hit.sentences] == ["Alpha beta.", "Gamma delta."]


def test_save_collects_old_generations_and_leftovers_but_never_the_live_one(tmp_path: Path) -> None:
    _generation(tmp_path)
    first = store.current_generation(tmp_path)
    (tmp_path / ".tmp-gen-interrupted").mkdir()  # what a killed build leaves behind
    (tmp_path / ".CURRENT.deadbeef").write_text("gen-x")
    _generation(tmp_path, "Alpha beta. Gamma epsilon.")
    live = store.current_generation(tmp_path)
    assert live != first and live is not None
    generations = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("gen-", ".tmp-gen", ".CURRENT.")))
    assert generations == [live.name]
    assert "epsilon" in store.load(tmp_path).documents[0].text


def test_garbage_collection_waits_for_a_reader_opening_a_generation(tmp_path: Path) -> None:
    _generation(tmp_path)
    old = store.current_generation(tmp_path)
    _generation(tmp_path)  # old is collected here already; make a new leftover to collect
    old.mkdir()  # type: ignore[union-attr]
    reader = ReadWriteLock(tmp_path / local.GC_LOCK, is_singleton=False)
    with reader.read_lock():  # what store.load holds while it opens a generation
        with pytest.raises(Timeout):
            store.collect_garbage(tmp_path, keep={store.current_generation(tmp_path).name}, timeout=0.2)  # type: ignore[union-attr]
        assert old.is_dir()  # type: ignore[union-attr]
    reader.close()
    assert store.collect_garbage(tmp_path, keep={store.current_generation(tmp_path).name}) == [old.name]  # type: ignore[union-attr]


def test_checksums_are_verified_once_per_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation(tmp_path)
    gen = store.current_generation(tmp_path)
    assert gen is not None and (gen / local.VERIFIED).exists()  # save hashed every file as it wrote it
    assert set(json.loads((gen / local.VERIFIED).read_text())) == set(store.read_manifest(tmp_path)["files"])  # type: ignore[index]

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} was checksummed again")

    monkeypatch.setattr(local, "file_sha256", no_hashing)
    assert store.load(tmp_path).num_chunks == 1  # qa ask's every call: no file is hashed
    monkeypatch.undo()

    rows = gen / "sentence_rows.npy"  # damage after the marker: same size, new mtime -> full check again
    data = bytearray(rows.read_bytes())
    data[-1] ^= 0xFF
    rows.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="qa index --rebuild"):
        store.load(tmp_path)


def test_a_generation_keeps_the_rows_as_embedded_and_their_language_statistics(tmp_path: Path) -> None:
    """FAISS searches the rows as embedded; the per-language sums and counts the ranking stage corrects hits
    with (qa.ranking) are written with the generation, and each hit carries its language and raw row."""
    text = "Der Leuchtturm wurde 1874 gebaut und steht noch heute an der Küste der Insel. " * 4
    vectors = np.random.default_rng(1).normal(size=(3, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = DocRows(Document("de.txt", "D", text, "sha"), [(0, len(text), 0, 1)], [(0, len(text))], vectors[:1],
                   vectors[1:2], vectors[1:2], np.empty((1, 0), np.float32))  # fmt: skip
    store.save(tmp_path, *store.assemble(HEADER, [rows]))
    data = store.load(tmp_path)
    gen = store.current_generation(tmp_path)
    assert data.manifest["stats"] == "stats.json" and "stats.json" in data.manifest["files"]
    stored = json.loads((gen / "stats.json").read_text())["centering"]  # type: ignore[operator]
    assert stored["counts"] == {"de": 1}
    # the sums are of the row as stored (what later changes subtract again), within its codes of the embedded one
    np.testing.assert_allclose(stored["sums"]["de"], data.raw_chunk_vectors(np.array([0]))[0], atol=1e-6)
    np.testing.assert_allclose(stored["sums"]["de"], vectors[0], atol=1e-3)
    stats = data.language_stats()
    assert stats is not None and stats.counts == {"de": 1}
    hit = data.search_hits(vectors[0], 1)[0]
    assert hit.score == pytest.approx(1.0, abs=1e-3) and hit.language == "de"  # the embedded row is searched
    assert hit.vector is not None and np.allclose(hit.vector, vectors[0], atol=1e-3)
    assert [h.chunk for h in data.search_hits(vectors[0], 1, language="de")] == [hit.chunk]  # one language's rows
    assert data.search_hits(vectors[0], 1, language="en") == []
    assert np.allclose(data.document_rows("de.txt").vectors, vectors[:1], atol=1e-3)  # the embedded row is kept


def test_dense_rows_decode_every_row_for_analysis(tmp_path: Path) -> None:
    data = _generation(tmp_path)
    dense = data.dense_rows()
    assert dense["vectors"].shape == (1, 64) and dense["sentence_vectors"].shape == (2, 64)
    assert list(dense["sentence_doc"]) == [0, 0] and np.allclose(dense["context_vectors"], dense["sentence_vectors"])
    assert np.allclose(dense["sentence_vectors"], data.search_hits(dense["vectors"][0], 1)[0].sentence_vectors)


def test_sentence_rows_keep_the_fine_columns_at_8_bits_and_the_rest_at_4_without_drift(tmp_path: Path) -> None:
    """e5's columns at 8 bits, USE's at 4 (two a byte): a fused row keeps its scores, a zeroed block stays zero."""
    from qa.stores import rows as enc

    rng = np.random.default_rng(4)
    e5, use = rng.normal(size=(40, 384)), rng.normal(size=(40, 512))  # the real widths: no component clips
    fused = np.hstack([np.sqrt(0.7) * e5 / np.linalg.norm(e5, axis=1, keepdims=True),
                       np.sqrt(0.3) * use / np.linalg.norm(use, axis=1, keepdims=True)]).astype(np.float32)  # fmt: skip
    fused[:5, 384:] = 0  # a language USE does not read: its block is zero and e5's takes the whole weight
    fused[:5] /= np.linalg.norm(fused[:5], axis=1, keepdims=True)
    codes = enc.encode_rows(fused, 384)
    assert codes.shape == (40, 384 + 256) and codes.nbytes == 40 * (384 + 512 // 2)
    back = enc.decode_rows(codes, 896)
    assert np.abs(back[:5, 384:]).max() == 0 and np.abs(back[:, :384] - fused[:, :384]).max() < 0.002
    query = rng.normal(size=896).astype(np.float32)
    query /= np.linalg.norm(query)
    assert np.abs(back @ query - fused @ query).max() < 0.01  # a score moves by less than a hundredth
    assert np.array_equal(enc.encode_rows(back, 384), codes)  # a row copied into the next generation keeps its bytes
    header = {**HEADER, "embedder": {**HEADER["embedder"], "dim": 896, "fine": 384}}
    doc = Document("a.txt", "A", "Alpha beta. Gamma delta.", "sha")
    rows = DocRows(doc, [(0, 24, 0, 2)], [(0, 11), (12, 24)], fused[:1], fused[5:7], fused[5:7],
                   np.empty((1, 0), np.float32))  # fmt: skip
    store.save(tmp_path, *store.assemble(header, [rows]))
    hit = store.load(tmp_path).search_hits(fused[0], 1)[0]
    assert np.allclose(hit.sentence_vectors, back[5:7])  # what a question reads is the decoded row


def test_latent_terms_round_trip_without_drift_and_a_cap_keeps_the_heaviest(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.embedding import SPARSE_K, sparse_scores
    from qa.stores import rows as enc

    row = np.zeros((1, 2 * SPARSE_K), np.float32)
    row[0, :3] = [7, 16383, 42]
    row[0, SPARSE_K : SPARSE_K + 3] = np.array([0.8, 0.6, 0.1]) / np.linalg.norm([0.8, 0.6, 0.1])
    ptr, ids, weights = enc.encode_sparse(row)
    back = enc.decode_sparse(ptr, ids, weights, 0)
    assert weights.dtype == np.uint8 and list(ids) == [7, 16383, 42]  # one byte a weight, only the terms it has
    assert np.allclose(back, row[0], rtol=0.03, atol=1e-4)
    again = enc.encode_sparse(back[None])  # a row copied into the next generation keeps its bytes
    assert all(np.array_equal(x, y) for x, y in zip(again, (ptr, ids, weights)))
    # 256 real-looking terms, 128 kept: the heaviest, re-normalized, and still the same row to a cosine of 0.99
    rng = np.random.default_rng(3)
    full = np.zeros((1, 2 * SPARSE_K), np.float32)
    full[0, :SPARSE_K] = rng.choice(16384, SPARSE_K, replace=False)
    weights_full = np.sort(rng.exponential(size=SPARSE_K))[::-1]
    full[0, SPARSE_K:] = weights_full / np.linalg.norm(weights_full)
    ptr, ids, weights = enc.encode_sparse(full)
    kept = enc.decode_sparse(ptr, ids, weights, 0)
    assert len(ids) == enc.STORED_TERMS and set(ids) == set(full[0, : enc.STORED_TERMS].astype(int))
    assert sparse_scores(full[0], kept[None])[0] >= 0.95
    assert all(np.array_equal(x, y) for x, y in zip(enc.encode_sparse(kept[None]), (ptr, ids, weights)))
    monkeypatch.setattr(enc, "STORED_TERMS", 2)
    ptr, ids, weights = enc.encode_sparse(row)
    decoded = enc.decode_sparse(ptr, ids, weights, 0)[SPARSE_K:]
    assert list(ids) == [7, 16383] and np.linalg.norm(decoded) == pytest.approx(1.0, abs=0.02)


def test_int8_flat_codes_round_trip_without_drift_and_never_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import vector_index

    monkeypatch.setattr(vector_index, "FLAT_CODES", "int8")
    rows = np.random.default_rng(2).normal(size=(50, 896)).astype(np.float32)  # real widths: |x| < 0.25
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    first, info = vector_index.build(rows, "flat")
    decoded = first.reconstruct_n(0, 50)
    again = vector_index.build(decoded, "flat")[0].reconstruct_n(0, 50)
    assert info == {"kind": "flat", "codes": "int8"} and np.array_equal(decoded, again)
    assert np.abs(decoded - rows).max() < 0.002 and vector_index.search(first, info, None, rows[:5], 1)[1][
        :, 0
    ].tolist() == [0, 1, 2, 3, 4]
    # another model's rows reaching past int8's range get float16 codes for that generation: nothing clipped
    wide = rows.copy()
    wide[0, :4] = [0.6, -0.5, 0.3, 0.0]
    index, info = vector_index.build(wide, "flat")
    assert info["codes"] == "fp16" and np.allclose(index.reconstruct(0)[:4], wide[0, :4], atol=1e-3)
    assert vector_index.build(index.reconstruct_n(0, 50), "flat")[1]["codes"] == "fp16"


MIXED = ["Port ", "café ", "Порт ", "港口 ", "😀 ", "𠀋 "]  # 1, 2, 3 and 4 UTF-8 bytes a character


def _chunked(doc: Document, size: int) -> DocRows:
    """The document in chunks of ``size`` characters, overlapping by a third, one sentence each."""
    spans = [(s, min(s + size, len(doc.text))) for s in range(0, len(doc.text) - size // 3, size - size // 3)]
    vectors = np.random.default_rng(2).normal(size=(len(spans), 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [(s, e, i, i + 1) for i, (s, e) in enumerate(spans)]
    return DocRows(doc, chunks, spans, vectors, vectors, vectors, np.empty((len(spans), 0), np.float32),
                   languages=("",) * len(spans))  # fmt: skip


def test_chunks_of_mixed_width_text_read_back_as_written(tmp_path: Path) -> None:
    """Byte ranges follow characters of every UTF-8 width, past chunk overlaps and across documents."""
    first = Document("a.txt", "A", "".join(MIXED * 40), "sha-a")
    second = Document("b.txt", "B", "".join(reversed(MIXED)) * 30, "sha-b")
    rows = [_chunked(first, 37), _chunked(second, 23)]
    store.save(tmp_path, *store.assemble(HEADER, rows))
    data = store.load(tmp_path)
    for row, got in enumerate(data.dense_rows()["vectors"]):
        hit = data.search_hits(got, 1)[0]
        doc = first if hit.chunk.doc_id == "a.txt" else second
        assert hit.chunk.text == doc.text[hit.chunk.start : hit.chunk.end], row
        assert [s.text for s in hit.sentences] == [doc.text[hit.chunk.start : hit.chunk.end]]
    assert [d.text for d in data.documents] == [first.text, second.text]


class _CountingText(str):
    """A text that counts the characters every slice of it copies."""

    copied = 0

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        part = super().__getitem__(key)
        _CountingText.copied += len(part)
        return part


def test_a_long_text_is_read_once_not_once_per_chunk(tmp_path: Path) -> None:
    """Byte ranges in one pass: re-encoding the text up to each chunk took half an hour for 35 MiB."""
    text = _CountingText("".join(MIXED) * 2000)  # 40,000 characters in 1,500 chunks
    rows = _chunked(Document("long.txt", "L", text, "sha"), 40)
    _CountingText.copied = 0
    store.assemble(HEADER, [rows])
    assert _CountingText.copied <= 2 * len(text)  # each character once for the byte ranges, not once per chunk
