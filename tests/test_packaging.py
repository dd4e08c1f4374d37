"""A built wheel carries the web chat and a non-editable install serves it (issue 13, defect 10).

The wheel is built from a copy of the sources with the venv's own setuptools (no network, no build isolation),
unpacked as pip would install a pure-Python wheel, and served by `qa serve` run from a folder with no web/ in
sight, so the page can only come from the installed package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, free_port

PAGE_FILES = ("index.html", "app.js", "style.css", "favicon.svg")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("qa", "web"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (built,) = dist.glob("qa-*.whl")
    return built


def test_wheel_contains_the_page_and_every_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"qa/web/{name}" for name in PAGE_FILES} <= names
    assert not any(name.startswith("web/") for name in names)
    # web/ is mapped into the package by name, so the package list is explicit: a new subpackage or data file
    # left out of pyproject.toml would be missing from every install
    sources = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "qa").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sources <= names, f"not in the wheel: {sorted(sources - names)}"
    page = {f"qa/web/{path.name}" for path in (ROOT / "web").iterdir() if path.is_file()}
    assert page <= names, f"not in the wheel: {sorted(page - names)}"


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    site = tmp_path_factory.mktemp("site")
    zipfile.ZipFile(wheel).extractall(site)  # what pip does with a pure-Python wheel, minus the metadata scripts
    yield site


def test_installed_package_serves_the_chat(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),  # the installed copy, not this checkout
        "QA_SEEDS_DIR": str(tmp_path / "seeds"),
        "QA_INDEX_DIR": str(tmp_path / "index"),
        "QA_EMBEDDER": "e5",
    }
    env.pop("QA_WEB_DIR", None)
    where = subprocess.run(
        [sys.executable, "-c", "from qa.config import Settings; print(Settings().web_dir)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == installed / "qa" / "web"
    server = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", str(port), "--no-watch"],
        cwd=tmp_path,  # no web/ folder here or above it
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = _get_when_up(f"http://127.0.0.1:{port}/", server)
        assert page.status_code == 200 and "<title>qa · ask your documents</title>" in page.text
        script = httpx.get(f"http://127.0.0.1:{port}/app.js", timeout=10)
        assert script.status_code == 200 and script.text == (installed / "qa" / "web" / "app.js").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_when_up(url: str, server: subprocess.Popen[str], timeout: float = 120) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"qa serve exited with {server.returncode}: {server.stderr.read() if server.stderr else ''}")
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"qa serve did not answer {url} within {timeout}s")
