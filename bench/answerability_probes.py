"""Signals tried for the no-answer decision and not shipped: do they add to those qa/data/answerability.json weighs?

Three families, each printed alone (AUC per language) and added to the shipped signals in the same held-out
check as bench/fit_answerability.py (each paragraph language and each quarter of the articles unseen):

- agreement of the encoders: the top passage's best sentence under e5's columns alone and under USE's alone
  (the default row is e5's 384 columns then USE's 512), its lead over the other candidates in units of their
  spread, its margin over the best of them, the share of them it beats;
- literal overlap: the share of the question's literal tokens (numbers, capitalised words, acronyms), of
  those some candidate holds, that the top passage lacks (its numbers alone, measured here first, are now
  the shipped ``numbers_missing``);
- with ``--tokens``, late interaction: e5's final token states of the question against those of the top
  passage (each question token's best cosine with a passage token, averaged: ColBERT's MaxSim, and the mean of
  the weaker half of the question's tokens), and the top's lead over the next four passages. It needs a pass
  over each candidate passage per question (one chunk pass costs about what the whole question does), so it
  could only ever run where the signals are unsure.

    python bench/answerability_probes.py --workdirs '/tmp/answer-eval-{LANG}' --cache /tmp/answer-fit --tokens
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)
import fit_answerability as fit
import numpy as np

from qa import answerability
from qa.answer import Reply
from qa.config import Settings
from qa.embedding import make_embedder
from qa.eval import auc, load_eval_set

SHIPPED = answerability.load_model().features
BLOCKS = {"e5": slice(0, fit.PAIR_WIDTH), "use": slice(fit.PAIR_WIDTH, None)}
TOKEN_PASSAGES = 5  # the top and the next four


def lead_z(top: float, others: np.ndarray) -> float:
    spread = np.r_[top, others].std()
    return float((top - others.mean()) / spread) if len(others) and spread > 1e-9 else 0.0


def block_signals(reply: Reply) -> dict[str, float]:
    """Each encoder's own view of the top passage's best sentence against the other candidates'."""
    assert reply.query is not None
    top = reply.ranked[0]
    others = [c for c in reply.ranked[1:] if c.hit.chunk.doc_id != top.hit.chunk.doc_id]
    out = {}
    for name, columns in BLOCKS.items():
        q = reply.query[columns]

        def best(candidate, q=q, columns=columns) -> float:
            return float((candidate.hit.sentence_vectors[:, columns] @ q).max())

        mine, theirs = best(top), np.array([best(c) for c in others])
        out[f"{name}_lead_z"] = lead_z(mine, theirs)
        out[f"{name}_margin"] = float(mine - theirs.max()) if len(theirs) else 0.0
        out[f"{name}_rank"] = float((theirs < mine).mean()) if len(theirs) else 1.0
    return out


LITERAL = re.compile(r"\b[A-Za-z0-9][\w.\-]*\b")
QUESTION_WORDS = {"what", "who", "when", "where", "which", "why", "how", "the", "in", "a", "an", "of", "is", "was"}


def literal_signals(question: str, reply: Reply) -> dict[str, float]:
    """What of the question's literal tokens the top passage lacks, of those the candidates hold at all."""
    texts = [c.hit.chunk.text for c in reply.ranked[:TOKEN_PASSAGES]]
    tokens = {
        w.lower()
        for w in LITERAL.findall(question)
        if w.lower() not in QUESTION_WORDS and (w[0].isupper() or any(c.isdigit() for c in w))
    }
    known = {w for w in tokens if any(w in t.lower() for t in texts)}
    lacking = len([w for w in known if w not in texts[0].lower()]) / len(known) if known else 0.0
    return {"literals_missing": lacking}


class TokenStates:
    """e5's final state of each content token (prefix excluded), unit length, cached per text."""

    def __init__(self) -> None:
        from qa.engine.encoder import PASSAGE, QUERY, TorchE5

        self._encoder, self.query, self.passage = TorchE5(), QUERY, PASSAGE
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def __call__(self, text: str, prefix: str) -> np.ndarray:
        key = (prefix, text)
        if key not in self._cache:
            tokens, states = self._encoder.states(text, prefix)
            states = states[tokens.ends > 0].astype(np.float32)
            self._cache[key] = states / (np.linalg.norm(states, axis=1, keepdims=True) + 1e-9)
        return self._cache[key]


def token_signals(states: TokenStates, question: str, reply: Reply) -> dict[str, float]:
    q = states(question, states.query)
    top = reply.ranked[0].hit.chunk
    scores = []
    for candidate in reply.ranked[:TOKEN_PASSAGES]:
        if candidate is not reply.ranked[0] and candidate.hit.chunk.doc_id == top.doc_id:
            continue
        best = (q @ states(candidate.hit.chunk.text, states.passage).T).max(axis=1)
        scores.append((float(best.mean()), float(np.sort(best)[: max(1, len(best) // 2)].mean())))
    (maxsim, weak), others = scores[0], scores[1:]
    return {
        "tok": maxsim,
        "tok_weak": weak,
        "tok_lead": maxsim - max(s[0] for s in others) if others else 0.0,
        "tok_weak_lead": weak - max(s[1] for s in others) if others else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", type=Path, default=Path("../shared/data/xquad"))
    parser.add_argument("--workdirs", default="/tmp/answer-eval-{LANG}", help="qa eval --workdir of each language")
    parser.add_argument("--langs", default=",".join(fit.LANGS))
    parser.add_argument("--cache", type=Path, default=None, help="folder for the question vectors")
    parser.add_argument("--tokens", action="store_true", help="also the late-interaction signals (slow)")
    args = parser.parse_args()

    settings = Settings()
    questions = args.xquad / "xquad.en.json"
    texts = [q.text for q in load_eval_set(questions, questions).questions]
    embedder = fit.CachedQueries(make_embedder(settings.embedder), texts, args.cache)
    states = TokenStates() if args.tokens else None

    def describe(question: str, reply: Reply) -> dict:
        row = {**reply.signals, **block_signals(reply), **literal_signals(question, reply)}
        return {**row, **token_signals(states, question, reply)} if states else row

    data: dict[str, dict] = {}
    for lang in args.langs.split(","):
        workdir = Path(args.workdirs.replace("{LANG}", lang))
        data.update(fit.collect(workdir, args.xquad, lang, embedder, settings, lang == "mixed", describe))
    groups = list(data)
    probes = [n for n in data[groups[0]]["pos"][0] if n not in answerability.FEATURES and n != fit.QUESTION]

    print("signal AUC alone (right top answers vs gold-left-out), per language:")
    print(f"{'signal':16s} " + " ".join(f"{g:>8s}" for g in groups))
    for name in probes:
        row = [auc(column(data[g]["pos"], name), column(data[g]["neg"], name)) for g in groups]
        print(f"{name:16s} " + " ".join(f"{value:8.3f}" for value in row))

    article = fit.articles(args.xquad)
    print("\nheld out (language and quarter of the articles), the shipped signals and each probe added:")
    print(f"{'signals':22s} " + " ".join(f"{g:>8s}" for g in groups) + "     mean")
    families: list[tuple[str, list[str]]] = [("shipped", [])] + [(f"+ {n}", [n]) for n in probes]
    families.append(("+ encoder agreement", [n for n in probes if n.split("_")[0] in BLOCKS]))
    if states:
        families.append(("+ late interaction", [n for n in probes if n.startswith("tok")]))
    for label, extra in families:
        found = fit.held_out(data, [*SHIPPED, *extra], False, article)
        values = [found[g] for g in groups]
        print(f"{label:22s} " + " ".join(f"{v:8.3f}" for v in values) + f"   {np.mean(values):.4f}", flush=True)


def column(rows: list[dict], name: str) -> np.ndarray:
    return np.array([r[name] for r in rows], np.float64)


if __name__ == "__main__":
    main()
