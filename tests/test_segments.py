"""Segments and merges of the local store on a real corpus (an XQuAD slice, English and German, real e5).

What a user would notice: after uploads, edits and deletions written as segments, and after the merge that
folds them into a new base, every question gets the citations and scores a full rebuild of the same folder
gives; a merge or a change killed by SIGKILL mid-write leaves the last committed index serving, and the next
write succeeds and collects what the killed one left; a deletion that lands while a
merge runs stays deleted once the merge commits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ROOT, SHARED, LiveServer

from qa import store
from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index, merge_index
from qa.stores.segments import SegmentedIndex

XQUAD = SHARED / "data" / "xquad"
PER_LANGUAGE = 14  # paragraphs of each language: two languages, so the language statistics matter
FERRY = "The night ferry to Kirkwall leaves at 23:45 from pier four."
SCORE_TOLERANCE = 1e-4  # statistics summed commit by commit vs fitted once (float64 sums, 8 digits kept)


def _paragraphs(language: str, count: int) -> list[tuple[str, list[str]]]:
    """The first ``count`` paragraphs of XQuAD in ``language`` with their questions."""
    data = json.loads((XQUAD / f"xquad.{language}.json").read_text(encoding="utf-8"))
    found = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            found.append((paragraph["context"], [qa["question"] for qa in paragraph["qas"]]))
            if len(found) == count:
                return found
    return found


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, str], list[str]]:
    """Document name -> text, and two questions of each paragraph."""
    texts: dict[str, str] = {}
    questions: list[str] = []
    for language in ("en", "de"):
        for row, (text, asked) in enumerate(_paragraphs(language, PER_LANGUAGE)):
            texts[f"{language}-{row:02d}.txt"] = text
            questions += asked[:2]
    return texts, questions


def _settings(base: Path, share: float = 0.5) -> Settings:
    return Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5", merge_share=share)


def _write(settings: Settings, files: dict[str, str]) -> None:
    settings.seeds_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (settings.seeds_dir / name).parent.mkdir(parents=True, exist_ok=True)  # a collection's folder
        (settings.seeds_dir / name).write_text(text, encoding="utf-8")


def _answers(embedder: Embedder, index: object, questions: list[str]) -> list[list[tuple[str, int, float]]]:
    answerer = Answerer(embedder, index)  # type: ignore[arg-type]
    return [[(c.document, c.start, c.score) for c in answerer.ask(q, top_k=5).citations] for q in questions]


def _same(got: list[list[tuple[str, int, float]]], want: list[list[tuple[str, int, float]]]) -> None:
    for one, other in zip(got, want, strict=True):
        assert [(d, s) for d, s, _ in one] == [(d, s) for d, s, _ in other]
        assert all(abs(a - b) <= SCORE_TOLERANCE for (_, _, a), (_, _, b) in zip(one, other))


def _rebuilt(settings: Settings, tmp: Path, e5: Embedder) -> object:
    """A full rebuild of the same folder into another index folder (the embedding cache copied: same vectors)."""
    fresh = settings.model_copy(update={"index_dir": tmp / "rebuilt"})
    fresh.index_dir.mkdir()
    shutil.copytree(settings.index_dir / "cache", fresh.index_dir / "cache")
    report, index = build_index(fresh, embedder=e5)  # no index there: every document written anew, whole
    assert report.rebuilt and not report.embedded  # and read as embedded before, from the cache
    return index


@pytest.fixture()
def segmented(tmp_path: Path, e5: Embedder, corpus) -> tuple[Settings, dict[str, str]]:
    """24 documents indexed whole, then three uploads, two edits and two deletions, each its own commit."""
    texts, _ = corpus
    names = sorted(texts)
    settings = _settings(tmp_path)
    first = [n for n in names if not n.endswith(("-11.txt", "-12.txt"))]  # 24 now, 4 uploaded later
    _write(settings, {n: texts[n] for n in first})
    build_index(settings, embedder=e5)
    changes: list[tuple[str, str | None]] = [
        ("en-11.txt", texts["en-11.txt"]),
        ("de-11.txt", texts["de-11.txt"]),
        ("en-03.txt", texts["en-03.txt"] + " The stadium was later renamed after the club's founder."),
        ("de-05.txt", None),
        ("en-12.txt", texts["en-12.txt"]),
        ("en-07.txt", None),
        ("de-02.txt", "Ein ganz neuer Text: der Leuchtturm von Helgoland ist rot und weiß gestrichen."),
    ]
    for name, text in changes:
        if text is None:
            (settings.seeds_dir / name).unlink()
        else:
            _write(settings, {name: text})
        report, index = build_index(settings, embedder=e5)
        assert report.changed and isinstance(index, SegmentedIndex), "a one-document change writes a segment"
    return settings, texts


def test_segments_and_their_merge_answer_as_a_full_rebuild(segmented, tmp_path: Path, e5: Embedder, corpus) -> None:
    settings, _ = segmented
    _, questions = corpus
    live = store.load(settings.index_dir)
    assert isinstance(live, SegmentedIndex) and len(live.layers) > 1
    assert live.document("de-05.txt") is None and live.document("en-07.txt") is None
    assert "Leuchtturm" in live.document("de-02.txt").text  # type: ignore[union-attr]
    want = _answers(e5, _rebuilt(settings, tmp_path, e5), questions)
    _same(_answers(e5, live, questions), want)

    merged = merge_index(settings, live=live)
    assert isinstance(merged, SegmentedIndex) and len(merged.layers) == 1  # the base alone, no dead rows
    assert merged.num_documents == live.num_documents and merged.num_chunks == live.num_chunks
    _same(_answers(e5, merged, questions), want)
    _same(_answers(e5, store.load(settings.index_dir), questions), want)  # as a restarted server reads it
    kept = {p.name for p in settings.index_dir.iterdir() if p.name.startswith(("gen-", "seg-", ".merge-"))}
    assert kept == {merged.name, merged.base.name}  # the old base and the segments were collected


def test_a_deletion_during_a_merge_stays_deleted(segmented, e5: Embedder) -> None:
    settings, texts = segmented
    reached, release = threading.Event(), threading.Event()
    result: list[object] = []

    def pause() -> None:
        reached.set()
        assert release.wait(120)

    merging = threading.Thread(target=lambda: result.append(merge_index(settings, pause=pause)))
    merging.start()
    try:
        assert reached.wait(120), "the merge never reached its commit"
        # the merge has written its new base with these documents; now they change under it
        (settings.seeds_dir / "en-01.txt").unlink()
        _write(settings, {"en-04.txt": "The harbour master of Valdoria is Ingrid Olsen."})
        report, during = build_index(settings, embedder=e5)
        assert report.removed == ["en-01.txt"] and report.updated == ["en-04.txt"]
        assert during.document("en-01.txt") is None  # deleted at once, merge or not
    finally:
        release.set()
        merging.join(120)
    merged = result[0]
    assert isinstance(merged, SegmentedIndex) and merged.sequence > during.sequence  # type: ignore[attr-defined]
    for index in (merged, store.load(settings.index_dir)):
        assert index.document("en-01.txt") is None
        assert index.document("en-04.txt").text == "The harbour master of Valdoria is Ingrid Olsen."  # type: ignore[union-attr]
        answerer = Answerer(e5, index)  # type: ignore[arg-type]
        for question in _paragraphs("en", 2)[1][1][:3]:  # en-01's own questions
            assert "en-01.txt" not in {c.document for c in answerer.ask(question).citations}
        assert answerer.ask("Who is the harbour master of Valdoria?").citations[0].document == "en-04.txt"
    # de-12 never uploaded, de-05 and en-07 deleted before the merge, en-01 during it
    assert merged.num_documents == len(texts) - 4  # type: ignore[attr-defined]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", **extra}


def test_a_merge_killed_mid_way_leaves_the_last_commit_serving(segmented, tmp_path: Path, e5: Embedder) -> None:
    settings, _ = segmented
    committed = (settings.index_dir / store.CURRENT).read_text()
    before = store.load(settings.index_dir)
    gate = tmp_path / "merge-gate"
    index = [sys.executable, "-m", "qa", "index", "--seeds-dir", str(settings.seeds_dir)]
    index += ["--index-dir", str(settings.index_dir), "--embedder", "e5"]
    # nothing changed, but the segments exceed 1 % of the base: this `qa index` merges, and waits at the gate
    proc = _paused(index, _env(QA_MERGE_SHARE="0.01", QA_DEBUG_MERGE_PAUSE=str(gate)), gate)
    try:
        assert any(p.name.startswith(".merge-") for p in settings.index_dir.iterdir())  # its new base, written
    finally:
        _kill(proc)

    # a restart serves the last committed state, and answers from it
    assert (settings.index_dir / store.CURRENT).read_text() == committed
    cited = _ask(settings, "Welche Farbe hat der Leuchtturm von Helgoland?")
    assert cited[0] == "de-02.txt"  # an edit committed as a segment
    reloaded = store.load(settings.index_dir)
    assert isinstance(reloaded, SegmentedIndex) and reloaded.num_documents == before.num_documents
    assert "Leuchtturm" in reloaded.document("de-02.txt").text  # type: ignore[union-attr]
    assert reloaded.document("de-05.txt") is None

    # the next run merges for real and clears what the killed one left
    rerun = subprocess.run(index, env=_env(QA_MERGE_SHARE="0.01"), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    merged = store.load(settings.index_dir)
    assert isinstance(merged, SegmentedIndex) and len(merged.layers) == 1
    assert merged.num_documents == before.num_documents and merged.num_chunks == before.num_chunks
    assert not any(p.name.startswith(".merge-") for p in settings.index_dir.iterdir())


def _ask(settings: Settings, question: str) -> list[str]:
    """The documents a fresh `qa ask` process cites, in order (what a restarted service would answer from)."""
    ask = subprocess.run(
        [sys.executable, "-m", "qa", "ask", question, "--json", "--index-dir", str(settings.index_dir)]
        + ["--embedder", "e5"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    return [c["document"] for c in json.loads(ask.stdout)["citations"]]


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL, as a crash or the OOM killer would: no handler, no cleanup of its own."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _paused(command: list[str], env: dict[str, str], gate: Path) -> subprocess.Popen:
    """``command`` started and run until it waits at the debug gate ``gate`` (qa.indexer._pause_file)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    waited = threading.Event()
    for _ in range(2400):
        if Path(f"{gate}.reached").exists() or proc.poll() is not None:
            break
        waited.wait(0.05)
    if not Path(f"{gate}.reached").exists():
        proc.kill()
        raise AssertionError(f"it never paused: {proc.stderr.read() if proc.stderr else ''}")
    return proc


def test_a_write_killed_mid_segment_leaves_the_last_commit_serving(segmented, tmp_path: Path, e5: Embedder) -> None:
    settings, _ = segmented
    committed = (settings.index_dir / store.CURRENT).read_text()
    before = store.load(settings.index_dir)
    _write(settings, {"ferry.txt": FERRY})  # a new document: one segment
    gate = tmp_path / "segment-gate"
    index = [sys.executable, "-m", "qa", "index", "--seeds-dir", str(settings.seeds_dir)]
    index += ["--index-dir", str(settings.index_dir), "--embedder", "e5"]
    proc = _paused(index, _env(QA_MERGE_SHARE="0.5", QA_DEBUG_SEGMENT_PAUSE=str(gate)), gate)
    try:
        partial = [p for p in settings.index_dir.iterdir() if p.name.startswith(".tmp-seg-")]
        assert len(partial) == 1 and any(partial[0].glob("*.npy"))  # its arrays written, no manifest yet
        assert not (partial[0] / "manifest.json").exists()
    finally:
        _kill(proc)

    # the last committed state serves: the killed write is not there, every earlier one is
    assert (settings.index_dir / store.CURRENT).read_text() == committed
    assert "ferry.txt" not in _ask(settings, "When does the night ferry to Kirkwall leave?")
    reloaded = store.load(settings.index_dir)
    assert reloaded.num_documents == before.num_documents and reloaded.document("ferry.txt") is None
    assert "Leuchtturm" in reloaded.document("de-02.txt").text  # type: ignore[union-attr]

    # the next write succeeds, takes the document in, and collects the killed one's leftover
    report, after = build_index(settings, embedder=e5)
    assert report.added == ["ferry.txt"] and isinstance(after, SegmentedIndex)
    assert not any(p.name.startswith(".tmp-") for p in settings.index_dir.iterdir())
    answer = Answerer(e5, store.load(settings.index_dir)).ask("When does the night ferry to Kirkwall leave?")
    assert answer.citations[0].document == "ferry.txt"
    assert after.num_documents == before.num_documents + 1


def test_the_server_merges_in_the_background_and_keeps_answering(segmented, e5: Embedder) -> None:
    settings, _ = segmented
    settings = settings.model_copy(update={"merge_share": 0.1})  # one more upload puts the segments past it
    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        upload = [("file", ("ferry.txt", FERRY.encode()))]
        response = http.post("/documents", files=upload)
        assert response.status_code == 201, response.text
        assert app.state.reindexer.wait_merged(300), "the merge did not finish"
        served = app.state.answerer.index
        assert isinstance(served, SegmentedIndex) and len(served.layers) == 1  # merged and swapped in
        top = http.post("/ask", json={"question": "When does the night ferry leave?"}).json()["citations"][0]
        assert top["document"] == "ferry.txt"
        top = http.post("/ask", json={"question": "Welche Farbe hat der Leuchtturm von Helgoland?"}).json()
        assert top["citations"][0]["document"] == "de-02.txt"
        assert http.delete("/documents/ferry.txt").status_code == 204  # a segment again, on the merged base
        assert http.get("/documents/ferry.txt").status_code == 404


# documents of the XQuAD slice by collection: ``mixed`` holds both languages, so its own statistics correct it
COLLECTION_OF = {
    **{f"en-{row:02d}.txt": "" for row in range(5)},
    **{f"de-{row:02d}.txt": "" for row in range(5)},
    **{f"en-{row:02d}.txt": "mixed/" for row in range(5, 9)},
    **{f"de-{row:02d}.txt": "mixed/" for row in range(5, 9)},
    **{f"en-{row:02d}.txt": "english/" for row in range(9, 14)},
    **{f"de-{row:02d}.txt": "deutsch/" for row in range(9, 14)},
}
SCOPES = (["mixed"], ["english", "deutsch"], ["default"], ["mixed", "default"])
RHINE = "Der Rhein-Fährhafen von Valdoria öffnet jeden Morgen um sechs Uhr; die Fähre fährt stündlich."


def _observed(index: object, settings: Settings, e5: Embedder, questions: list[str]) -> dict[str, object]:
    """What a user sees of ``index`` over HTTP: collection-scoped answers, listings, collections and metrics."""
    from test_operations import scrape, value

    app = create_app(settings, answerer=Answerer(e5, index))  # type: ignore[arg-type]
    seen: dict[str, object] = {}
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        for scope in SCOPES:
            for question in questions:
                response = http.post("/ask", json={"question": question, "top_k": 5, "collections": scope})
                assert response.status_code == 200, response.text
                cited = [(c["document"], c["start"], c["score"]) for c in response.json()["citations"]]
                assert all(c[0].split("/")[0] in scope or ("default" in scope and "/" not in c[0]) for c in cited)
                seen[f"ask {scope} {question}"] = cited
        for query in ("collection=mixed", "collection=english,deutsch&offset=3&limit=4", "limit=50"):
            listed = http.get(f"/documents?{query}")
            assert listed.status_code == 200, listed.text
            body = listed.json()
            rows = [{k: v for k, v in doc.items() if k != "indexed_at"} for doc in body["documents"]]
            seen[f"list {query}"] = (rows, body["total"])
        seen["collections"] = http.get("/collections").json()
        samples = scrape(http)
        seen["metrics"] = {
            name: (value(samples, "qa_documents", collection=name), value(samples, "qa_chunks", collection=name))
            for name in ("default", "mixed", "english", "deutsch")
        }
    return seen


def _same_view(got: dict[str, object], want: dict[str, object]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key.startswith("ask "):
            _same([got[key]], [value])  # type: ignore[list-item]
        else:
            assert got[key] == value, key


def _same_stats(got: dict, want: dict) -> None:
    """Per-collection (and whole) statistics equal within float tolerance: counts exactly, sums closely."""
    assert got["collections"].keys() == want["collections"].keys()
    for mine, theirs in [(got["centering"], want["centering"]), *zip(
        (got["collections"][n] for n in sorted(want["collections"])),
        (want["collections"][n] for n in sorted(want["collections"])),
    )]:  # fmt: skip
        assert mine["counts"] == theirs["counts"]
        for language, sums in theirs["sums"].items():
            assert np.allclose(mine["sums"][language], sums, atol=1e-5)


def test_collections_inside_segments_answer_list_and_count_as_a_full_rebuild(
    tmp_path: Path, e5: Embedder, corpus
) -> None:
    texts, questions = corpus
    asked = questions[::5]
    settings = _settings(tmp_path)  # QA_MERGE_SHARE 0.5: a one-document upload is a segment
    held = {"mixed/en-08.txt", "english/en-12.txt", "deutsch/de-12.txt"}  # uploaded over HTTP below
    files = {COLLECTION_OF[name] + name: text for name, text in texts.items()}
    _write(settings, {name: text for name, text in files.items() if name not in held})
    build_index(settings, embedder=e5)

    app = create_app(settings, answerer=Answerer(e5, store.load(settings.index_dir)))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        for name in sorted(held):
            collection, filename = name.split("/")
            upload = http.post("/documents", files=[("file", (filename, files[name].encode()))],
                               data={"collection": collection})  # fmt: skip
            assert upload.status_code == 201 and upload.json()["documents"][0]["status"] == "indexed", upload.text
        edit = http.post("/documents", files=[("file", ("de-06.txt", RHINE.encode()))], data={"collection": "mixed"})
        assert edit.status_code == 201, edit.text
        assert http.delete("/documents/deutsch/de-10.txt").status_code == 204
        assert http.delete("/documents/en-02.txt").status_code == 204
        served = app.state.answerer.index
    assert isinstance(served, SegmentedIndex) and len(served.layers) > 1, "the changes were written as segments"
    assert served.document("mixed/de-06.txt").text == RHINE  # type: ignore[union-attr]

    rebuilt = _rebuilt(settings, tmp_path, e5)
    want = _observed(rebuilt, settings.model_copy(update={"index_dir": tmp_path / "rebuilt"}), e5, asked)
    assert want["collections"]["collections"]  # type: ignore[index]
    assert want["metrics"]["deutsch"] == (4, want["metrics"]["deutsch"][1])  # type: ignore[index]
    _same_stats(served.stats, rebuilt.stats)  # type: ignore[attr-defined]
    _same_view(_observed(store.load(settings.index_dir), settings, e5, asked), want)
    answerer = Answerer(e5, served)
    rhine = answerer.ask("Wann öffnet der Fährhafen von Valdoria?", collections=frozenset({"mixed"})).citations
    assert rhine[0].document == "mixed/de-06.txt"

    merged = merge_index(settings, live=store.load(settings.index_dir))
    assert isinstance(merged, SegmentedIndex) and len(merged.layers) == 1
    _same_stats(merged.stats, rebuilt.stats)  # type: ignore[attr-defined, arg-type]
    _same_view(_observed(store.load(settings.index_dir), settings, e5, asked), want)
