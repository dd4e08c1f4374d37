"""A generation written a batch at a time (the merge's way, qa.stores.streamed) is the one ``assemble`` writes.

What a user would notice: after a merge, every document, chunk, sentence row, latent term and statistic
reads back as from a generation written whole, and a search finds the same rows; and the merge's memory
no longer holds every row of the base at once (the batches here are a few documents).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.models import Document
from qa.stores import local, streamed
from qa.stores.base import DocRows
from qa.stores.faiss import assemble

DIM = 64
HEADER = {"embedder": {"name": "synthetic", "dim": DIM, "sparse": 2 * 256}, "chunking": {"size": 100}}


def _documents(count: int, seed: int = 0) -> list[DocRows]:
    """Documents of 1-4 chunks, two sentences a chunk, a denial's own reading on some sentences, two
    collections and two languages, vectors near a few centres (as embeddings cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, DIM)).astype(np.float32)
    found = []
    for number in range(count):
        chunks = int(rng.integers(1, 5))
        vectors = centres[rng.integers(0, 8, chunks)] + rng.normal(0, 0.5, (chunks, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        sentences = np.repeat(vectors, 2, axis=0)
        contexts = sentences.copy()
        if number % 3 == 0:
            contexts[0] = -contexts[0]  # a sentence read after a denial: a row of its own
        text = "".join(f"Satz {number}-{c} ä. Zweiter {c}. " for c in range(chunks))
        bounds = [text.index(f"Satz {number}-{c} ") for c in range(chunks)] + [len(text)]
        sparse = np.zeros((chunks, 512), np.float32)
        sparse[:, :20] = rng.integers(0, 16384, (chunks, 20))
        sparse[:, 256:276] = rng.uniform(0.05, 0.3, (chunks, 20))
        half = [(bounds[c] + bounds[c + 1]) // 2 for c in range(chunks)]
        collection = "hr/" if number % 2 else ""
        found.append(
            DocRows(
                Document(f"{collection}d{number:04d}.txt", f"Doc {number}", text, f"{number:064d}", ()),
                [(bounds[c], bounds[c + 1], 2 * c, 2 * c + 2) for c in range(chunks)],
                [p for c in range(chunks) for p in ((bounds[c], half[c]), (half[c], bounds[c + 1]))],
                vectors,
                sentences,
                contexts,
                sparse,
                tuple("de" if number % 4 else "en" for _ in range(chunks)),
            )
        )
    return found


@pytest.mark.parametrize(("count", "kind"), [(60, "flat"), (700, "ivf-sq8")])
def test_a_generation_written_in_batches_reads_as_one_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, kind: str
) -> None:
    monkeypatch.setattr(streamed, "BATCH_CHUNKS", 17)  # many batches, documents straddling none
    monkeypatch.setattr(streamed, "STATS_BLOCK", 50)
    documents = _documents(count)
    # the rows as a merge reads them: from a stored generation (flat codes and float16 rows already applied)
    stored = local.open_generation(
        gen := local.save(tmp_path / "source", *assemble(HEADER, documents, kind)),
        json.loads((gen / local.MANIFEST).read_text()),
    )
    ids = sorted(stored.by_id)
    rows = {doc_id: stored.document_rows(doc_id) for doc_id in ids}
    whole_dir = local.save(tmp_path / "whole", *assemble(HEADER, [rows[i] for i in ids], kind))
    whole = local.open_generation(whole_dir, json.loads((whole_dir / local.MANIFEST).read_text()))
    folder = streamed.write_streamed(tmp_path / "streamed", HEADER, ids, rows.__getitem__, kind)
    batched = local.open_generation(folder, json.loads((folder / local.MANIFEST).read_text()))

    assert batched.manifest["documents"] == whole.manifest["documents"]
    assert batched.manifest["languages"] == whole.manifest["languages"]
    assert batched.search_info["kind"] == whole.search_info["kind"] == ("flat" if kind == "flat" else "ivf-sq8")
    for name, array in whole.arrays.items():
        np.testing.assert_array_equal(np.asarray(batched.arrays[name]), np.asarray(array), err_msg=name)
    for doc_id in ids:
        a, b = batched.document_rows(doc_id), whole.document_rows(doc_id)
        assert (a.doc, a.chunks, a.sentences, a.languages) == (b.doc, b.chunks, b.sentences, b.languages)
        for field in ("vectors", "sentence_vectors", "context_vectors", "sparse"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-6, err_msg=field)
    for scope in (None, frozenset({"hr"})):
        got, want = batched.language_stats(scope), whole.language_stats(scope)
        assert got is not None and want is not None and got.counts == want.counts
        for language, total in want.sums.items():
            np.testing.assert_allclose(got.sums[language], total, rtol=1e-6, atol=1e-6)
    queries = np.stack([rows[i].vectors[0] for i in ids[:40]])
    _, found = batched.search(queries, 5)
    _, expected = whole.search(queries, 5)
    assert (found[:, 0] == expected[:, 0]).mean() >= 0.95  # each document's own chunk first, as written whole
