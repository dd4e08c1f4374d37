"""Run a reader in a worker process with a time limit, so a parser that hangs (or spins on a crafted file)
is killed instead of stalling indexing under the index lock.

The limit is on silence, not on the whole read: a reader that makes progress (OCR, page by page) calls
:func:`qa.extract.base.heartbeat`, and each beat starts the limit over. Workers are forked from a
forkserver that has the parsers imported already (cheap to start, and never forked from a process whose
other threads might hold locks). The worker leads its own process group, so Tesseract processes it started
die with it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path

from qa.errors import BadDocument
from qa.extract import reader_for
from qa.extract.base import Extracted, Options, set_heartbeat

PRELOAD = ["__main__", "qa.extract.preload"]  # __main__ too: workers then skip re-importing it


def read_in_worker(suffix: str, path: Path, options: Options) -> Extracted:
    """The reader's result, or BadDocument (its own, a crash's, or the time limit's)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_work, args=(sender, suffix, str(path), options), daemon=True)
    process.start()
    sender.close()
    try:
        while True:
            if not receiver.poll(options.parse_timeout):
                raise BadDocument(
                    f"reading stopped after {options.parse_timeout:g} s without progress (the {_kind(suffix)} parser "
                    "hung or the file is too complex; QA_PARSE_TIMEOUT sets the limit)"
                )
            try:
                status, payload = receiver.recv()
            except EOFError:
                process.join(5)
                raise BadDocument(
                    f"the {_kind(suffix)} parser crashed on this file (exit code {process.exitcode})"
                ) from None
            if status == "ok":
                return payload
            if status == "bad":
                raise BadDocument(payload)
    finally:
        receiver.close()
        if process.is_alive():
            _kill(process)
        process.join()


def _kill(process: multiprocessing.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the worker and any Tesseract it started
    except (ProcessLookupError, PermissionError):  # it had not become a group leader yet
        process.kill()


def _work(sender: Connection, suffix: str, path: str, options: Options) -> None:
    """In the worker: read, send ("ok", Extracted) or ("bad", reason); ("alive", None) as progress."""
    try:
        os.setpgrp()
    except OSError:
        pass
    os.environ["OMP_THREAD_LIMIT"] = "1"  # one thread per Tesseract: pages run in parallel instead
    set_heartbeat(lambda: sender.send(("alive", None)))
    try:
        result: tuple[str, object] = ("ok", reader_for(suffix)(Path(path), options))
    except BadDocument as exc:
        result = ("bad", str(exc))
    except ImportError as exc:
        result = ("bad", f"reading {_kind(suffix)} files needs the Python package {exc.name}, which is not installed")
    except MemoryError:
        result = ("bad", f"the {_kind(suffix)} file needs more memory to read than is available")
    except Exception as exc:  # noqa: BLE001 - any parser failure on a malformed file is that file's problem
        result = ("bad", f"corrupt or unreadable {_kind(suffix)} file ({type(exc).__name__}: {exc})"[:500])
    sender.send(result)
    sender.close()


def _kind(suffix: str) -> str:
    return suffix.lstrip(".").upper()
