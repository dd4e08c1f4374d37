"""What every store shares: the rows a document is written as, the hits a search returns, and the two
interfaces (``StoreWriter`` for the indexer, ``SearchIndex`` for the answerer).

Kept apart from the backends so the answerer and the indexer import no backend (FAISS sets thread
counts, pymilvus opens connections) just to name a type.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa import languages as langs
from qa.collections import Scope
from qa.model_identity import model_identity
from qa.models import Chunk, Document, Span

if TYPE_CHECKING:
    from qa.centering import Stats


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with what the answerer needs to pick its answering sentence."""

    score: float
    chunk: Chunk
    title: str
    sentences: list[Span]
    sentence_vectors: np.ndarray  # (len(sentences), dim): each sentence alone
    context_vectors: np.ndarray  # (len(sentences), dim): each sentence read after a denial before it, else alone
    sparse: np.ndarray | None = None  # (2 * SPARSE_K,): the chunk's latent terms (qa.embedding.sparse_scores)
    pages: tuple[int, ...] = ()  # the document's page start offsets (Document.pages), for Citation.page
    language: str = ""  # the chunk's language as stored ("" unknown): which correction qa.ranking applies
    vector: np.ndarray | None = None  # (dim,): the chunk vector as embedded, which qa.ranking corrects


@dataclass(frozen=True)
class Scored:
    """A searched chunk before it is read: what the ranking stage needs to correct its score, no more."""

    id: int  # unique among the store's chunks
    score: float  # raw inner product with the query
    language: str  # "" unknown
    vector: np.ndarray  # (dim,): the chunk vector as embedded
    ref: Any = None  # the store's own handle, to read the hit with (``SearchIndex.hits``)


class SearchIndex(Protocol):
    """What the answerer reads; implemented by the local FAISS generation and by Milvus.

    A store returns rows as embedded and their raw inner products with the query; the language correction
    is applied once, for every store, by the ranking stage (qa.ranking), from the statistics the store keeps.
    """

    @property
    def num_documents(self) -> int: ...

    @property
    def num_chunks(self) -> int: ...

    def document(self, doc_id: str) -> Document | None: ...

    def search_hits(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Hit]:
        """The k rows of the highest raw inner product, best first; only rows of ``language`` when given, and
        only rows of documents in ``collections`` (qa.collections; None: every one). Filtered inside the
        search, never after it: a small collection in a large corpus gets its own true top k."""
        ...

    def search_rows(
        self, query: np.ndarray, k: int, language: str | None = None, collections: Scope = None
    ) -> list[Scored]:
        """As ``search_hits``, without reading the chunks' texts and sentences (the ranking stage reads only
        the k it keeps of the candidates it corrects)."""
        ...

    def search_groups(
        self, query: np.ndarray, wanted: Mapping[str | None, int], collections: Scope = None
    ) -> dict[str | None, list[Scored]]:
        """``search_rows`` for each group (None: every row; else a language) and its k, inside ``collections``,
        as one round: a remote store (Milvus) sends the searches together instead of one round trip after
        another."""
        ...

    def hits(self, rows: list[Scored]) -> list[Hit]:
        """The chunks of ``rows``, in their order, each with its row's score."""
        ...

    def language_stats(self, collections: Scope = None) -> Stats | None:
        """Per-language sums and counts of the stored chunk vectors of ``collections`` (None: every one),
        current with every write (None: not kept). A scope's own statistics: the passages a search competes
        with are the scope's, so a collection is corrected as an index holding it alone would be."""
        ...


@dataclass
class DocRows:
    """One document as a store writes it: its chunks and sentences with their vectors."""

    doc: Document
    chunks: list[tuple[int, int, int, int]]  # start, end, first sentence, sentence end (rows of ``sentences``)
    sentences: list[tuple[int, int]]  # start, end in doc.text
    vectors: np.ndarray  # (len(chunks), dim) chunk vectors
    sentence_vectors: np.ndarray  # (len(sentences), dim): each sentence alone
    context_vectors: np.ndarray  # (len(sentences), dim): each sentence after a denial before it, else alone
    sparse: np.ndarray  # (len(chunks), 2 * SPARSE_K) latent terms (ids then weights), or (len(chunks), 0)
    languages: tuple[str, ...] = ()  # each chunk's language when already known ("" unknown); () detects anew


def chunk_languages(rows: DocRows) -> tuple[str, ...]:
    """Each chunk's language ("" unknown), as every store records it: known ones kept, the others detected."""
    if rows.languages:
        return rows.languages
    return tuple(langs.detect(rows.doc.text[s:e]) or "" for s, e, _, _ in rows.chunks)


class StoreWriter(Protocol):
    """How the indexer changes a store. It decides what changes; a writer only applies it.

    Calls arrive as: ``stored()`` once, then ``keep_others`` (a change of named documents) or ``keep`` for each
    unchanged document, ``put``/``release``/``delete`` per document, then
    ``commit()``. A writer writes for one origin (qa.origins): the local store has one, its seeds folder;
    a shared store (Milvus) records which origins hold each document, so that a folder sync removes only
    what its own folder held and never an upload or another replica's document.
    A writer raises ``qa.errors.StoreUnavailable`` when the store itself fails (never for one document):
    the indexer then stops the whole build, so nothing is reported failed or deleted because of it.
    """

    rebuilt: bool  # nothing usable was stored before (or a rebuild was asked): every document is new
    carried: Sequence[Document]  # documents with no file (a shared store's uploads) read before a rebuild
    written: bool  # set by commit(): whether the store changed

    def stored(self) -> Mapping[str, str]:
        """Document id -> content hash of every document the store holds now (read-only)."""
        ...

    def owned(self) -> AbstractSet[str]:
        """The documents this writer's origin holds (the local store: every document)."""
        ...

    def others(self) -> dict[str, frozenset[str]]:
        """Stored documents that other origins hold too, with those origins (the local store: none)."""
        ...

    def keep(self, doc_id: str) -> None:
        """The document is unchanged: keep its rows as they are (this origin holds it)."""
        ...

    def keep_others(self, named: Collection[str]) -> None:
        """Keep every stored document outside ``named`` as it is (a change that names its documents, an
        upload's: no ``keep`` call per unchanged document, so it costs what it changes)."""
        ...

    def put(self, rows: DocRows) -> None:
        """Add the document, or replace every row of its previous version."""
        ...

    def release(self, doc_id: str) -> bool:
        """This origin no longer holds the document; True when no origin does (then it is deleted)."""
        ...

    def delete(self, doc_id: str) -> None:
        """Remove every row of the document."""
        ...

    def commit(self) -> SearchIndex:
        """Make the changes visible; returns the index to serve from now on."""
        ...


def model_header(embedder: dict[str, Any] | None) -> dict[str, Any]:
    """A header's ``embedder`` entry without ``fine``, which only says how the local store packs sentence rows
    (qa.stores.rows), and with the model's identity for its name: what decides whether stored rows can be re-used
    is the model, not its packing nor the engine and precision that ran it (qa.model_identity)."""
    header = {key: value for key, value in (embedder or {}).items() if key != "fine"}
    if isinstance(header.get("name"), str):
        header["name"] = model_identity(header["name"])
    return header
