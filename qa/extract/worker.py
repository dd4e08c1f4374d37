"""Run readers in a worker process with a time limit, so a parser that hangs (or spins on a crafted file) is
killed instead of stalling indexing under the index lock.

One long-lived worker serves reads one at a time (starting a process per file would cost more than most reads:
the child re-imports the program's main module); it is replaced when it overruns its limit, crashes, or has
served :data:`RECYCLE_AFTER` files (parsers' memory does not grow without bound). The limit is on silence, not
on the whole read: a reader that makes progress (OCR, page by page) calls :func:`qa.extract.base.heartbeat`,
and each beat starts the limit over. The worker leads its own process group, so the Tesseract processes it
started die with it, and it keeps its temporary files (pytesseract's page images) in a folder of its own that
the parent removes when it stops the worker: a killed worker cleans nothing up itself.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import resource
import shutil
import signal
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from qa.errors import BadDocument
from qa.extract import reader_for
from qa.extract.base import Extracted, Options, set_heartbeat

PRELOAD = ["qa.extract.preload"]  # the forkserver imports the parsers once; workers fork from it
RECYCLE_AFTER = 200
MAX_WORKER_MEMORY = 4 * 2**30  # address space of the worker (and the Tesseracts it starts), bytes


class _Worker:
    def __init__(self) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self.connection, child = context.Pipe()
        self.scratch = tempfile.mkdtemp(prefix="qa-extract-")
        self.process = context.Process(target=_serve, args=(child, self.scratch), name="qa-extract", daemon=True)
        self.process.start()
        child.close()
        self.served = 0

    def read(self, suffix: str, path: Path, options: Options) -> Extracted:
        self.served += 1
        self.connection.send((suffix, str(path), options))
        while True:
            if not self.connection.poll(options.parse_timeout):
                raise _Stopped(
                    f"reading stopped after {options.parse_timeout:g} s without progress (the {_kind(suffix)} "
                    "parser hung or the file is too complex; QA_PARSE_TIMEOUT sets the limit)"
                )
            try:
                status, payload = self.connection.recv()
            except (EOFError, OSError):
                self.process.join(5)
                raise _Stopped(
                    f"the {_kind(suffix)} parser crashed on this file (worker exit code {self.process.exitcode})"
                ) from None
            if status == "ok":
                return payload
            if status == "bad":
                raise BadDocument(payload)

    def stop(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # the worker and any Tesseract it started
            except (ProcessLookupError, PermissionError):  # it had not become a group leader yet
                self.process.kill()
        self.process.join()
        shutil.rmtree(self.scratch, ignore_errors=True)


class _Stopped(BadDocument):
    """The worker overran its limit or died: it is replaced before the next read."""


_lock = threading.Lock()
_current: list[_Worker] = []


def read_in_worker(suffix: str, path: Path, options: Options) -> Extracted:
    """The reader's result, or BadDocument (the reader's own, a crash's, or the time limit's)."""
    with _lock:  # one read at a time per process: parsing is CPU-bound, and OCR spreads over the cores itself
        if not _current or not _current[0].process.is_alive() or _current[0].served >= RECYCLE_AFTER:
            shutdown()
            _current.append(_Worker())
        try:
            return _current[0].read(suffix, path, options)
        except _Stopped:
            shutdown()
            raise


def shutdown() -> None:
    """Stop the worker (the next read starts a new one)."""
    while _current:
        _current.pop().stop()


atexit.register(shutdown)  # before multiprocessing's own exit handler kills the daemon worker, so its folder goes too


def _serve(connection: Connection, scratch: str) -> None:
    """In the worker: read requests until the parent goes away; answer ("ok", Extracted) or ("bad", reason),
    with ("alive", None) as progress. Temporary files go to ``scratch``, which the parent removes."""
    try:
        os.setpgrp()
    except OSError:
        pass
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch
    os.environ["OMP_THREAD_LIMIT"] = "1"  # one thread per Tesseract: pages run in parallel instead
    try:  # a bomb the checks missed (a flate stream in a PDF, a huge image) fails here, not in the machine
        resource.setrlimit(resource.RLIMIT_AS, (MAX_WORKER_MEMORY, MAX_WORKER_MEMORY))
    except (ValueError, OSError):
        pass
    set_heartbeat(lambda: connection.send(("alive", None)))
    while True:
        try:
            suffix, path, options = connection.recv()
        except (EOFError, OSError):
            return
        connection.send(_read(suffix, Path(path), options))


def _read(suffix: str, path: Path, options: Options) -> tuple[str, object]:
    try:
        return ("ok", reader_for(suffix)(path, options))
    except BadDocument as exc:
        return ("bad", str(exc))
    except ImportError as exc:
        return ("bad", f"reading {_kind(suffix)} files needs the Python package {exc.name}, which is not installed")
    except MemoryError:
        return ("bad", f"the {_kind(suffix)} file needs more memory to read than is available")
    except Exception as exc:  # noqa: BLE001 - any parser failure on a malformed file is that file's problem
        return ("bad", f"corrupt or unreadable {_kind(suffix)} file ({type(exc).__name__}: {exc})"[:500])


def _kind(suffix: str) -> str:
    return suffix.lstrip(".").upper()
