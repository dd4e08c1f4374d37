"""What the encoder did while indexing: texts and characters it read and the seconds it took (/metrics).

Characters, not tokens: counting tokens would mean tokenizing every text a second time, and the engines'
tokenizers sit behind the ``Embedder`` interface. Characters per second tracks the same throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class EncodeMeter:
    """Running totals, written by the one build thread and read by a metrics scrape (plain ints: no lock)."""

    texts: int = 0
    characters: int = 0
    seconds: float = 0.0

    def add(self, texts: Sequence[str], seconds: float) -> None:
        self.texts += len(texts)
        self.characters += sum(len(text) for text in texts)
        self.seconds += seconds
