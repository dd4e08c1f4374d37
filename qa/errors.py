"""Domain errors: raised by the library, translated to HTTP/CLI/Slack messages at each edge."""

from __future__ import annotations


class QAError(Exception):
    """Base class: ``str(error)`` is a message fit to show a user."""


class IndexMissing(QAError):
    """No index has been built yet, or the corpus is empty."""


class IndexCorrupt(QAError):
    """An index file is truncated or does not match its checksum."""


class IndexMismatch(QAError):
    """The index was built with another embedder or chunking than configured."""


class BadDocument(QAError):
    """A file in the seeds folder could not be read; the message names the reason."""


class EmbedderUnavailable(QAError):
    """The configured embedding model cannot run on this machine."""


class DocumentNotFound(QAError):
    """An unknown document id (or one that tries to leave the corpus)."""


class StoreUnavailable(QAError):
    """The store itself failed (Milvus unreachable, a write refused): the whole build stops, no file is blamed."""


class IndexOutdated(IndexCorrupt):
    """An index written in an older format: readable by nothing here, rebuilt by ``qa index``."""


class Conflict(QAError):
    """A change that would take what is not the caller's to take: nothing is touched (HTTP 409)."""


class NameConflict(Conflict):
    """An upload's name is taken by a folder (or runs through a file)."""


class DocumentConflict(Conflict):
    """A change that would take a document from the one who holds it (another replica's folder)."""
