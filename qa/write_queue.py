"""Uploads and deletions run here, one at a time, in a thread of their own: never in the pool /ask runs on.

A write waits for the index (a build, the seeds folder) for as long as the change takes; run in Starlette's
thread pool, a few queued writes would hold the threads questions need. Here at most ``depth`` writes wait
behind the one running: one more is refused at once (WriteBusy, a 503 with Retry-After), and one that has
not started after ``timeout`` seconds is dropped the same way. Either way nothing was touched. A write that
has started runs to its end (it is the change the request asked for), and its request waits for it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from qa.errors import QAError

T = TypeVar("T")


class WriteBusy(QAError):
    """The write queue is full, or a write waited too long to start; nothing was changed. Try again later."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WriteQueue:
    """One writer thread and a bounded wait: ``depth`` writes may queue behind the running one."""

    def __init__(self, depth: int, timeout: float) -> None:
        self.depth = depth
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-write")
        self._lock = threading.Lock()
        self._waiting = 0  # accepted, not yet started
        self._running = False
        self._seconds = 1.0  # how long a recent write took (a moving average): the Retry-After estimate

    def waiting(self) -> int:
        """Writes accepted and not yet started (what /healthz-style probes and tests watch)."""
        with self._lock:
            return self._waiting

    def retry_after(self) -> int:
        """Seconds until the queue has likely moved on: the writes ahead times a recent write's duration."""
        with self._lock:
            ahead = self._waiting + int(self._running)
            return max(1, min(300, math.ceil(self._seconds * max(ahead, 1))))

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in the writer thread, awaited without holding a thread of the pool; WriteBusy if refused."""
        started = threading.Event()
        with self._lock:
            if self._waiting >= self.depth + (0 if self._running else 1):
                full = True
            else:
                full = False
                self._waiting += 1
        if full:
            raise WriteBusy(
                f"too many changes are waiting ({self.depth} queued behind the one running); nothing was "
                "changed: try again shortly",
                self.retry_after(),
            )
        future = self._executor.submit(self._timed, work, started)
        future.add_done_callback(lambda f: self._forget(f, started))
        waiter = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.timeout)
        except TimeoutError:
            if future.cancel():  # never started: nothing touched
                raise WriteBusy(
                    f"the change waited {self.timeout:g} s behind others without starting; nothing was changed: "
                    "try again shortly",
                    self.retry_after(),
                ) from None
            return await waiter  # started: it runs to its end, and the request answers with its outcome
        except asyncio.CancelledError:
            # the client went away: a write not started is dropped; one running still reads the request's
            # files, so they stay open until it is done
            if not future.cancel():
                await asyncio.shield(waiter)
            raise

    def close(self) -> None:
        """Drop the writes that have not started and wait for the running one."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _timed(self, work: Callable[[], T], started: threading.Event) -> T:
        with self._lock:
            self._waiting -= 1
            self._running = True
        started.set()
        begun = time.monotonic()
        try:
            return work()
        finally:
            elapsed = time.monotonic() - begun
            with self._lock:
                self._running = False
                self._seconds = 0.7 * self._seconds + 0.3 * elapsed

    def _forget(self, future: Future[T], started: threading.Event) -> None:
        if future.cancelled() and not started.is_set():
            with self._lock:
                self._waiting -= 1
