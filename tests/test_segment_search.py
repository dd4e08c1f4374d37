"""A segmented view searches exactly as one index of its live rows (real FAISS, real store code, no model).

Random unit rows stand in for a model's: what is checked is that after uploads, edits and deletions
written as segments, every query's top k (rows and scores) is the exact top k over the live stored rows,
within one language or some collections as well, and that nothing dead is ever returned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.models import Document
from qa.stores.base import DocRows
from qa.stores.local_writer import FaissWriter
from qa.stores.segments import SegmentedIndex

DIM = 64
HEADER = {"embedder": {"name": "test", "dim": DIM, "sparse": 0}, "chunking": {"size": 500, "overlap": 0}}


def _rows(doc_id: str, rng: np.random.Generator, language: str, chunks: int = 3) -> DocRows:
    text = "Lorem ipsum dolor sit amet. " * (4 * chunks)
    step = len(text) // chunks
    vectors = rng.normal(size=(chunks, DIM)).astype(np.float32) * 0.2
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) * 1.0
    return DocRows(
        Document(doc_id, doc_id, text, f"sha-{rng.integers(1 << 30)}"),
        [(c * step, (c + 1) * step, c, c + 1) for c in range(chunks)],
        [(c * step, (c + 1) * step) for c in range(chunks)],
        vectors,
        vectors,
        vectors,
        np.empty((chunks, 0), np.float32),
        (language,) * chunks,
    )


def _commit(index_dir: Path, live, put: list[DocRows] = (), delete: tuple[str, ...] = ()):  # type: ignore[assignment]
    writer = FaissWriter.open(index_dir, HEADER, "flat", rebuild=False, live=live, merge_share=0.5)
    names = {rows.doc.id for rows in put}
    for doc_id in writer.stored():
        if doc_id not in names and doc_id not in delete:
            writer.keep(doc_id)
    for rows in put:
        writer.put(rows)
    for doc_id in delete:
        writer.delete(doc_id)
    return writer.commit()


def _exact(live, query: np.ndarray, k: int, language: str | None, scope) -> list[tuple[str, int, float]]:
    """The exact top k over every live document's stored rows: (document, chunk start, score)."""
    scored = []
    for doc in live.documents:
        if scope is not None and doc.id.partition("/")[0] not in scope:
            continue
        rows = live.document_rows(doc.id)
        for (start, _, _, _), vector, lang in zip(rows.chunks, rows.vectors, rows.languages):
            if language is None or lang == language:
                scored.append((doc.id, start, float(vector @ query)))
    scored.sort(key=lambda item: -item[2])
    return scored[:k]


def test_segments_search_exactly_the_live_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    languages = ("en", "de")
    base = [_rows(f"{team}/d{i:02d}.txt", rng, languages[i % 2]) for team in ("hr", "ops") for i in range(20)]
    live = _commit(tmp_path, None, base)
    changes = [
        ([_rows("hr/new-1.txt", rng, "en")], ()),
        ([_rows("ops/d03.txt", rng, "de")], ()),  # an edit: the base's rows of it are dead
        ([], ("hr/d05.txt",)),
        ([_rows("hr/new-2.txt", rng, "de"), _rows("hr/d07.txt", rng, "en")], ("ops/d10.txt",)),
        ([_rows("hr/new-1.txt", rng, "de")], ()),  # an edit of a segment's document
        ([_rows("ops/new-3.txt", rng, "en")], ()),
    ]
    for put, delete in changes:
        live = _commit(tmp_path, live, put, delete)
        assert isinstance(live, SegmentedIndex)
    assert len(live.layers) > 1 and live.num_documents == 40 + 3 - 2
    for doc_id in ("hr/d05.txt", "ops/d10.txt"):
        assert live.document(doc_id) is None
    queries = rng.normal(size=(40, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for language, scope in ((None, None), ("de", None), (None, frozenset({"hr"})), ("en", frozenset({"ops"}))):
        for query in queries:
            found = live.hits(live.search_rows(query, 8, language, scope))
            got = [(hit.chunk.doc_id, hit.chunk.start, hit.score) for hit in found]
            want = _exact(live, query, 8, language, scope)
            assert [(d, s) for d, s, _ in got] == [(d, s) for d, s, _ in want]
            assert np.allclose([g[2] for g in got], [w[2] for w in want], atol=1e-5)


def _commit_named(index_dir: Path, live, named: set[str], put: list[DocRows], keep: tuple[str, ...] = ()):
    """A change as build_index(only=named) makes it: every other stored document kept by one call."""
    writer = FaissWriter.open(index_dir, HEADER, "flat", rebuild=False, live=live, merge_share=0.5)
    writer.keep_others(named)
    for doc_id in keep:
        writer.keep(doc_id)
    for rows in put:
        writer.put(rows)
    return writer.commit()


def test_a_change_naming_its_documents_commits_what_keeping_each_other_one_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base = [_rows(f"hr/d{i:02d}.txt", rng, "en") for i in range(30)]
    edit, upload = _rows("hr/d04.txt", rng, "en"), _rows("hr/new.txt", rng, "de")
    big = [_rows(f"hr/b{i:02d}.txt", rng, "en") for i in range(20)]  # past merge_share: a whole generation
    # named: the edit, the upload, one unchanged (kept), one named and neither kept nor written (gone)
    each = _commit(tmp_path / "each", _commit(tmp_path / "each", None, base), [edit, upload], ("hr/d09.txt",))
    each = _commit(tmp_path / "each", each, big, ("hr/d11.txt",))
    named = _commit(tmp_path / "named", None, base)
    named = _commit_named(
        tmp_path / "named", named, {"hr/d04.txt", "hr/new.txt", "hr/d02.txt", "hr/d09.txt"}, [edit, upload],
        keep=("hr/d02.txt",),
    )  # fmt: skip
    assert isinstance(named, SegmentedIndex)
    named = _commit_named(tmp_path / "named", named, {"hr/d11.txt", *(rows.doc.id for rows in big)}, big)
    assert not isinstance(named, SegmentedIndex)  # the large change wrote a whole generation
    assert named.document_ids() == each.document_ids()
    assert "hr/d09.txt" not in named.document_ids() and "hr/d11.txt" not in named.document_ids()
    assert "hr/d02.txt" in named.document_ids() and dict(named.sha_table()) == dict(each.sha_table())
    queries = rng.normal(size=(20, DIM)).astype(np.float32)
    for query in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        got = [(h.chunk.doc_id, h.chunk.start, round(h.score, 5)) for h in named.hits(named.search_rows(query, 6))]
        want = [(h.chunk.doc_id, h.chunk.start, round(h.score, 5)) for h in each.hits(each.search_rows(query, 6))]
        assert got == want
