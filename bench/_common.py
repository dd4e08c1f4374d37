"""What every benchmark prints: the machine it ran on, and medians/percentiles in one format."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmark this checkout's qa, not an installed one
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores ({cpu}); "
        f"python {platform.python_version()}; load average {load} (shared machine: expect noise)"
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a benchmark's own server (benchmarks stay on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    """Resident set size of this process now (anonymous and file-backed pages)."""
    return _status_mb("VmRSS")


def rss_split_mb() -> tuple[float, float]:
    """(anonymous, file-backed) resident memory: file pages are clean mmap pages the kernel may drop."""
    return _status_mb("RssAnon"), _status_mb("RssFile")


def peak_rss_mb() -> float:
    """Peak resident set size (VmHWM: unlike ru_maxrss it is not inherited from a parent across exec)."""
    return _status_mb("VmHWM")


def per_owner_max(scores: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Each question's best score per owner (a chunk's best sentence, a document's best chunk)."""
    out = np.full((scores.shape[0], n), -9.0, np.float32)
    for j in range(scores.shape[1]):
        np.maximum(out[:, owner[j]], scores[:, j], out=out[:, owner[j]])
    return out


def serve_ready(
    work: Path, port: int, *, index_first: bool = False, watch: bool = True, root: Path = ROOT
) -> subprocess.Popen:
    """`qa serve` on 127.0.0.1 over ``work/seeds`` and ``work/index`` (after a `qa index` when ``index_first``),
    returned once /healthz says its index serves; its output goes to ``work/server.log`` (where the start-up
    URL's session token is). The benches' one way to start a server of their own. ``root``: the checkout
    whose qa runs (another commit's, for a before/after figure)."""
    env = dict(os.environ, PYTHONPATH=str(root), HF_HUB_OFFLINE="1")
    folders = ["--seeds-dir", str(work / "seeds"), "--index-dir", str(work / "index")]
    if index_first:
        subprocess.run([sys.executable, "-m", "qa", "index", *folders], env=env, cwd=work, check=True)
    command = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port), *folders]
    if not watch:
        command.append("--no-watch")
    log = work / "server.log"
    server = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=work)
    deadline = time.monotonic() + 600  # a first start without `qa index` indexes the corpus
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"qa serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("status") == "ok":
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("qa serve did not become healthy in 600 s")
