"""Live re-indexing while serving: rebuild in a background thread, then swap the new index in atomically.

Requests keep answering from the index they started with (``Answerer.swap`` only replaces a reference),
so a rebuild never makes a request fail. Triggers (file events, POST /admin/reindex, uploads) that arrive
while a build runs are coalesced into one more build, and the file watcher debounces bursts of events itself.
Each trigger gets a ticket, so a caller (an upload) can wait for the first build that saw its change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.answer import Answerer
from qa.config import Settings
from qa.encode_meter import EncodeMeter
from qa.extract import SUPPORTED

if TYPE_CHECKING:
    from qa.indexer import IndexReport

log = logging.getLogger(__name__)

# While serving, the model is shared with /ask (one call at a time, see qa.embedding): small batches
# let a question slip in between two batches instead of waiting behind a big one.
LIVE_BATCH = 4
DEBOUNCE_MS = 1000


@dataclass
class ReindexStatus:
    """What GET/POST /admin/reindex report (times are Unix seconds)."""

    in_progress: bool = False
    pending: bool = False
    runs: int = 0
    last_trigger: str | None = None
    last_started: float | None = None
    last_finished: float | None = None
    last_seconds: float | None = None
    last_error: str | None = None
    last_report: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None  # the build in progress (see schemas.IndexProgressOut)


@dataclass(frozen=True)
class BuildResult:
    """A finished build as a waiting caller sees it: the report, or why the whole build failed."""

    report: IndexReport | None
    error: str | None


@dataclass(frozen=True)
class BuildTotals:
    """Since the service started (GET /metrics): builds finished well, builds failed, files refused."""

    builds_ok: int
    builds_failed: int
    documents_failed: int


@dataclass
class Reindexer:
    """One worker thread that rebuilds on request; at most one build at a time, bursts coalesced."""

    settings: Settings
    answerer: Callable[[], Answerer]  # read at build time: the app may replace its answerer
    _status: ReindexStatus = field(default_factory=ReindexStatus)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _closed: bool = False
    _tickets: int = 0  # triggers handed out so far
    _covered: int = 0  # every ticket up to this one has been seen by a finished build
    _result: BuildResult | None = None
    _builds_ok: int = 0
    _builds_failed: int = 0
    _documents_failed: int = 0
    meter: EncodeMeter = field(default_factory=EncodeMeter)  # the model's work in every build (/metrics)
    _merger: threading.Thread | None = None  # the background merge of the local store's segments, if running
    _swap_lock: threading.Lock = field(default_factory=threading.Lock)
    _only: set[str] | None = None  # what the pending build is to read: these document ids, or (None) every file

    def request(self, trigger: str, only: Iterable[str] | None = None) -> bool:
        """Ask for a rebuild; True if it starts now, False if it was queued behind the one running."""
        ticket, queued = self._submit(trigger, only)
        return bool(ticket) and not queued

    def submit(self, trigger: str, only: Iterable[str] | None = None) -> int:
        """Ask for a rebuild and get a ticket for :meth:`wait_for` (0 once closed: nothing will run).

        ``only``: the document ids that changed (an upload's, a deletion's); the build then reads those files
        alone (qa.indexer.build_index). Requests coalesced into one build add up their ids; one for the whole
        folder (None) makes it a whole build."""
        return self._submit(trigger, only)[0]

    def _submit(self, trigger: str, only: Iterable[str] | None = None) -> tuple[int, bool]:
        with self._cond:
            if self._closed:
                return 0, False
            queued = self._status.in_progress
            if only is None or (self._status.pending and self._only is None):
                self._only = None
            else:
                self._only = (self._only if self._status.pending and self._only else set()) | set(only)
            self._tickets += 1
            self._status.pending = True
            self._status.last_trigger = trigger
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="qa-reindex", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            ticket = self._tickets
        log.info("re-index requested (%s)%s", trigger, ", queued" if queued else "")
        return ticket, queued

    def wait_for(self, ticket: int, timeout: float | None = None) -> BuildResult | None:
        """The first finished build that started after ``ticket`` was handed out (or a later one).

        None when the service closes first or ``timeout`` passes. A later build's result is as good: it
        saw the change too, and the folder as it is now.
        """
        with self._cond:
            done = self._cond.wait_for(lambda: self._covered >= ticket or self._closed, timeout)
            return self._result if done and self._covered >= ticket else None

    def status(self) -> dict[str, Any]:
        with self._cond:
            status = asdict(self._status)
            status["progress"] = dict(self._status.progress) if self._status.progress else None
            return status

    def progress(self) -> dict[str, Any] | None:
        """The build in progress (files done and to do, current file, failures so far), or None."""
        with self._cond:
            return dict(self._status.progress) if self._status.progress else None

    def totals(self) -> BuildTotals:
        with self._cond:
            return BuildTotals(self._builds_ok, self._builds_failed, self._documents_failed)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no build runs or waits (for tests and the load benchmark)."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._status.in_progress or self._status.pending), timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._merger is not None:  # a merge killed here is harmless: it commits atomically or not at all
            self._merger.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._status.pending or self._closed)
                if self._closed:
                    return
                self._status.pending = False
                self._status.in_progress = True
                self._status.last_started = time.time()
                self._status.progress = _progress(self._status.last_started)
                covering = self._tickets
                only = frozenset(self._only) if self._only is not None else None
                self._only = None
            report, error = self._build(only)
            with self._cond:
                status = self._status
                status.in_progress = False
                status.progress = None
                status.runs += 1
                status.last_finished = time.time()
                status.last_seconds = round(status.last_finished - (status.last_started or status.last_finished), 2)
                status.last_error = error
                status.last_report = _summary(report) if report is not None else status.last_report
                self._covered = covering
                self._result = BuildResult(report, error)
                self._cond.notify_all()

    def _on_progress(self, report: IndexReport, doc_id: str, done: int, total: int) -> None:
        """build_index's progress callback, called after each file (in the build thread)."""
        with self._cond:
            if self._status.progress is not None:
                self._status.progress.update(
                    files_done=done, files_total=total, current_file=doc_id, failed=len(report.failed)
                )

    def _count(self, report: IndexReport, *, failed: bool) -> None:
        with self._cond:
            self._builds_ok += not failed
            self._builds_failed += failed
            self._documents_failed += len(report.failed)

    def _build(self, only: frozenset[str] | None = None) -> tuple[IndexReport | None, str | None]:
        from qa.indexer import IndexReport, build_index

        answerer = self.answerer()
        if self.settings.store != "faiss":  # a shared store's folder sync holds what it keeps: read it whole
            only = None
        settings = self.settings.model_copy(update={"batch_size": min(self.settings.batch_size, LIVE_BATCH)})
        report = IndexReport()
        try:
            report, data = build_index(
                settings,
                embedder=answerer.embedder,
                live=answerer.index,
                progress=lambda doc_id, done, total: self._on_progress(report, doc_id, done, total),
                report=report,
                meter=self.meter,
                only=only,
            )
        except Exception as exc:  # noqa: BLE001 - a failed rebuild keeps the old index serving
            log.exception("re-index failed; still serving the previous index")
            self._count(report, failed=True)
            return None, f"{type(exc).__name__}: {exc}"
        self._count(report, failed=False)
        self._swap(answerer, data)
        self._merge_if_due(data)
        for failure in report.failed:  # `qa serve` indexes in the background: its log is where these show
            log.warning("not indexed: %s: %s", failure.path, failure.reason)
        log.info(
            "re-indexed: %d added, %d updated, %d removed, %d failed in %.1fs",
            len(report.added),
            len(report.updated),
            len(report.removed),
            len(report.failed),
            report.seconds,
        )
        return report, None

    def _swap(self, answerer: Answerer, data: Any) -> None:
        """Serve ``data`` unless a newer commit is served already: a build and a background merge may finish
        in either order, and each commit of the local store is numbered (Milvus's indexes are not)."""
        with self._swap_lock:
            now, new = getattr(answerer.index, "sequence", None), getattr(data, "sequence", None)
            if now is None or new is None or new >= now:
                answerer.swap(data)

    def _merge_if_due(self, data: Any) -> None:
        """Start the background merge when the segments have outgrown their share (QA_MERGE_SHARE)."""
        from qa.indexer import merge_due

        if not merge_due(self.settings, data):
            return
        with self._cond:
            if self._closed or (self._merger is not None and self._merger.is_alive()):
                return
            self._merger = threading.Thread(target=self._merge, name="qa-merge", daemon=True)
            self._merger.start()

    def _merge(self) -> None:
        from qa.indexer import merge_index

        answerer = self.answerer()
        try:
            merged = merge_index(self.settings, live=answerer.index)
        except Exception:  # noqa: BLE001 - a failed merge leaves the segments serving, as committed
            log.exception("merging the index's segments failed; still serving them")
            return
        if merged is not None:
            self._swap(self.answerer(), merged)
            log.info("merged the index's segments into a new base (%d chunks)", merged.num_chunks)

    def wait_merged(self, timeout: float) -> bool:
        """Block until no background merge runs (tests and benchmarks)."""
        merger = self._merger
        if merger is not None:
            merger.join(timeout)
        return merger is None or not merger.is_alive()


def _progress(started_at: float) -> dict[str, Any]:
    return {"files_done": 0, "files_total": None, "current_file": None, "failed": 0, "started_at": started_at}


def _summary(report: IndexReport) -> dict[str, Any]:
    """The report as GET /admin/reindex shows it (unchanged files are left out: there can be thousands)."""
    summary = asdict(report)
    summary["failed"] = [{"path": f.path, "reason": f.reason} for f in report.failed]
    del summary["unchanged"]
    return summary


class SeedsWatcher:
    """Watches the seeds folder with watchfiles (inotify) and asks the Reindexer for a rebuild."""

    def __init__(self, seeds_dir: Path, reindexer: Reindexer, debounce_ms: int = DEBOUNCE_MS) -> None:
        self.seeds_dir = seeds_dir
        self.reindexer = reindexer
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once changes are being watched (tests wait on it)
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        if not self.seeds_dir.is_dir():
            log.warning("not watching %s: no such folder", self.seeds_dir)
            return False
        self._thread = threading.Thread(target=self._watch, name="qa-watch", daemon=True)
        self._thread.start()
        return True

    def _visible(self, _change: object, path: str) -> bool:
        """Hidden files are never indexed (loader.discover), and uploads are staged in a hidden folder."""
        try:
            parts = Path(path).relative_to(self.seeds_dir.resolve()).parts
        except ValueError:
            return True
        return not any(part.startswith(".") for part in parts)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._merger is not None:  # a merge killed here is harmless: it commits atomically or not at all
            self._merger.join(timeout)

    def _watch(self) -> None:
        from watchfiles import watch

        log.info("watching %s for changes", self.seeds_dir)
        # watchfiles groups a burst of events (an editor's save, a git checkout) into one batch; it yields an
        # empty batch after each quiet rust_timeout, and the first one says the watch is in place
        for changes in watch(
            self.seeds_dir,
            watch_filter=self._visible,
            stop_event=self._stop,
            debounce=self.debounce_ms,
            step=50,
            rust_timeout=200,
            yield_on_timeout=True,
        ):
            self.ready.set()
            if not changes:
                continue
            names = sorted({Path(path).name for _, path in changes})
            trigger = "files changed: " + ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            self.reindexer.request(trigger, self._changed_ids({path for _, path in changes}))

    def _changed_ids(self, paths: set[str]) -> set[str] | None:
        """The document ids of changed files, or None (read the whole folder) when a folder changed: a file
        that exists, or one gone whose name has a document's suffix, is a document; anything else may be a
        folder (moved, removed) holding many."""
        root = self.seeds_dir.resolve()
        ids = set()
        for name in paths:
            path = Path(name)
            gone = not path.exists() and not path.is_symlink()
            if (gone and path.suffix.lower() not in SUPPORTED) or (not gone and path.is_dir()):
                return None
            try:
                ids.add(path.relative_to(root).as_posix())
            except ValueError:
                return None
        return ids
