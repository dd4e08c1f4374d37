"""The learned sentence choice: which sentence of a passage is the answer line (issue 23).

A logistic regression over each sentence's signals (qa.sentence_signals), fitted by
bench/fit_sentence_choice.py on XQuAD (a sentence is right when it holds an answer text) and shipped as data,
qa/data/sentence_choice.json, with its provenance. At run time it is plain numpy: the sentence of the highest
score is the answer. The fit read one embedder's cosines; an answerer with another embedder keeps the hand
rules of qa.highlight (``fits``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.embedding import base_name
from qa.sentence_signals import NAMES

MODEL_PATH = Path(__file__).with_name("data") / "sentence_choice.json"


@dataclass(frozen=True)
class Model:
    """score = w . (x - mean) / scale over the signals it names (a subset of qa.sentence_signals.NAMES), then,
    where ``pair`` > 0, over the question's first ``pair`` columns times the sentence's, column by column."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    embedder: str  # the embedder (its name without the engine tag) whose cosines the fit read
    provenance: dict = field(default_factory=dict)
    pair: int = 0

    def __post_init__(self) -> None:
        unknown = [name for name in self.features if name not in NAMES]
        if unknown:
            raise ValueError(f"the sentence choice model names signals qa.sentence_signals lacks: {unknown}")
        object.__setattr__(self, "_columns", np.array([NAMES.index(name) for name in self.features], np.intp))

    def fits(self, embedder_name: str) -> bool:
        return base_name(embedder_name) == self.embedder

    def scores(self, signals: np.ndarray, query: np.ndarray, sentences: np.ndarray) -> np.ndarray:
        """One score per row of ``signals`` (qa.sentence_signals.rows; ``sentences`` their vectors, ``query``
        the question's): the highest is the answer."""
        x = signals[:, self._columns]  # type: ignore[attr-defined]
        if self.pair:
            x = np.hstack([x, sentences[:, : self.pair] * query[: self.pair]])
        return ((x - self.mean) / self.scale) @ self.weights

    def to_json(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "weights": self.weights.round(6).tolist(),
            "pair": self.pair,
            "fitted_for": {"embedder": self.embedder},
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict) -> Model:
        return cls(
            tuple(data["features"]),
            np.array(data["mean"], np.float64),
            np.array(data["scale"], np.float64),
            np.array(data["weights"], np.float64),
            data["fitted_for"]["embedder"],
            dict(data.get("provenance", {})),
            int(data.get("pair", 0)),
        )


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> Model:
    """The shipped model (read once per process)."""
    return Model.from_json(json.loads(path.read_text(encoding="utf-8")))
