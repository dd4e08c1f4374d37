"""Milvus as the scale-out store (``QA_STORE=milvus``): the same SearchIndex the answerer reads, no local state.

Three collections per ``QA_MILVUS_COLLECTION`` prefix, all with strong consistency (a read sees every
write acknowledged before it):

- ``<name>_chunks``: one row per chunk: the chunk vector (HNSW, inner product) and its document id,
  title, offsets and text, so a search returns everything a citation needs in one round trip;
- ``<name>_sentences``: one row per sentence of a chunk: its offsets and text, and one vector field
  holding ``[sentence alone, sentence in context]`` (Milvus 2.3 allows one vector field per collection);
- ``<name>_documents``: document texts in parts (a VARCHAR holds at most 65,535 bytes) with the page
  starts that fall in each part, their content hashes (for incremental re-indexing) and one metadata row
  with the embedder, chunking and schema version (a change forces a rebuild, as with FAISS).

Writes go document by document (delete the old rows, insert the new), so a crash leaves every other
document intact and the next ``qa index`` finishes the job. The same code serves a Milvus cluster by URI.
Every pymilvus and gRPC error surfaces as ``StoreUnavailable``: the store failed, not a document.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from qa.embedding import SPARSE_K
from qa.errors import StoreUnavailable
from qa.models import Chunk, Document, Span
from qa.stores.base import DocRows, Hit, model_header

META_ID = "\x00meta"  # the documents row that holds the embedder/chunking header
SCHEMA = 2  # 2: page starts in the documents collection
TEXT_PART = 16_000  # characters per document part: at most 64,000 UTF-8 bytes, under VARCHAR's 65,535
VARCHAR_MAX = 65_535
SPARSE_MAX = 4 * 2 * SPARSE_K * 4 // 3 + 4  # base64 of 2 * SPARSE_K float32
HNSW = {"M": 32, "efConstruction": 128}  # as qa.vector_index's HNSW
CONSISTENCY = "Strong"
TIMEOUT_S = 30


def _quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


def _chunk_id(doc_id: str, sha256: str, row: int) -> int:
    """Stable signed 64-bit id of a chunk, unique per document version."""
    digest = hashlib.sha1(f"{doc_id}\x00{sha256}\x00{row}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _store_errors() -> tuple[type[BaseException], ...]:
    """What pymilvus raises when the server is unreachable or refuses: its own errors, gRPC's, the OS's."""
    import grpc
    from pymilvus.exceptions import MilvusException

    return (MilvusException, grpc.RpcError, ConnectionError, TimeoutError)


class _Client:
    """A MilvusClient whose every call raises StoreUnavailable, naming the server, instead of pymilvus's errors."""

    def __init__(self, uri: str) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise StoreUnavailable("pymilvus is not installed: pip install 'qa[milvus]'") from exc
        self.uri = uri
        self._errors = _store_errors()
        self._client = self._guard(lambda: MilvusClient(uri=uri, timeout=TIMEOUT_S), "connect")()

    def _guard(self, call: Callable[..., Any], name: str) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return call(*args, **kwargs)
            except self._errors as exc:
                raise StoreUnavailable(f"Milvus at {self.uri} failed ({name}): {exc}") from exc

        return guarded

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return self._guard(getattr(self._client, name), name)


class MilvusStore:
    """Connection plus collection names; creates the collections on first use."""

    def __init__(self, uri: str, name: str, dim: int) -> None:
        self.client = _Client(uri)
        self.uri = uri
        self.dim = dim
        self.chunks = f"{name}_chunks"
        self.sentences = f"{name}_sentences"
        self.documents = f"{name}_documents"

    # -- schema ---------------------------------------------------------------------------------------
    def ensure(self) -> None:
        from pymilvus import DataType

        existing = set(self.client.list_collections())
        specs = {
            self.chunks: (
                [
                    ("id", DataType.INT64, {"is_primary": True}),
                    ("doc_id", DataType.VARCHAR, {"max_length": 4096}),
                    ("title", DataType.VARCHAR, {"max_length": 4096}),
                    ("start", DataType.INT64, {}),
                    ("end", DataType.INT64, {}),
                    ("text", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),
                    # latent terms, base64 float32 (Milvus 2.3 has no sparse vectors and one vector field)
                    ("sparse", DataType.VARCHAR, {"max_length": SPARSE_MAX}),
                    ("vector", DataType.FLOAT_VECTOR, {"dim": self.dim}),
                ],
                ("HNSW", HNSW),
            ),
            self.sentences: (
                [
                    ("id", DataType.INT64, {"is_primary": True, "auto_id": True}),
                    ("chunk_id", DataType.INT64, {}),
                    ("doc_id", DataType.VARCHAR, {"max_length": 4096}),
                    ("position", DataType.INT64, {}),
                    ("start", DataType.INT64, {}),
                    ("end", DataType.INT64, {}),
                    ("text", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),
                    ("vector", DataType.FLOAT_VECTOR, {"dim": 2 * self.dim}),
                ],
                ("FLAT", {}),
            ),
            self.documents: (
                [
                    ("id", DataType.VARCHAR, {"is_primary": True, "max_length": 4200}),
                    ("doc_id", DataType.VARCHAR, {"max_length": 4096}),
                    ("part", DataType.INT64, {}),
                    ("title", DataType.VARCHAR, {"max_length": 4096}),
                    ("sha256", DataType.VARCHAR, {"max_length": 64}),
                    ("text", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),
                    ("pages", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),  # JSON: page starts in this part
                    ("vector", DataType.FLOAT_VECTOR, {"dim": 2}),  # Milvus requires one vector field
                ],
                ("FLAT", {}),
            ),
        }
        for name, (fields, (index_type, params)) in specs.items():
            if name in existing:
                continue
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            for field_name, dtype, kwargs in fields:
                schema.add_field(field_name, dtype, **kwargs)
            index_params = self.client.prepare_index_params()
            index_params.add_index(field_name="vector", index_type=index_type, metric_type="IP", params=params)
            self.client.create_collection(name, schema=schema, index_params=index_params, consistency_level=CONSISTENCY)

    def drop(self) -> None:
        for name in (self.chunks, self.sentences, self.documents):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    # -- metadata -------------------------------------------------------------------------------------
    def header(self) -> dict | None:
        if not self.client.has_collection(self.documents):
            return None
        rows = self.client.query(self.documents, filter=f"id == {_quote(META_ID)}", output_fields=["text"])
        return json.loads(rows[0]["text"]) if rows else None

    def set_header(self, header: dict) -> None:
        row = {"id": META_ID, "doc_id": META_ID, "part": 0, "title": "", "sha256": "", "pages": "[]"}
        self.client.upsert(self.documents, [{**row, "text": json.dumps(header), "vector": [0.0, 0.0]}])

    def document_hashes(self) -> dict[str, str]:
        rows = self.client.query(
            self.documents, filter=f"part == 0 and id != {_quote(META_ID)}", output_fields=["doc_id", "sha256"]
        )
        return {row["doc_id"]: row["sha256"] for row in rows}

    # -- writes ---------------------------------------------------------------------------------------
    def delete_document(self, doc_id: str) -> None:
        expr = f"doc_id == {_quote(doc_id)}"
        for name in (self.chunks, self.sentences, self.documents):
            self.client.delete(name, filter=expr)

    def write_document(self, rows: DocRows) -> None:
        """Replace a document's rows: the old version's rows go first, then the new ones are inserted."""
        doc = rows.doc
        self.delete_document(doc.id)
        chunk_rows, sentence_rows = [], []
        for position, (start, end, first, last) in enumerate(rows.chunks):
            chunk_id = _chunk_id(doc.id, doc.sha256, position)
            chunk_rows.append(
                {
                    "id": chunk_id,
                    "doc_id": doc.id,
                    "title": doc.title,
                    "start": start,
                    "end": end,
                    "text": doc.text[start:end],
                    "sparse": base64.b64encode(rows.sparse[position].astype(np.float32).tobytes()).decode(),
                    "vector": rows.vectors[position].tolist(),
                }
            )
            for sentence in range(first, last):
                s, e = rows.sentences[sentence]
                both = np.concatenate([rows.sentence_vectors[sentence], rows.context_vectors[sentence]])
                sentence_rows.append(
                    {
                        "chunk_id": chunk_id,
                        "doc_id": doc.id,
                        "position": sentence - first,
                        "start": s,
                        "end": e,
                        "text": doc.text[s:e],
                        "vector": both.tolist(),
                    }
                )
        starts = range(0, max(len(doc.text), 1), TEXT_PART)
        document_rows = [
            {
                "id": f"{doc.id}\x00{part}",
                "doc_id": doc.id,
                "part": part,
                "title": doc.title,
                "sha256": doc.sha256,
                "text": doc.text[at : at + TEXT_PART],
                "pages": json.dumps([p for p in doc.pages if at <= p < at + TEXT_PART]),
                "vector": [0.0, 0.0],
            }
            for part, at in enumerate(starts)
        ]
        # the documents row goes last: it marks the document complete for the next incremental run
        for name, batch in ((self.chunks, chunk_rows), (self.sentences, sentence_rows)):
            for start in range(0, len(batch), 1000):
                self.client.insert(name, batch[start : start + 1000])
        self.client.insert(self.documents, document_rows)


class MilvusWriter:
    """The StoreWriter of Milvus: each put or delete is written at once, document by document."""

    def __init__(self, milvus: MilvusStore, header: dict, rebuilt: bool) -> None:
        self.milvus = milvus
        self.header = header
        self.written = False
        self._stored = milvus.document_hashes()
        self.rebuilt = rebuilt or not self._stored

    @classmethod
    def open(cls, uri: str, name: str, header: dict, *, rebuild: bool) -> MilvusWriter:
        """Collections built with another embedder, chunking or schema are dropped first (a full rebuild)."""
        header = dict(header, embedder=model_header(header["embedder"]), milvus_schema=SCHEMA)  # float rows here
        milvus = MilvusStore(uri, name, int(header["embedder"]["dim"]))
        stored = milvus.header()
        if stored is not None:  # a header written with an engine tag (#torch-bf16) reads as the model's identity
            stored = dict(stored, embedder=model_header(stored.get("embedder")))
        rebuilt = rebuild or (stored is not None and stored != header)
        if rebuilt:
            milvus.drop()
        milvus.ensure()
        return cls(milvus, header, rebuilt)

    def stored(self) -> dict[str, str]:
        return dict(self._stored)

    def keep(self, doc_id: str) -> None:
        """Nothing to do: the document's rows stay where they are."""

    def put(self, rows: DocRows) -> None:
        self.milvus.write_document(rows)
        self.written = True

    def delete(self, doc_id: str) -> None:
        self.milvus.delete_document(doc_id)
        self.written = True

    def commit(self) -> MilvusIndex:
        self.milvus.set_header(self.header)
        return MilvusIndex(self.milvus)


class MilvusIndex:
    """The answerer's SearchIndex, served by Milvus: every read goes to the server (no local state)."""

    def __init__(self, milvus: MilvusStore) -> None:
        self.milvus = milvus

    def _count(self, collection: str, expr: str = "") -> int:
        rows = self.milvus.client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    @property
    def num_documents(self) -> int:
        return self._count(self.milvus.documents, f"part == 0 and id != {_quote(META_ID)}")

    @property
    def num_chunks(self) -> int:
        return self._count(self.milvus.chunks)

    def document(self, doc_id: str) -> Document | None:
        if doc_id == META_ID:
            return None
        rows = self._document_rows([doc_id], ["part", "title", "sha256", "text", "pages"]).get(doc_id)
        if not rows:
            return None
        pages = tuple(p for row in rows for p in json.loads(row["pages"]))
        return Document(doc_id, rows[0]["title"], "".join(row["text"] for row in rows), rows[0]["sha256"], pages)

    def _document_rows(self, doc_ids: list[str], fields: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        expr = f"doc_id in [{', '.join(_quote(d) for d in doc_ids)}]"
        for row in self.milvus.client.query(self.milvus.documents, filter=expr, output_fields=["doc_id", *fields]):
            found.setdefault(row["doc_id"], []).append(row)
        for rows in found.values():
            rows.sort(key=lambda row: row["part"])
        return found

    def search_hits(self, query: np.ndarray, k: int) -> list[Hit]:
        results = self.milvus.client.search(
            self.milvus.chunks,
            data=[np.asarray(query, dtype=np.float32).tolist()],
            limit=k,
            output_fields=["doc_id", "title", "start", "end", "text", "sparse"],
            search_params={"metric_type": "IP", "params": {"ef": max(64, k)}},
        )[0]
        if not results:
            return []
        ids = [hit["id"] for hit in results]
        sentences: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for row in self.milvus.client.query(
            self.milvus.sentences,
            filter=f"chunk_id in {ids}",
            output_fields=["chunk_id", "position", "start", "end", "text", "vector"],
        ):
            sentences[row["chunk_id"]].append(row)
        documents = self._document_rows(sorted({hit["entity"]["doc_id"] for hit in results}), ["part", "pages"])
        pages = {d: tuple(p for row in rows for p in json.loads(row["pages"])) for d, rows in documents.items()}
        dim = self.milvus.dim
        hits = []
        for hit in results:
            entity = hit["entity"]
            rows = sorted(sentences[hit["id"]], key=lambda row: row["position"])
            both = np.array([row["vector"] for row in rows], dtype=np.float32).reshape(-1, 2 * dim)
            sparse = np.frombuffer(base64.b64decode(entity["sparse"]), dtype=np.float32)
            hits.append(
                Hit(
                    score=float(hit["distance"]),
                    chunk=Chunk(entity["doc_id"], int(entity["start"]), int(entity["end"]), entity["text"]),
                    title=entity["title"],
                    sentences=[Span(int(r["start"]), int(r["end"]), r["text"]) for r in rows],
                    sentence_vectors=np.ascontiguousarray(both[:, :dim]),
                    context_vectors=np.ascontiguousarray(both[:, dim:]),
                    sparse=sparse if len(sparse) else None,
                    pages=pages.get(entity["doc_id"], ()),
                )
            )
        return hits


def open_index(uri: str, name: str, dim: int) -> MilvusIndex:
    """The live Milvus index for serving (collections are created empty when missing)."""
    milvus = MilvusStore(uri, name, dim)
    milvus.ensure()
    return MilvusIndex(milvus)
