"""The embedding backends, for real: bundled e5, bundled USE, fused, and sentence-transformers (MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tolerance import atol

from qa import store
from qa.answer import Answerer
from qa.config import Settings
from qa.embedding import SPARSE_K, Embedder, SentenceTransformerEmbedder, make_embedder, sparse_scores
from qa.errors import EmbedderUnavailable
from qa.indexer import build_index


def _unit_rows(vectors: np.ndarray) -> bool:
    return vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_e5_is_cross_lingual(e5: Embedder) -> None:
    passages = e5.encode_passages(["Кошка спит на диване.", "Биржа упала на три процента."])
    query = e5.encode_queries(["Where is the cat sleeping?"])
    assert passages.shape == (2, e5.dim) == (2, 384) and _unit_rows(passages)
    assert int(np.argmax(passages @ query[0])) == 0


def test_fused_embedder_scores_the_weighted_sum_of_cosines(e5: Embedder) -> None:
    use = make_embedder("use")
    fused = make_embedder("e5:3+use:1")
    texts = ["Кошка спит на диване.", "Der Hund bellt laut."]
    query = "a sleeping cat"
    expected = 0.75 * (e5.encode_passages(texts) @ e5.encode_queries([query])[0]) + 0.25 * (
        use.encode_passages(texts) @ use.encode_queries([query])[0]
    )
    got = fused.encode_passages(texts) @ fused.encode_queries([query])[0]
    assert fused.dim == 384 + 512 and np.allclose(got, expected, rtol=0, atol=atol(e5))


def test_unknown_embedder_is_a_clear_error() -> None:
    with pytest.raises(EmbedderUnavailable, match="unknown embedder 'bert9000'"):
        make_embedder("bert9000")
    with pytest.raises(EmbedderUnavailable, match="cannot load sentence-transformers model"):
        make_embedder("sentence-transformers:/nonexistent/model-dir")


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    embedder = make_embedder("sentence-transformers:all-MiniLM-L6-v2")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


def test_sentence_transformers_backend_with_the_bundled_minilm(minilm: SentenceTransformerEmbedder, tmp_path: Path):
    assert minilm.dim == 384 and minilm.name == "sentence-transformers:all-MiniLM-L6-v2"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "bridge.txt").write_text("The Harbour Bridge opened in 1932 and carries trains.", encoding="utf-8")
    (seeds / "reactor.txt").write_text("The reactor was commissioned in 1987 near the coast.", encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", embedder=minilm.name)
    report, _ = build_index(settings, embedder=minilm)
    assert report.documents == 2
    data = store.load(settings.index_dir)
    assert data.manifest["embedder"] == {"name": minilm.name, "dim": 384, "sparse": 0, "fine": 384}  # no latent terms
    answer = Answerer(minilm, data).ask("When did the bridge open?", top_k=2)
    assert answer.citations[0].document == "bridge.txt"
    assert answer.answer == "The Harbour Bridge opened in 1932 and carries trains."


def test_e5_style_models_get_query_and_passage_prefixes(minilm: SentenceTransformerEmbedder) -> None:
    assert minilm._prefixes("sentence-transformers/all-MiniLM-L6-v2") == ("", "")
    assert minilm._prefixes("intfloat/multilingual-e5-small") == ("query: ", "passage: ")


def test_fused_embedder_leaves_use_out_of_languages_it_was_not_trained_on(e5: Embedder) -> None:
    fused = make_embedder("e5:3+use:1")
    greek, german = "Ο σκύλος γαβγίζει δυνατά στον κήπο.", "Der Hund bellt laut im Garten."
    rows = fused.encode_passages([greek, german])
    assert _unit_rows(rows)
    assert not rows[0, e5.dim :].any() and rows[1, e5.dim :].any()  # USE never saw Greek: its block is empty
    query = "a dog barking"
    e5_cosine = float(e5.encode_passages([greek])[0] @ e5.encode_queries([query])[0])
    # the Greek passage read in a batch of two against alone: as close as e5's precision holds it
    assert np.isclose(rows[0] @ fused.encode_queries([query])[0], np.sqrt(0.75) * e5_cosine, rtol=0, atol=atol(e5))
    assert fused.name.endswith("@langid")  # never mixed with an index or cache of the ungated fusion


def test_latent_terms_are_unit_length_and_shared_across_languages(e5: Embedder) -> None:
    passages = e5.encode_sparse(  # type: ignore[attr-defined]
        ["Управление осуществляет глава Индо-Тихоокеанского командования на Гавайях.", "Биржа упала на три процента."]
    )
    assert passages.shape == (2, 2 * SPARSE_K)
    assert np.allclose(np.linalg.norm(passages[:, SPARSE_K:], axis=1), 1.0, atol=1e-4)
    query = e5.encode_sparse(["Who heads the Indo-Pacific Command in Hawaii?"])[0]  # type: ignore[attr-defined]
    hawaii, stocks = sparse_scores(query, passages)
    assert hawaii > 2 * stocks
