"""Milvus as the scale-out store (``QA_STORE=milvus``): the same SearchIndex the answerer reads, no local state.

Four collections per ``QA_MILVUS_COLLECTION`` prefix, all with strong consistency (a read sees every
write acknowledged before it) for the writers' reads; a served index reads at session consistency (``READ``:
this process's writes at once, another replica's after Milvus's time tick, docs/replicas.md):

- ``<name>_chunks``: one row per chunk: the chunk vector (HNSW, inner product) and its document id,
  title, offsets and text, so a search returns everything a citation needs in one round trip;
- ``<name>_sentences``: one row per sentence of a chunk: its offsets and text, and one vector field
  holding ``[sentence alone, sentence in context]`` (Milvus 2.3 allows one vector field per collection);
- ``<name>_documents``: document texts in parts (a VARCHAR holds at most 65,535 bytes) with the page
  starts that fall in each part, their content hashes (for incremental re-indexing) and one metadata row
  with the embedder, chunking and schema version (a change forces a rebuild, as with FAISS; the header is
  written before any row, so rows of an interrupted rebuild are never taken for another model's); and one row
  per collection and language (``part`` -1) with the sum and count of its chunk vectors, updated with every
  batch of puts and delete, from which the ranking stage (qa.ranking) corrects hits for their language as it
  does FAISS's (a search inside some collections by theirs alone);
- ``<name>_holders``: which origins hold each document (an upload, or a folder on a named host: qa.origins),
  one row per (origin, document), so replicas over one Milvus never remove what they did not add.

Chunk and document rows carry their document's ``collection`` (qa.collections.of), so a search inside some
collections filters inside Milvus's search (``collection in [...]``) and gets their own top k, and a listing
asks for one page of one scope.

Writes go in batches of documents (one write per Milvus collection, one update of the statistics of the
document collections they touch): a new version's rows are written beside the old ones, which are deleted only
then (row ids carry the content hash), so a crash never leaves a document missing, only briefly doubled, and
the next ``qa index`` finishes the job. Every VARCHAR is cut to its limit on a character boundary. The same
code serves a Milvus cluster by URI.
Every pymilvus and gRPC error surfaces as ``StoreUnavailable``: the store failed, not a document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np

from qa import collections as colls
from qa.centering import Stats, combine
from qa.collections import Scope
from qa.embedding import SPARSE_K
from qa.errors import StoreUnavailable
from qa.models import Chunk, Document, Span
from qa.stores.base import DocRows, Hit, Scored, chunk_languages, model_header

META_ID = "\x00meta"  # the documents row that holds the embedder/chunking header
STATS_ID = "\x00centering"  # doc_id of the statistics rows (part STATS_PART, id STATS_ID + collection, language)
STATS_PART = -1  # never 0: every "part == 0" query (hashes, counts) leaves them out
# 2: page starts in the documents collection; 3: holders, content hashes on every row, each chunk's language and
# per-language statistics; 4: each chunk's and document's collection, statistics per collection, page counts
SCHEMA = 4
LANGUAGE_MAX = 32
COLLECTION_MAX = 64  # qa.collections.NAME
TEXT_PART = 16_000  # characters per document part: at most 64,000 UTF-8 bytes, under VARCHAR's 65,535
VARCHAR_MAX = 65_535
ID_MAX = 4096  # document ids, titles and origins
SPARSE_MAX = 4 * 2 * SPARSE_K * 4 // 3 + 4  # base64 of 2 * SPARSE_K float32
HNSW = {"M": 32, "efConstruction": 128}  # as qa.vector_index's HNSW
CONSISTENCY = "Strong"  # the collections' own level: every write-side read (what is stored, who holds it)
# a served index's reads (a reply's searches and hits, a document's text, the counts; the listing and holders
# stay strong): this process's own writes are seen at once (pymilvus keeps each collection's last write
# timestamp per process), another replica's once Milvus has applied them (its time tick: 200 ms); Strong
# made every read wait for the next tick (docs/replicas.md)
READ = "Session"
STATS_FOR_S = 2.0  # how long a served index re-uses a scope's statistics it read (its own writes make a new one)
STATS_SCOPES = 256  # scopes whose statistics a served index keeps at most (callers' read scopes: a few)
WRITE_BATCH = 2000  # sentence rows a writer gathers before it writes them, with their documents' other rows
DELETE_BATCH = 100  # documents per delete expression
QUERY_WINDOW = 16_384  # Milvus answers a query's offset + limit up to this many rows
TIMEOUT_S = 30
Rows = tuple[np.ndarray, list[str]]  # chunk vectors and each one's language


def _quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


def _names(collections: frozenset[str]) -> str:
    """A Milvus list literal of collection names, each quoted (names are checked, and escaped all the same)."""
    return "[" + ", ".join(_quote(name) for name in sorted(collections)) + "]"


def _stats_id(collection: str, language: str) -> str:
    return f"{STATS_ID}{collection}\x00{language}"


def _row_id(*parts: object) -> int:
    """Stable signed 64-bit id of a row, from its document, version and position."""
    digest = hashlib.sha1("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holder_id(origin: str, doc_id: str) -> str:
    return hashlib.sha1(f"{origin}\x00{doc_id}".encode()).hexdigest()


def fit(value: str, limit: int) -> str:
    """``value`` cut to at most ``limit`` UTF-8 bytes, never inside a character (Milvus counts VARCHARs in bytes)."""
    data = value.encode()
    return value if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


@cache
def _pool() -> ThreadPoolExecutor:
    """The process's threads for reads sent together (one pool for every index a server swaps in)."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="qa-milvus")


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
        self.holders = f"{name}_holders"

    # -- schema ---------------------------------------------------------------------------------------
    def ensure(self) -> None:
        from pymilvus import DataType

        existing = set(self.client.list_collections())
        specs = {
            self.chunks: (
                [
                    ("id", DataType.INT64, {"is_primary": True}),
                    ("doc_id", DataType.VARCHAR, {"max_length": ID_MAX}),
                    ("sha256", DataType.VARCHAR, {"max_length": 64}),
                    ("title", DataType.VARCHAR, {"max_length": ID_MAX}),
                    ("start", DataType.INT64, {}),
                    ("end", DataType.INT64, {}),
                    ("text", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),
                    # latent terms, base64 float32 (Milvus 2.3 has no sparse vectors and one vector field)
                    ("sparse", DataType.VARCHAR, {"max_length": SPARSE_MAX}),
                    ("language", DataType.VARCHAR, {"max_length": LANGUAGE_MAX}),  # qa.stores.base.chunk_languages
                    ("collection", DataType.VARCHAR, {"max_length": COLLECTION_MAX}),  # qa.collections.of
                    ("vector", DataType.FLOAT_VECTOR, {"dim": self.dim}),
                ],
                ("HNSW", HNSW),
            ),
            self.sentences: (
                [
                    ("id", DataType.INT64, {"is_primary": True}),
                    ("chunk_id", DataType.INT64, {}),
                    ("doc_id", DataType.VARCHAR, {"max_length": ID_MAX}),
                    ("sha256", DataType.VARCHAR, {"max_length": 64}),
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
                    ("id", DataType.VARCHAR, {"is_primary": True, "max_length": ID_MAX + 32}),
                    ("doc_id", DataType.VARCHAR, {"max_length": ID_MAX}),
                    ("part", DataType.INT64, {}),
                    ("title", DataType.VARCHAR, {"max_length": ID_MAX}),
                    ("sha256", DataType.VARCHAR, {"max_length": 64}),
                    ("text", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),
                    ("pages", DataType.VARCHAR, {"max_length": VARCHAR_MAX}),  # JSON: page starts in this part
                    ("page_count", DataType.INT64, {}),  # the document's pages (every part), for listings
                    ("collection", DataType.VARCHAR, {"max_length": COLLECTION_MAX}),
                    ("vector", DataType.FLOAT_VECTOR, {"dim": 2}),  # Milvus requires one vector field
                ],
                ("FLAT", {}),
            ),
            self.holders: (
                [
                    ("id", DataType.VARCHAR, {"is_primary": True, "max_length": 40}),  # sha1 of origin and doc id
                    ("doc_id", DataType.VARCHAR, {"max_length": ID_MAX}),
                    ("origin", DataType.VARCHAR, {"max_length": ID_MAX}),
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
            try:
                self.client.create_collection(
                    name, schema=schema, index_params=index_params, consistency_level=CONSISTENCY
                )
            except StoreUnavailable:
                if not self.client.has_collection(name):  # else another writer created it meanwhile
                    raise

    def has_documents(self) -> bool:
        return self.client.has_collection(self.documents) and bool(self.document_hashes())

    def drop(self) -> None:
        for name in (self.chunks, self.sentences, self.documents, self.holders):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    # -- metadata -------------------------------------------------------------------------------------
    def header(self) -> dict | None:
        if not self.client.has_collection(self.documents):
            return None
        rows = self.client.query(self.documents, filter=f"id == {_quote(META_ID)}", output_fields=["text"])
        return json.loads(rows[0]["text"]) if rows else None

    def set_header(self, header: dict) -> None:
        row = {"id": META_ID, "doc_id": META_ID, "part": 0, "title": "", "sha256": "", "pages": "[]", "page_count": 0,
               "collection": ""}  # fmt: skip
        self.client.upsert(self.documents, [{**row, "text": json.dumps(header), "vector": [0.0, 0.0]}])

    def document_hashes(self) -> dict[str, str]:
        rows = self.client.query(
            self.documents, filter=f"part == 0 and id != {_quote(META_ID)}", output_fields=["doc_id", "sha256"]
        )
        return {row["doc_id"]: row["sha256"] for row in rows}

    def held_by(self, doc_id: str | None = None) -> dict[str, set[str]]:
        """Document id -> the origins that hold it (of one document when ``doc_id`` is given)."""
        expr = f"doc_id == {_quote(doc_id)}" if doc_id is not None else 'id != ""'
        found: dict[str, set[str]] = {}
        for row in self.client.query(self.holders, filter=expr, output_fields=["doc_id", "origin"]):
            found.setdefault(row["doc_id"], set()).add(row["origin"])
        return found

    def documents_held_by(self, origin: str) -> list[Document]:
        """The documents an origin holds, read whole (texts, titles, pages), in id order."""
        if not self.client.has_collection(self.holders):  # collections of an older schema
            return []
        index = MilvusIndex(self)
        found = (index.document(doc_id) for doc_id, origins in sorted(self.held_by().items()) if origin in origins)
        return [doc for doc in found if doc is not None]

    def hold(self, doc_ids: list[str], origin: str) -> None:
        """The origin holds these documents (one write for all)."""
        rows = [
            {"id": _holder_id(origin, doc_id), "doc_id": doc_id, "origin": fit(origin, ID_MAX), "vector": [0.0, 0.0]}
            for doc_id in doc_ids
        ]
        if rows:
            self.client.upsert(self.holders, rows)

    def let_go(self, doc_id: str, origin: str) -> None:
        self.client.delete(self.holders, filter=f"id == {_quote(_holder_id(origin, doc_id))}")

    # -- language statistics ----------------------------------------------------------------------------
    def collection_stats(self, collections: Scope = None, **read: str) -> dict[str, Stats]:
        """Collection -> the per-language sums and counts of its chunk vectors (qa.centering.Stats), of every
        collection or of ``collections``; ``read`` may name a ``consistency_level`` (a served index's)."""
        expr = f"part == {STATS_PART}"
        if collections is not None:
            expr += f" and collection in {_names(collections)}"
        found: dict[str, Stats] = {}
        for row in self.client.query(self.documents, filter=expr, output_fields=["text"], **read):
            entry = json.loads(row["text"])
            stats = found.setdefault(entry["collection"], Stats(dim=self.dim))
            stats.sums[entry["language"]] = np.frombuffer(base64.b64decode(entry["sum"]), np.float64).copy()
            stats.counts[entry["language"]] = int(entry["count"])
        return found

    def language_stats(self, collections: Scope = None, **read: str) -> Stats:
        """The per-language sums and counts of every chunk vector stored (of ``collections`` when given)."""
        return combine(list(self.collection_stats(collections, **read).values()), self.dim)

    def _stored_vectors(self, expr: str) -> dict[str, Rows]:
        """Chunk vectors and languages as stored, by collection, of the rows ``expr`` selects (what their removal
        takes off)."""
        rows = self.client.query(self.chunks, filter=expr, output_fields=["vector", "language", "collection"])
        found: dict[str, tuple[list, list[str]]] = {}
        for row in rows:
            vectors, languages = found.setdefault(row["collection"], ([], []))
            vectors.append(row["vector"])
            languages.append(row["language"])
        return {name: (self._matrix(vectors), languages) for name, (vectors, languages) in found.items()}

    def _matrix(self, vectors: list) -> np.ndarray:
        return np.array(vectors, np.float64).reshape(-1, self.dim)

    def _update_stats(self, removed: Mapping[str, Rows], added: Mapping[str, Rows]) -> None:
        """Take documents' old rows off their collections' statistics and count their new ones in, by language
        (``removed``, ``added``: collection -> rows): one read of the touched collections' statistics, one
        delete and one write for them all."""
        none: Rows = (np.empty((0, self.dim)), [])
        touched = sorted({name for side in (removed, added) for name, (_, langs) in side.items() if langs})
        if not touched:
            return
        current = self.collection_stats(frozenset(touched))
        gone, kept = [], []
        for name in touched:
            stats = current.get(name, Stats(dim=self.dim))
            stats.remove(*removed.get(name, none))
            stats.add(*added.get(name, none))
            for lang in sorted(set(removed.get(name, none)[1]) | set(added.get(name, none)[1])):
                if lang in stats.counts:
                    kept.append(self._stats_row(name, lang, stats))
                else:
                    gone.append(_quote(_stats_id(name, lang)))
        if gone:
            self.client.delete(self.documents, filter=f"id in [{', '.join(gone)}]")
        if kept:
            self.client.upsert(self.documents, kept)

    def _stats_row(self, collection: str, language: str, stats: Stats) -> dict[str, Any]:
        entry = {
            "collection": collection,
            "language": language,
            "count": stats.counts[language],
            "sum": base64.b64encode(np.asarray(stats.sums[language], np.float64).tobytes()).decode(),
        }
        return {"id": _stats_id(collection, language), "doc_id": STATS_ID, "part": STATS_PART, "title": "",
                "sha256": "", "text": json.dumps(entry), "pages": "[]", "page_count": 0, "collection": collection,
                "vector": [0.0, 0.0]}  # fmt: skip

    def check_stats(self) -> None:
        """Recount the statistics from every stored chunk when their count disagrees with the chunks' (a write
        that crashed between its rows and its statistics), so the correction never drifts for good."""
        stats = self.language_stats()
        stored = self.client.query(self.chunks, filter="", output_fields=["count(*)"])
        if stats.total == (int(stored[0]["count(*)"]) if stored else 0):
            return
        fresh: dict[str, Stats] = {}
        iterator = self.client.query_iterator(
            self.chunks, batch_size=1000, filter="", output_fields=["vector", "language", "collection"]
        )
        while batch := iterator.next():
            for row in batch:
                part = fresh.setdefault(row["collection"], Stats(dim=self.dim))
                part.add(np.array([row["vector"]], np.float64), [row["language"]])
        iterator.close()
        self.client.delete(self.documents, filter=f"part == {STATS_PART}")
        rows = [self._stats_row(name, lang, part) for name, part in fresh.items() for lang in part.counts]
        if rows:
            self.client.upsert(self.documents, rows)

    # -- writes ---------------------------------------------------------------------------------------
    def delete_document(self, doc_id: str, *, except_sha256: str | None = None) -> None:
        """Every row of the document (and who held it), or only the rows of versions but ``except_sha256``;
        the language statistics lose what the deleted chunk rows had added."""
        expr = f"doc_id == {_quote(doc_id)}"
        if except_sha256 is not None:
            expr += f" and sha256 != {_quote(except_sha256)}"
        removed = self._stored_vectors(expr)
        for name in (self.chunks, self.sentences, self.documents):
            self.client.delete(name, filter=expr)
        self._update_stats(removed, {})
        if except_sha256 is None:  # last: rows nobody holds would never be removed by anyone
            self.client.delete(self.holders, filter=f"doc_id == {_quote(doc_id)}")

    def write_documents(self, batch: list[DocRows], stored: dict[str, str]) -> None:
        """Write documents' rows beside their earlier versions' (``stored``: id -> hash of what is there now),
        then delete those: never a moment without a document. One write per collection for the whole batch,
        and one update of the statistics of the collections it touches."""
        chunk_rows: list[dict[str, Any]] = []
        sentence_rows: list[dict[str, Any]] = []
        document_rows: list[dict[str, Any]] = []
        added: dict[str, tuple[list[np.ndarray], list[str]]] = {}  # collection -> its chunk vectors, languages
        for rows in batch:
            chunks, sentences, documents, langs = self._rows(rows)
            chunk_rows += chunks
            sentence_rows += sentences
            document_rows += documents
            vectors, languages = added.setdefault(colls.of(rows.doc.id), ([], []))
            vectors.append(self._matrix(rows.vectors))
            languages += langs
        new = [rows.doc.id for rows in batch if rows.doc.id not in stored]
        for ids in _slices(new, DELETE_BATCH):  # rows a crashed write of another version left: never counted
            expr = f"doc_id in [{', '.join(map(_quote, ids))}]"
            for name in (self.chunks, self.sentences):
                self.client.delete(name, filter=expr)
        # upserts: the ids are the version's, so a write repeated after a crash replaces its own rows. The
        # documents rows go last (part 0 carries the hash the next incremental run compares), then the
        # earlier versions' rows go
        for name, rows in ((self.chunks, chunk_rows), (self.sentences, sentence_rows), (self.documents, document_rows)):
            for part in _slices(rows, 1000):
                self.client.upsert(name, part)
        replaced = [(rows.doc.id, rows.doc.sha256) for rows in batch if rows.doc.id in stored]
        earlier = [
            " or ".join(f"(doc_id == {_quote(d)} and sha256 != {_quote(sha)})" for d, sha in part)
            for part in _slices(replaced, DELETE_BATCH)
        ]
        removed: dict[str, tuple[list[np.ndarray], list[str]]] = {}
        for expr in earlier:
            for name, (vectors, languages) in self._stored_vectors(expr).items():
                gathered = removed.setdefault(name, ([], []))
                gathered[0].append(vectors)
                gathered[1].extend(languages)
        self._update_stats(
            {name: (np.concatenate(vectors), languages) for name, (vectors, languages) in removed.items()},
            {name: (np.concatenate(vectors), languages) for name, (vectors, languages) in added.items()},
        )
        for expr in earlier:
            for name in (self.chunks, self.sentences, self.documents):
                self.client.delete(name, filter=expr)

    def _rows(self, rows: DocRows) -> tuple[list[dict], list[dict], list[dict], list[str]]:
        """A document's chunk, sentence and document rows, and each chunk's language."""
        doc = rows.doc
        title = fit(doc.title, ID_MAX)
        collection = colls.of(doc.id)
        languages = chunk_languages(rows)
        chunk_rows, sentence_rows = [], []
        for position, (start, end, first, last) in enumerate(rows.chunks):
            chunk_id = _row_id(doc.id, doc.sha256, position)
            chunk_rows.append(
                {
                    "id": chunk_id,
                    "doc_id": doc.id,
                    "sha256": doc.sha256,
                    "title": title,
                    "start": start,
                    "end": end,
                    "text": fit(doc.text[start:end], VARCHAR_MAX),
                    "sparse": base64.b64encode(rows.sparse[position].astype(np.float32).tobytes()).decode(),
                    "language": languages[position],
                    "collection": collection,
                    "vector": rows.vectors[position].tolist(),
                }
            )
            for sentence in range(first, last):
                s, e = rows.sentences[sentence]
                both = np.concatenate([rows.sentence_vectors[sentence], rows.context_vectors[sentence]])
                sentence_rows.append(
                    {
                        "id": _row_id(doc.id, doc.sha256, position, sentence),
                        "chunk_id": chunk_id,
                        "doc_id": doc.id,
                        "sha256": doc.sha256,
                        "position": sentence - first,
                        "start": s,
                        "end": e,
                        "text": fit(doc.text[s:e], VARCHAR_MAX),
                        "vector": both.tolist(),
                    }
                )
        starts = range(0, max(len(doc.text), 1), TEXT_PART)
        document_rows = [
            {
                "id": f"{doc.id}\x00{part}",
                "doc_id": doc.id,
                "part": part,
                "title": title,
                "sha256": doc.sha256,
                "text": doc.text[at : at + TEXT_PART],
                "pages": json.dumps([p for p in doc.pages if at <= p < at + TEXT_PART]),
                "page_count": len(doc.pages),
                "collection": collection,
                "vector": [0.0, 0.0],
            }
            for part, at in enumerate(starts)
        ]
        return chunk_rows, sentence_rows, document_rows, list(languages)


def _slices(items: list, size: int) -> list[list]:
    return [items[at : at + size] for at in range(0, len(items), size)]


class MilvusWriter:
    """The StoreWriter of Milvus: puts are gathered and written together (``WRITE_BATCH`` sentence rows, and at
    every delete, release and commit), each collection in one write, the language statistics once.

    Several writers (replicas, `qa index` runs on other hosts) share one Milvus; each writes for one origin
    and holds the documents it put or kept, so a folder sync removes only what its own folder held.
    """

    def __init__(self, milvus: MilvusStore, header: dict, rebuilt: bool, origin: str) -> None:
        self.milvus = milvus
        self.header = header
        self.origin = origin
        self.written = False
        self._stored = milvus.document_hashes()
        self._holders = milvus.held_by()
        self.carried: list[Document] = []
        self.rebuilt = rebuilt or not self._stored
        self._pending: list[DocRows] = []
        self._holds: list[str] = []  # documents this origin holds from now on, written with the next batch

    @classmethod
    def open(
        cls, uri: str, name: str, header: dict, *, rebuild: bool, origin: str, carry: str | None = None
    ) -> MilvusWriter:
        """Collections built with another embedder, chunking or schema are dropped first (a full rebuild); the
        documents that ``carry`` held are read before, into ``carried`` (uploads have no file to index again).

        The header is written before any row: a rebuild that stops half-way leaves rows the header describes,
        so a later run with yet another model rebuilds them too instead of keeping them as its own.
        """
        header = dict(header, embedder=model_header(header["embedder"]), milvus_schema=SCHEMA)  # float rows here
        milvus = MilvusStore(uri, name, int(header["embedder"]["dim"]))
        stored = milvus.header()
        if stored is not None:  # a header written with an engine tag (#torch-bf16) reads as the model's identity
            stored = dict(stored, embedder=model_header(stored.get("embedder")))
        fresh = stored is None and not milvus.has_documents()  # nothing to drop: writers may start side by side
        rebuilt = rebuild or (stored != header and not fresh)
        carried = milvus.documents_held_by(carry) if rebuilt and carry else []
        if rebuilt:
            milvus.drop()
        milvus.ensure()
        if rebuilt or fresh:
            milvus.set_header(header)
        writer = cls(milvus, header, rebuilt, origin)
        writer.carried = carried
        return writer

    def stored(self) -> dict[str, str]:
        return dict(self._stored)

    def owned(self) -> set[str]:
        held = {doc_id for doc_id, origins in self._holders.items() if self.origin in origins}
        return held | set(self._holds)  # and what this origin holds from its next write on

    def others(self) -> dict[str, frozenset[str]]:
        """Documents held by other origins (only those whose rows are stored), with those origins."""
        return {
            doc_id: frozenset(origins - {self.origin})
            for doc_id, origins in self._holders.items()
            if origins - {self.origin} and doc_id in self._stored
        }

    def keep(self, doc_id: str) -> None:
        """The rows stay as they are; this origin holds the document from now on (another may have put it)."""
        if self.origin not in self._holders.get(doc_id, set()):
            self._holds.append(doc_id)

    def keep_others(self, named: Collection[str]) -> None:
        """As ``keep`` for each stored document outside ``named`` (this origin holds them all)."""
        for doc_id in self._stored.keys() - set(named):
            self.keep(doc_id)

    def put(self, rows: DocRows) -> None:
        if self.origin not in self._holders.get(rows.doc.id, set()):
            self._holds.append(rows.doc.id)
        self._pending.append(rows)
        if sum(len(pending.sentences) for pending in self._pending) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        """The gathered holds and rows, written: the holds first (rows nobody holds would never be removed)."""
        holds, self._holds = list(dict.fromkeys(self._holds)), []
        batch, self._pending = self._pending, []
        self.milvus.hold(holds, self.origin)
        for doc_id in holds:
            self._holders.setdefault(doc_id, set()).add(self.origin)
        if batch:
            self.milvus.write_documents(batch, self._stored)
            self._stored.update((rows.doc.id, rows.doc.sha256) for rows in batch)
            self.written = True

    def release(self, doc_id: str) -> bool:
        self._flush()
        self.milvus.let_go(doc_id, self.origin)
        self._holders.get(doc_id, set()).discard(self.origin)
        return not self.milvus.held_by(doc_id)

    def delete(self, doc_id: str) -> None:
        self._flush()
        self.milvus.delete_document(doc_id)
        self._stored.pop(doc_id, None)
        self._holders.pop(doc_id, None)
        self.written = True

    def commit(self) -> MilvusIndex:
        self._flush()
        self.milvus.check_stats()
        self.milvus.set_header(self.header)
        return MilvusIndex(self.milvus)


class MilvusIndex:
    """The answerer's SearchIndex, served by Milvus: every read goes to the server (no local state but the
    language statistics, re-read after ``STATS_FOR_S``), at ``READ`` consistency; the searches of one ranking
    round and the reads of the kept hits are sent together, each on a thread of its own."""

    def __init__(self, milvus: MilvusStore) -> None:
        self.milvus = milvus
        self._stats: dict[Scope, tuple[float, Stats]] = {}  # scope -> when read, its statistics

    def _count(self, collection: str, expr: str = "", level: str = READ) -> int:
        rows = self.milvus.client.query(collection, filter=expr, output_fields=["count(*)"], consistency_level=level)
        return int(rows[0]["count(*)"]) if rows else 0

    @property
    def num_documents(self) -> int:
        return self._count(self.milvus.documents, f"part == 0 and id != {_quote(META_ID)}")

    @property
    def num_chunks(self) -> int:
        return self._count(self.milvus.chunks)

    def document_ids(self) -> list[str]:
        return sorted(self.milvus.document_hashes())

    def document_page(
        self, offset: int, limit: int, collections: Scope = None
    ) -> tuple[list[tuple[str, str, int]], int]:
        """(id, title, pages) of documents ``offset .. offset+limit`` in id order (of ``collections`` when given),
        and how many there are in all: one query for the page (the documents' first parts, whose primary keys
        sort as their ids) and one count, whatever the corpus's size; no text is read."""
        if collections is not None and not collections:
            return [], 0
        expr = f"part == 0 and id != {_quote(META_ID)}"
        if collections is not None:
            expr += f" and collection in {_names(collections)}"
        total = self._count(self.milvus.documents, expr, CONSISTENCY)  # as strong as the page it counts
        if offset >= total:
            return [], total
        if offset + limit <= QUERY_WINDOW:
            rows = self.milvus.client.query(
                self.milvus.documents, filter=expr, output_fields=["doc_id", "title", "page_count"],
                offset=offset, limit=limit,
            )  # fmt: skip
            rows.sort(key=lambda row: row["doc_id"])
        else:  # past Milvus's query window (offset + limit <= 16,384): the scope's ids, then the page's rows
            ids = sorted(row["doc_id"] for row in self.milvus.client.query(
                self.milvus.documents, filter=expr, output_fields=["doc_id"]))[offset : offset + limit]  # fmt: skip
            rows = self.milvus.client.query(
                self.milvus.documents,
                filter=f"part == 0 and doc_id in [{', '.join(_quote(d) for d in ids)}]",
                output_fields=["doc_id", "title", "page_count"],
            )
            rows.sort(key=lambda row: row["doc_id"])
        return [(row["doc_id"], row["title"], int(row["page_count"])) for row in rows], total

    def collection_counts(self) -> dict[str, int]:
        """Collection -> how many documents it holds (one small field of each document's first part)."""
        counts: dict[str, int] = {}
        rows = self.milvus.client.query(
            self.milvus.documents, filter=f"part == 0 and id != {_quote(META_ID)}", output_fields=["collection"]
        )
        for row in rows:
            counts[row["collection"]] = counts.get(row["collection"], 0) + 1
        return counts

    def holders(self, doc_id: str) -> frozenset[str]:
        """The origins that hold a document (qa.origins): an upload, folders of replicas."""
        return frozenset(self.milvus.held_by(doc_id).get(doc_id, set()))

    def document(self, doc_id: str) -> Document | None:
        if doc_id in (META_ID, STATS_ID):
            return None
        rows = self._document_rows([doc_id], ["part", "title", "sha256", "text", "pages"]).get(doc_id)
        if not rows:
            return None
        pages = tuple(p for row in rows for p in json.loads(row["pages"]))
        return Document(doc_id, rows[0]["title"], "".join(row["text"] for row in rows), rows[0]["sha256"], pages)

    def _document_rows(self, doc_ids: list[str], fields: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        expr = f"doc_id in [{', '.join(_quote(d) for d in doc_ids)}]"
        fields = ["doc_id", *fields]
        for row in self.milvus.client.query(
            self.milvus.documents, filter=expr, output_fields=fields, consistency_level=READ
        ):
            found.setdefault(row["doc_id"], []).append(row)
        for rows in found.values():
            rows.sort(key=lambda row: row["part"])
        return found

    def language_stats(self, collections: Scope = None) -> Stats:
        """A scope's statistics, read once per ``STATS_FOR_S`` (a few sums of thousands of rows move little):
        this process's writes make a new index, so they count at once; another replica's within seconds."""
        now = time.monotonic()
        cached = self._stats.get(collections)
        if cached is None or now - cached[0] > STATS_FOR_S:
            if len(self._stats) >= STATS_SCOPES:
                self._stats.clear()
            cached = self._stats[collections] = (now, self.milvus.language_stats(collections, consistency_level=READ))
        return cached[1]

    def search_hits(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Hit]:
        """The k chunks of the highest raw inner product (of one language, of some collections if given);
        qa.ranking corrects them."""
        return self.hits(self.search_rows(query, k, language, collections))

    def search_rows(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Scored]:
        """One search round trip: the chunks' own fields come with it, their sentences only with ``hits``.
        The filters are Milvus's own (applied inside the search), so a small collection gets its true top k."""
        if collections is not None and not collections:
            return []
        terms = [] if language is None else [f"language == {_quote(language)}"]
        if collections is not None:
            terms.append(f"collection in {_names(collections)}")
        results = self.milvus.client.search(
            self.milvus.chunks,
            data=[np.asarray(query, dtype=np.float32).tolist()],
            filter=" and ".join(terms),
            limit=k,
            output_fields=["doc_id", "title", "start", "end", "text", "sparse", "language", "vector"],
            search_params={"metric_type": "IP", "params": {"ef": max(64, k)}},
            consistency_level=READ,
        )[0]
        return [
            Scored(
                hit["id"],
                float(hit["distance"]),
                hit["entity"]["language"],
                np.asarray(hit["entity"]["vector"], np.float32),
                hit["entity"],
            )  # fmt: skip
            for hit in results
        ]

    def search_groups(
        self, query: np.ndarray, wanted: Mapping[str | None, int], collections: Scope = None
    ) -> dict[str | None, list[Scored]]:
        """The groups' searches sent at once (Milvus 2.3 takes one filter per search call), each filtered to
        ``collections`` inside Milvus as ``search_rows`` is."""
        if len(wanted) == 1:
            return {group: self.search_rows(query, k, group, collections) for group, k in wanted.items()}
        futures = {group: _pool().submit(self.search_rows, query, k, group, collections) for group, k in wanted.items()}
        return {group: future.result() for group, future in futures.items()}

    def hits(self, rows: list[Scored]) -> list[Hit]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        sentences: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        reading = _pool().submit(
            self.milvus.client.query,
            self.milvus.sentences,
            filter=f"chunk_id in {ids}",
            output_fields=["chunk_id", "position", "start", "end", "text", "vector"],
            consistency_level=READ,
        )
        documents = self._document_rows(sorted({row.ref["doc_id"] for row in rows}), ["part", "pages"])
        for found in reading.result():
            sentences[found["chunk_id"]].append(found)
        pages = {d: tuple(p for part in parts for p in json.loads(part["pages"])) for d, parts in documents.items()}
        dim = self.milvus.dim
        hits = []
        for row in rows:
            entity = row.ref
            spans = sorted(sentences[row.id], key=lambda found: found["position"])
            both = np.array([found["vector"] for found in spans], dtype=np.float32).reshape(-1, 2 * dim)
            sparse = np.frombuffer(base64.b64decode(entity["sparse"]), dtype=np.float32)
            hits.append(
                Hit(
                    score=row.score,
                    chunk=Chunk(entity["doc_id"], int(entity["start"]), int(entity["end"]), entity["text"]),
                    title=entity["title"],
                    sentences=[Span(int(r["start"]), int(r["end"]), r["text"]) for r in spans],
                    sentence_vectors=np.ascontiguousarray(both[:, :dim]),
                    context_vectors=np.ascontiguousarray(both[:, dim:]),
                    sparse=sparse if len(sparse) else None,
                    pages=pages.get(entity["doc_id"], ()),
                    language=row.language,
                    vector=row.vector,
                )
            )
        return hits


def drop_collections(uri: str, name: str) -> None:
    """Drop the collections of ``name`` (`qa eval --store milvus` drops the one it made)."""
    MilvusStore(uri, name, 0).drop()


def open_index(uri: str, name: str, dim: int) -> MilvusIndex:
    """The live Milvus index for serving (collections are created empty when missing)."""
    milvus = MilvusStore(uri, name, dim)
    milvus.ensure()
    return MilvusIndex(milvus)
