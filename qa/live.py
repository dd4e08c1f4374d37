"""Live re-indexing while serving: rebuild in a background thread, then swap the new index in atomically.

Requests keep answering from the index they started with (``Answerer.swap`` only replaces a reference),
so a rebuild never makes a request fail. Triggers (file events, POST /admin/reindex) that arrive while a
build runs are coalesced into one more build, and the file watcher debounces bursts of events itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.answer import Answerer
from qa.config import Settings

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


@dataclass
class Reindexer:
    """One worker thread that rebuilds on request; at most one build at a time, bursts coalesced."""

    settings: Settings
    answerer: Callable[[], Answerer]  # read at build time: the app may replace its answerer
    _status: ReindexStatus = field(default_factory=ReindexStatus)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _closed: bool = False

    def request(self, trigger: str) -> bool:
        """Ask for a rebuild; True if it starts now, False if it was queued behind the one running."""
        with self._cond:
            if self._closed:
                return False
            queued = self._status.in_progress
            self._status.pending = True
            self._status.last_trigger = trigger
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="qa-reindex", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        log.info("re-index requested (%s)%s", trigger, ", queued" if queued else "")
        return not queued

    def status(self) -> dict[str, Any]:
        with self._cond:
            return asdict(self._status)

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

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._status.pending or self._closed)
                if self._closed:
                    return
                self._status.pending = False
                self._status.in_progress = True
                self._status.last_started = time.time()
            report, error = self._build()
            with self._cond:
                status = self._status
                status.in_progress = False
                status.runs += 1
                status.last_finished = time.time()
                status.last_seconds = round(status.last_finished - (status.last_started or status.last_finished), 2)
                status.last_error = error
                status.last_report = report if error is None else status.last_report
                self._cond.notify_all()

    def _build(self) -> tuple[dict[str, Any] | None, str | None]:
        from qa.indexer import build_index

        answerer = self.answerer()
        settings = self.settings.model_copy(update={"batch_size": min(self.settings.batch_size, LIVE_BATCH)})
        try:
            report, data = build_index(settings, embedder=answerer.embedder, live=answerer.index)
        except Exception as exc:  # noqa: BLE001 - a failed rebuild keeps the old index serving
            log.exception("re-index failed; still serving the previous index")
            return None, f"{type(exc).__name__}: {exc}"
        answerer.swap(data)
        log.info(
            "re-indexed: %d added, %d updated, %d removed, %d failed in %.1fs",
            len(report.added),
            len(report.updated),
            len(report.removed),
            len(report.failed),
            report.seconds,
        )
        summary = asdict(report)
        summary["failed"] = [{"path": f.path, "reason": f.reason} for f in report.failed]
        del summary["unchanged"]
        return summary, None


class SeedsWatcher:
    """Watches the seeds folder with watchfiles (inotify) and asks the Reindexer for a rebuild."""

    def __init__(self, seeds_dir: Path, reindexer: Reindexer, debounce_ms: int = DEBOUNCE_MS) -> None:
        self.seeds_dir = seeds_dir
        self.reindexer = reindexer
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        if not self.seeds_dir.is_dir():
            log.warning("not watching %s: no such folder", self.seeds_dir)
            return False
        self._thread = threading.Thread(target=self._watch, name="qa-watch", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _watch(self) -> None:
        from watchfiles import watch

        log.info("watching %s for changes", self.seeds_dir)
        # watchfiles groups a burst of events (an editor's save, a git checkout) into one batch
        for changes in watch(self.seeds_dir, stop_event=self._stop, debounce=self.debounce_ms, step=50):
            names = sorted({Path(path).name for _, path in changes})
            self.reindexer.request("files changed: " + ", ".join(names[:5]) + (" ..." if len(names) > 5 else ""))
