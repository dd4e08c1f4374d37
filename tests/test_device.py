"""QA_DEVICE=cuda: the sentence-transformers backend runs on the GPU, or says plainly why it cannot."""

from __future__ import annotations

import pytest
import torch

from qa.config import Settings
from qa.embedding import SentenceTransformerEmbedder
from qa.errors import EmbedderUnavailable


def test_cuda_device_embeds_on_the_gpu_or_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_DEVICE", "cuda")
    settings = Settings()
    assert settings.device == "cuda"
    if torch.cuda.is_available():
        embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device=settings.device)
        assert str(embedder._model.device).startswith("cuda")
        assert embedder.encode_passages(["hello"]).shape == (1, embedder.dim)
    else:
        with pytest.raises(EmbedderUnavailable, match="CUDA is not available.*QA_DEVICE=cpu"):
            SentenceTransformerEmbedder("all-MiniLM-L6-v2", device=settings.device)
